"""The body of one trial: build, transfer, freeze, train, measure; returns its record."""

import math
import time

from keras_tl.config.arms import ARMS
from keras_tl.errors import KerasTLError
from keras_tl.experiment.plan import (
    _frozen_prefix_depth,
    fit_settings,
    frozen_layers,
    transfer_arguments,
)
from keras_tl.measure.features import feature_layer, takes_inputs_of
from keras_tl.measure.retention import retention
from keras_tl.measure.scoring import score_transfer
from keras_tl.measure.similarity import transferred_layer_cka
from keras_tl.networks.transfer import transfer_weights
from keras_tl.networks.units import is_graph_model
from keras_tl.scores import task_metrics
from keras_tl.scores.transferability import SCORES
from keras_tl.training.fit import (
    TrialFailure,
)
from keras_tl.training.fit import evaluate as evaluate_split
from keras_tl.training.fusion import build_fused, evaluate_fused, fit_fused
from keras_tl.training.precision import current_precision, float32_layer
from keras_tl.training.recipes import train_target


def _scores(plan, source, source_model, transferred, depth, task):
    """Transferability scores of the features the trial starts from (never fatal).

    Returns `(scores, layer, error)`: a score that cannot be computed (e.g. a
    class with one sample in a tiny train set) leaves every score None and says why.
    """
    if not plan.scores:
        return None, None, None
    # A subclassed model has no layer graph to read features from: only the
    # scores of its predictions apply.
    graph = is_graph_model(source_model)
    if graph and not takes_inputs_of(source_model, task):
        return ({name: None for name in plan.scores}, None,
                f"the source network reads inputs of shape "
                f"{tuple(source_model.inputs[0].shape[1:])}, not the target's "
                f"{task.input_shape}")
    layer = feature_layer(source_model, transferred, depth) if graph else None
    try:
        values = score_transfer(
            source_model, source.task and source.task.kind, layer, task.x_train,
            task.y_train, task.kind, plan.scores,
        )
    except KerasTLError as error:
        return {name: None for name in plan.scores}, layer, str(error)
    if not graph and any(SCORES[name].needs == "features" for name in plan.scores):
        return values, None, (
            "feature scores need a layer graph, which a subclassed model has not"
        )
    return values, layer, None


def _run_fused_trial(plan, spec, sources, target_task):
    """Trains one fused model on the configured tasks; the target head is the arm."""
    config = plan.experiment.config
    by_task = {source.task.name: source for source in plan.sources.values()}
    tasks = [
        target_task if name == target_task.name else by_task[name].task
        for name in config["fused"]["tasks"]
    ]
    started = time.perf_counter()
    model, heads, _ = build_fused(plan.network, tasks, spec.seed)
    for name in heads.values():  # Logits in float32 under mixed precision.
        float32_layer(model.get_layer(name))
    random_init = evaluate_fused(model, tasks, heads, "test")
    settings = fit_settings(
        plan, config["target"], (config["early_stopping"] or {}).get("patience")
    )
    epochs = fit_fused(
        model, tasks, heads, settings, spec.seed, config["fused"]["loss_weights"]
    )
    test = evaluate_fused(model, tasks, heads, "test")
    validation = evaluate_fused(model, tasks, heads, "val")
    _check_finite({"val": validation[target_task.name], "test": test[target_task.name]})
    baselines = {
        name: sources.trained(spec.seed, by_task[name].name)[1]
        for name in config["fused"]["tasks"] if name != target_task.name
    }
    return {
        "learning_rate": config["target"]["learning_rate"],
        "validation_by_learning_rate": None,
        "epochs": epochs,
        "train_size": len(target_task.y_train),
        "val": validation[target_task.name],
        "test": test[target_task.name],
        "transfer": None,
        "frozen": None,
        "scores": None,
        "score_layer": None,
        "score_error": None,
        "source_metrics": None,
        "stream": None,
        "cka": None,
        "fused": {"test": test, "val": validation, "random_init": random_init,
                  "source_baselines": baselines},
        "fit_time": time.perf_counter() - started,
        "precision": current_precision(),
        # The fused arm trains at the target stage's settings; it searches nothing.
        **({"batch_size": config["target"]["batch_size"], "validation_by_setting": None}
           if config.get("search") else {}),
    }


def _check_finite(metrics_by_split):
    """A model whose outputs became NaN or infinite failed, even if its loss did not."""
    for split, metrics in metrics_by_split.items():
        for name, value in metrics.items():
            if value is not None and not math.isfinite(value):
                raise TrialFailure(f"non-finite {split} {name} after training")


def search_grid(config):
    """Every target setting `(learning_rate, batch_size)` a trial trains, in order:
    `search` (a list it does not give keeps the target stage's value), else the
    `learning_rates` grid at the target batch size, else the target stage's one."""
    search = config.get("search") or {}
    target = config["target"]
    rates = (search.get("learning_rate") or config["learning_rates"]
             or [target["learning_rate"]])
    sizes = search.get("batch_size") or [target["batch_size"]]
    return [(rate, size) for rate in rates for size in sizes]


def run_trial(plan, spec, sources, pool=None, feature_cache=None):
    """Runs one trial and returns its record (a JSON-friendly dict).

    With a `ModelPool`, compiled models are reused across trials, and with a
    `FeatureCache` frozen-prefix outputs are; the numbers are the same without.
    """
    config = plan.experiment.config
    target_task = plan.target_task.subsample(spec.train_size, spec.seed)
    primary = plan.primary_metric
    higher = task_metrics.higher_is_better(primary)
    patience = (config["early_stopping"] or {}).get("patience")
    search = config.get("search")
    grid = search_grid(config)
    options = {**config["lp_ft"], **config["l2sp"], "cache_features": config["cache_features"]}
    source = plan.sources[spec.source] if spec.source else None
    started = time.perf_counter()
    best = last_failure = None
    arm = ARMS[spec.arm]
    if arm.is_fused:
        return _run_fused_trial(plan, spec, sources, target_task)
    scores = score_layer = score_error = stream = None
    validation_by_rate, validation_by_setting = {}, []
    for rate, batch_size in grid:
        stage = {**config["target"], "batch_size": batch_size}
        model = plan.network.build(target_task.input_shape, target_task.num_outputs, spec.seed)
        transferred, report, source_model = [], None, None
        if source is not None:
            if arm.is_control:
                source_model = sources.untrained(spec.seed, source.name)
            else:
                source_model, _ = sources.trained(spec.seed, source.name)
            # The two-task stream (FWT/BWT) needs the source task.
            measure_stream = stream is None and source.task is not None
            if measure_stream:
                random_target = evaluate_split(model, target_task, "test")
            report = transfer_weights(
                source_model, model, **transfer_arguments(config, source.config, spec.seed)
            )
            transferred = report.copied
            if measure_stream:
                stream = {"before_target_training": evaluate_split(model, target_task, "test"),
                          "random_init": [sources.random_init_metrics(spec.seed, source.name),
                                          random_target]}
        frozen = frozen_layers(config, spec.arm, spec.freeze_depth, transferred)
        by_pattern = config["freeze"] is not None and arm.sweeps_depth
        if source is not None and scores is None:
            # Scored where the frozen prefix ends (by_pattern: the frozen set may
            # have gaps; the leading units that are wholly frozen count).
            score_depth = (
                _frozen_prefix_depth(transferred, frozen) if by_pattern else spec.freeze_depth
            )
            scores, score_layer, score_error = _scores(
                plan, source, source_model, transferred, score_depth, target_task
            )
        try:
            model, epochs = train_target(
                model, target_task, spec.recipe, transferred, spec.freeze_depth,
                fit_settings(plan, stage, patience, rate), spec.seed,
                options, pool, feature_cache, frozen=frozen if by_pattern else None,
            )
            validation = evaluate_split(model, target_task, "val")
            _check_finite({"val": validation})
        except TrialFailure as failure:  # This setting diverged; the others may not.
            validation_by_rate[str(rate)] = None
            validation_by_setting.append(
                {"learning_rate": rate, "batch_size": batch_size, "val": None})
            last_failure = failure
            continue
        validation_by_rate[str(rate)] = validation[primary]
        validation_by_setting.append(
            {"learning_rate": rate, "batch_size": batch_size, "val": validation[primary]})
        score = validation[primary]
        if best is None or (score > best[0] if higher else score < best[0]):
            best = (score, (rate, batch_size), model.get_weights(), epochs, report,
                    transferred, source_model, validation, frozen)
    if best is None:
        raise last_failure
    # Every setting trains the same network with the same freeze pattern, so the last
    # model can hold the best one's weights (a pooled model is shared across settings).
    (_, (rate, batch_size), weights, epochs, report, transferred, source_model, validation,
     frozen) = best
    model.set_weights(weights)
    test = evaluate_split(model, target_task, "test")
    _check_finite({"val": validation, "test": test})
    record = {
        "learning_rate": rate,
        "validation_by_learning_rate": (
            validation_by_rate if len(grid) > 1 and search is None else None
        ),
        "epochs": epochs,
        "train_size": len(target_task.y_train),
        "val": validation,
        "test": test,
        "transfer": report.to_dict() if report else None,
        "frozen": frozen,
        "scores": scores,
        "score_layer": score_layer,
        "score_error": score_error,
        "source_metrics": None,
        "stream": None,
        "cka": None,
        "fused": None,
        "precision": current_precision(),
    }
    if search is not None:  # Only then, so records of other runs stay as they were.
        record["batch_size"] = batch_size
        record["validation_by_setting"] = validation_by_setting if len(grid) > 1 else None
    if source is not None and source.task is not None and not arm.is_control:
        _, before = sources.trained(spec.seed, source.name)
        record["source_metrics"] = {
            "before": before,
            "after": retention(
                sources.retention_probe(source.name), source_model, model, transferred,
                source.task,
            ),
        }
        record["stream"] = stream
    if source is not None and not arm.is_control:
        record["cka"] = transferred_layer_cka(source_model, model, transferred, target_task)
    record["fit_time"] = time.perf_counter() - started
    return record
