"""Experiment -> trials -> Results.

`plan` checks everything that needs the data and the network (before any training)
and lists the trials; `evaluate` runs the trials not yet in the run folder's store,
one transaction per finished trial, and rebuilds the results from the store.
"""

import dataclasses
import glob
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time

import keras

from keras_tl import distribution, ondisk
from keras_tl import metrics as task_metrics
from keras_tl.applications import transfer_units
from keras_tl.config import ARM_RECIPES, load_experiment
from keras_tl.errors import ConfigError, KerasTLError, StoreError
from keras_tl.executors import (
    ProcessExecutor,
    RayExecutor,
    SerialExecutor,
    resolve_executor,
)
from keras_tl.fusion import build_fused, evaluate_fused, fit_fused
from keras_tl.models import Network, is_graph_model, load_model_file
from keras_tl.results import build_results, provenance, results_from_store
from keras_tl.scores.similarity import layer_similarity
from keras_tl.scores.transferability import SCORES
from keras_tl.scoring import default_scores, feature_layer, score_transfer
from keras_tl.store import STORE_NAME, TrialStore
from keras_tl.tasks import is_registered, load_task
from keras_tl.training import (
    FitSettings,
    TrialFailure,
    compile_model,
    evaluate as evaluate_split,
    fit,
    train_target,
)
from keras_tl.transfer import transfer_weights

# Bumped whenever a change alters the numbers a trial produces.
RESULT_VERSION = 2
# Arms whose frozen layers `freeze_depths` (or `freeze: {layers: REGEX}`) choose.
SWEPT_ARMS = ("fine_tune", "lp_ft", "l2sp", "random_transfer")


def frozen_layers(config, arm, depth, transferred):
    """The transferred layers a trial freezes during target training.

    `scratch` and `fused` freeze nothing; `linear_probe` freezes every transferred
    unit; the swept arms freeze the first `depth` units, or with
    `freeze: {layers: REGEX}` the transferred layers whose names match it in full.
    """
    if arm in ("scratch", "fused"):
        return []
    units = transfer_units(transferred)
    if arm in SWEPT_ARMS and config.get("freeze"):
        pattern = re.compile(config["freeze"]["layers"])
        return [name for name in transferred if pattern.fullmatch(name)]
    if arm == "linear_probe":
        depth = len(units)
    return [name for _, layers in units[:depth] for name in layers]


def _frozen_prefix_depth(transferred, frozen):
    """How many leading transferred units are entirely frozen."""
    depth = 0
    for _, layers in transfer_units(transferred):
        if not all(name in frozen for name in layers):
            break
        depth += 1
    return depth


@dataclasses.dataclass(frozen=True)
class TrialSpec:
    """One trial: an arm from one source at one freeze depth, train size and seed.

    `source` is the source's name; None for `scratch`, which uses no source.
    """

    arm: str
    freeze_depth: int
    train_size: object
    seed: int
    source: str = None

    @property
    def recipe(self):
        return ARM_RECIPES[self.arm]

    def key(self, experiment):
        """A stable hash of everything that determines this trial's numbers."""
        config = experiment.config
        sources = {source["name"]: source for source in config["sources"]}
        payload = {
            "trial": dataclasses.asdict(self),
            "model": config["model"],
            "source": sources.get(self.source),
            "target": config["target"] | {"train_sizes": None},
            "learning_rates": config["learning_rates"],
            "early_stopping": config["early_stopping"],
            "scores": config["scores"],
            "recipe_options": {"lp_ft": config["lp_ft"], "l2sp": config["l2sp"]},
            "fused": config["fused"] if self.arm == "fused" else None,
            "result_version": RESULT_VERSION,
        }
        if config.get("freeze") and self.arm in SWEPT_ARMS:
            # Only when set, so the keys of depth-swept experiments stay as they were.
            payload["freeze"] = config["freeze"]
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclasses.dataclass
class Source:
    """One source of an experiment: its config, task, network and the layers that
    transfer from it into the target network.

    `task` is None for a pretrained backbone without a source task (e.g. ImageNet
    weights of a `keras.applications` model): it is built for the target's inputs,
    and its source-side metrics (retention, forgetting, FWT/BWT) do not apply.
    """

    name: str
    config: dict
    task: object
    network: Network
    transferable: list

    def build_shape(self, target_task):
        """`(input_shape, num_outputs)` the source network is built with."""
        task = self.task or target_task
        return task.input_shape, task.num_outputs


@dataclasses.dataclass
class Plan:
    """Everything an experiment needs, checked, before any training."""

    experiment: object
    network: Network
    sources: dict
    target_task: object
    primary_metric: str
    scores: list
    trials: list
    notes: list = dataclasses.field(default_factory=list)
    verbose: int = 0
    callbacks: tuple = ()


def _network(model_config):
    definition = model_config.get("builder") or model_config.get("file")
    options = {k: v for k, v in model_config.items() if k not in ("builder", "file")}
    if "application" in model_config:
        definition = "keras_tl.applications:application"
    if "keras_hub" in model_config:
        definition = "keras_tl.hub:backbone"
    return Network(definition, options)


def _pretrained_model(source_config, network, input_shape, num_outputs, seed=0):
    """The model of a `pretrained: true` source: a .keras file as saved, or a
    backbone built with its own weights (an application's ImageNet weights, a
    KerasHub preset's weights)."""
    if "file" in source_config["model"]:
        return load_model_file(source_config["model"]["file"])
    return network.build(input_shape, num_outputs, seed=seed)


def _plan_source(config, index, network, target_model, target_task, transfer_arms):
    source_config = config["sources"][index]
    path = "source" if len(config["sources"]) == 1 else f"sources[{index}]"
    task = load_task(source_config["task"]) if source_config["task"] else None
    source_network = (
        _network(source_config["model"]) if source_config["model"] else network
    )
    source = Source(source_config["name"], source_config, task, source_network, [])
    if source_config["pretrained"]:
        source_model = _pretrained_model(
            source_config, source_network, *source.build_shape(target_task)
        )
        width = int(source_model.outputs[0].shape[-1])
        if task is not None and width != task.num_outputs:
            raise ConfigError(
                f"{path}.model: the pretrained model has {width} outputs but its task "
                f"{task.name!r} has {task.num_outputs}. Give the task it was trained on."
            )
    else:
        source_model = source_network.build(task.input_shape, task.num_outputs, seed=0)
    report = transfer_weights(source_model, target_model)
    if transfer_arms and not report.copied:
        reasons = "; ".join(reason for _, reason in report.skipped) or "no layers"
        raise ConfigError(
            f"arms: {transfer_arms} need transferred layers, but no layer of the "
            f"{path} network can be copied into the target ({reasons}). Use the same "
            f"layer names and shapes, or arms: [scratch]."
        )
    source.transferable = report.copied
    return source


def plan(experiment):
    """Checks an experiment against its data and network and lists its trials.

    Raises `ConfigError` or `DataError` (before anything is trained) for a freeze
    depth beyond the network, a train size larger than the train split, a metric
    or score the target task does not have, or a transfer arm when no layer can
    be copied.
    """
    config = experiment.config
    distribution.check(config["distribution"], keras.config.backend())
    target_task = load_task(config["target"]["task"])
    network = _network(config["model"])

    available = task_metrics.METRICS_BY_KIND[target_task.kind]
    for index, metric in enumerate(config["metrics"] or []):
        if metric not in available:
            raise ConfigError(
                f"metrics[{index}]: expected one of {', '.join(available)} for the "
                f"{target_task.kind} task {target_task.name!r}, received {metric!r}"
            )
    primary = (config["metrics"] or [task_metrics.PRIMARY_METRIC[target_task.kind]])[0]
    scores = config["scores"]
    if scores is None:
        scores = default_scores(target_task.kind)
    for index, score in enumerate(scores):
        if score not in default_scores(target_task.kind) and target_task.kind == "regression":
            raise ConfigError(
                f"scores[{index}]: expected logme for the regression task "
                f"{target_task.name!r}, received {score!r}"
            )

    for index, size in enumerate(config["target"]["train_sizes"]):
        if isinstance(size, int) and size > len(target_task.y_train):
            raise ConfigError(
                f"target.train_sizes[{index}]: expected at most "
                f"{len(target_task.y_train)} (the train split of "
                f"{target_task.name!r}), received {size}"
            )

    transfer_arms = [arm for arm in config["arms"] if arm != "scratch"]
    target_model = network.build(target_task.input_shape, target_task.num_outputs, seed=0)
    notes = []
    if not is_graph_model(target_model) and config["cache_features"]:
        notes.append(
            f"The target network {target_model.name!r} is a subclassed keras.Model (no "
            f"layer graph): the frozen-prefix feature cache is disabled, so every epoch "
            f"runs the whole network; transfer units follow model.layers order; "
            f"feature-based scores (LogME, H-score, GBC, TransRate) and layer CKA are "
            f"not computed (they read layer outputs), prediction scores (LEEP, NCE) are."
        )
    sources = {}
    for index in range(len(config["sources"])):
        source = _plan_source(config, index, network, target_model, target_task,
                              transfer_arms)
        sources[source.name] = source
        if source.task is None:
            notes.append(
                f"Source {source.name!r} is a pretrained backbone without a source task: "
                f"its source-side metrics (retention, forgetting, FWT/BWT) are not "
                f"applicable and are not reported."
            )
    keras.backend.clear_session()

    num_transferable = min(len(transfer_units(s.transferable)) for s in sources.values())
    depths = config["freeze_depths"]
    regex_depths = {}
    swept_arms = [arm for arm in config["arms"] if arm in SWEPT_ARMS]
    if config["freeze"] is not None:
        depths = []
        for index, source in enumerate(sources.values() if swept_arms else []):
            frozen = frozen_layers(config, "fine_tune", None, source.transferable)
            if not frozen:
                path = "source" if len(sources) == 1 else f"sources[{index}]"
                raise ConfigError(
                    f"freeze.layers: {config['freeze']['layers']!r} matches none of the "
                    f"layers transferred from {path} ({source.transferable}); the whole "
                    f"layer name must match. Change the pattern, or use freeze_depths."
                )
            # These trials' freeze_depth is the number of layers the pattern freezes.
            regex_depths[source.name] = len(frozen)
            notes.append(
                f"freeze.layers {config['freeze']['layers']!r} freezes {frozen} (from "
                f"source {source.name!r}) in {', '.join(swept_arms)}: their freeze_depth "
                f"(the N of {swept_arms[0]}@{len(frozen)}) is the number of layers frozen, "
                f"not a depth, and no depth was swept."
            )
    elif depths == "all":
        depths = list(range(num_transferable + 1))
    for index, depth in enumerate(depths):
        if depth > num_transferable:
            units = next(
                [name for name, _ in transfer_units(s.transferable)]
                for s in sources.values()
                if len(transfer_units(s.transferable)) == num_transferable
            )
            raise ConfigError(
                f"freeze_depths[{index}]: expected at most {num_transferable} (the "
                f"transferred layers are {units}), received {depth}"
            )

    trials = []
    for size in config["target"]["train_sizes"]:
        for arm in config["arms"]:
            for source in [None] if arm in ("scratch", "fused") else list(sources.values()):
                if arm in ("scratch", "fused"):
                    arm_depths = [0]
                elif arm == "linear_probe":
                    arm_depths = [len(transfer_units(source.transferable))]
                elif config["freeze"] is not None:
                    arm_depths = [regex_depths[source.name]]
                else:
                    arm_depths = depths
                for depth in arm_depths:
                    for seed in experiment.seeds:
                        name = None if source is None else source.name
                        trials.append(TrialSpec(arm, depth, size, seed, name))
    return Plan(
        experiment=experiment,
        network=network,
        sources=sources,
        target_task=target_task,
        primary_metric=primary,
        scores=list(scores),
        trials=trials,
        notes=notes,
    )


def plan_context(the_plan):
    """The facts of a plan that results need, as plain data (kept in the store)."""
    first = next(iter(the_plan.sources.values()))
    with_task = [source for source in the_plan.sources.values() if source.task]
    return {
        "primary_metric": the_plan.primary_metric,
        "source_metric": (
            task_metrics.PRIMARY_METRIC[with_task[0].task.kind] if with_task else None
        ),
        "scores": the_plan.scores,
        "sources": [
            {
                "name": source.name,
                "untrained": source.config["untrained"],
                "task": source.task and (
                    source.task.describe() | {"fingerprint": source.task.fingerprint()}
                ),
                "transferable": list(source.transferable),
            }
            for source in the_plan.sources.values()
        ],
        "transferable": list(first.transferable),
        "target_task": the_plan.target_task.describe()
        | {"fingerprint": the_plan.target_task.fingerprint()},
        "notes": list(the_plan.notes),
    }


def _settings(plan, stage, patience=None, learning_rate=None):
    return FitSettings(
        epochs=stage["epochs"],
        batch_size=stage["batch_size"],
        optimizer=stage["optimizer"],
        learning_rate=learning_rate or stage["learning_rate"],
        patience=patience,
        verbose=plan.verbose,
        callbacks=plan.callbacks,
    )


def _derived_seed(seed, purpose):
    digest = hashlib.sha256(f"{seed}|{purpose}".encode()).hexdigest()
    return int(digest[:8], 16) % (2**31)


class SourceModels:
    """Trains each source model once per seed and keeps it in memory and on disk.

    Args:
        plan: Plan.
        cache_folder: str or None. Where trained source models are saved as
            `.keras` files (written to a temporary name, then renamed).
        pool: ModelPool or None. Train on a pooled compiled model (a twin built
            with the same seed) and copy the weights out, so each seed's source
            does not compile its own training step.
    """

    def __init__(self, plan, cache_folder=None, pool=None):
        self.plan = plan
        self.cache_folder = cache_folder
        self.pool = pool
        self._trained = {}

    def _source(self, name):
        return self.plan.sources[name] if name else next(iter(self.plan.sources.values()))

    def _spec_hash(self, source):
        config = self.plan.experiment.config
        payload = {"source": source.config, "model": config["model"], "v": RESULT_VERSION}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]

    def trained(self, seed, name=None):
        """Returns `(model, test_metrics)` of a source trained with `seed`.

        Args:
            seed: int.
            name: str or None. The source's name; None for the first source.
        """
        source = self._source(name)
        if (source.name, seed) in self._trained:
            return self._trained[(source.name, seed)]
        task = source.task
        path = None
        if self.cache_folder:
            path = os.path.join(
                self.cache_folder, f"source-{self._spec_hash(source)}-seed{seed}.weights.h5"
            )
        if source.config["pretrained"]:
            model = _pretrained_model(
                source.config, source.network,
                *source.build_shape(self.plan.target_task), seed=seed,
            )
        elif path and os.path.isfile(path):
            # Weights, not a whole .keras model: a subclassed network's class
            # need not be registered to be rebuilt.
            model = source.network.build(task.input_shape, task.num_outputs, seed)
            model.load_weights(path)
        elif source.config["untrained"]:
            model = self.untrained(seed, source.name)
        else:
            model = self._train(source, seed)
            if path:
                os.makedirs(self.cache_folder, exist_ok=True)
                temporary = path[: -len(".weights.h5")] + ".tmp.weights.h5"
                model.save_weights(temporary)
                os.replace(temporary, path)
        result = (model, evaluate_split(model, task, "test") if task else None)
        self._trained[(source.name, seed)] = result
        return result

    def _train(self, source, seed):
        task, stage = source.task, source.config
        settings = _settings(self.plan, stage)
        model = source.network.build(task.input_shape, task.num_outputs, seed)
        if self.pool is None:
            compile_model(model, task.kind, stage["optimizer"], stage["learning_rate"])
            fit(model, task, settings, seed)
            return model
        # The pooled model is shared with later trainings: train a same-seed twin
        # there and keep `model`, which no one else holds, as the source.
        twin = source.network.build(task.input_shape, task.num_outputs, seed)
        trainer = self.pool.compiled(twin, task.kind, stage["optimizer"], stage["learning_rate"])
        fit(trainer, task, settings, seed)
        model.set_weights(trainer.get_weights())
        return model

    def retention_probe(self, name):
        """A source-shaped network, built once, to load trained trunks into."""
        source = self._source(name)
        key = ("probe", source.name)
        if key not in self._trained:
            self._trained[key] = source.network.build(
                source.task.input_shape, source.task.num_outputs, seed=0
            )
        return self._trained[key]

    def random_init_metrics(self, seed, name=None):
        """Source-task test metrics of the untrained source network (for FWT)."""
        source = self._source(name)
        key = ("random", source.name, seed)
        if source.task is None:
            return None
        if key not in self._trained:
            self._trained[key] = evaluate_split(self.untrained(seed, name), source.task, "test")
        return self._trained[key]

    def untrained(self, seed, name=None):
        """A source network with random weights: the `random_transfer` control.

        A pretrained backbone is built with `weights=None`: its architecture
        without what it learned.
        """
        source = self._source(name)
        network = source.network
        if network.options.get("weights"):
            network = Network(network.definition, {**network.options, "weights": None})
        return network.build(
            *source.build_shape(self.plan.target_task), _derived_seed(seed, "random_source")
        )


def _retention(sources, source, source_model, target_model, transferred):
    """Source-task metrics of the target's trunk with the source head re-attached."""
    task = source.task
    probe = sources.retention_probe(source.name)
    probe.set_weights(source_model.get_weights())
    report = transfer_weights(target_model, probe, layers=transferred)
    if report.skipped:
        return None
    return evaluate_split(probe, task, "test")


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
    if graph and not _takes_inputs_of(source_model, task):
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


def _takes_inputs_of(model, task):
    """Whether `model` can read `task`'s inputs (a source network built for
    inputs of another shape shares only the layers whose weights fit)."""
    shape = tuple(model.inputs[0].shape[1:])
    return len(shape) == len(task.input_shape) and all(
        size is None or size == expected for size, expected in zip(shape, task.input_shape)
    )


def _layer_cka(source_model, target_model, transferred, task):
    """Linear CKA, source vs trained target, at the end of every transferred unit,
    on (at most 500 of) the target test inputs: where fine-tuning moved features."""
    if not (is_graph_model(source_model) and is_graph_model(target_model)):
        return None  # A subclassed model's layers have no graph to read from.
    if not _takes_inputs_of(source_model, task):
        return None
    layers = [unit_layers[-1] for _, unit_layers in transfer_units(transferred)]
    try:
        similarity = layer_similarity(
            source_model, target_model, ondisk.take_rows(task.x_test, slice(0, 500)),
            layers, layers,
        )
    except KerasTLError:
        return None
    return {layer: similarity["matrix"][i][i] for i, layer in enumerate(layers)}


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
    random_init = evaluate_fused(model, tasks, heads, "test")
    settings = _settings(
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
    }


def _check_finite(metrics_by_split):
    """A model whose outputs became NaN or infinite failed, even if its loss did not."""
    for split, metrics in metrics_by_split.items():
        for name, value in metrics.items():
            if value is not None and not math.isfinite(value):
                raise TrialFailure(f"non-finite {split} {name} after training")


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
    rates = config["learning_rates"] or [config["target"]["learning_rate"]]
    options = {**config["lp_ft"], **config["l2sp"], "cache_features": config["cache_features"]}
    source = plan.sources[spec.source] if spec.source else None
    started = time.perf_counter()
    best = last_failure = None
    if spec.arm == "fused":
        return _run_fused_trial(plan, spec, sources, target_task)
    scores = score_layer = score_error = stream = None
    validation_by_rate = {}
    for rate in rates:
        model = plan.network.build(target_task.input_shape, target_task.num_outputs, spec.seed)
        transferred, report, source_model = [], None, None
        if source is not None:
            if spec.arm == "random_transfer":
                source_model = sources.untrained(spec.seed, source.name)
            else:
                source_model, _ = sources.trained(spec.seed, source.name)
            # The two-task stream (FWT/BWT) needs the source task.
            measure_stream = stream is None and source.task is not None
            if measure_stream:
                random_target = evaluate_split(model, target_task, "test")
            report = transfer_weights(source_model, model)
            transferred = report.copied
            if measure_stream:
                stream = {"before_target_training": evaluate_split(model, target_task, "test"),
                          "random_init": [sources.random_init_metrics(spec.seed, source.name),
                                          random_target]}
        frozen = frozen_layers(config, spec.arm, spec.freeze_depth, transferred)
        by_pattern = config["freeze"] is not None and spec.arm in SWEPT_ARMS
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
                _settings(plan, config["target"], patience, rate), spec.seed,
                options, pool, feature_cache, frozen=frozen if by_pattern else None,
            )
            validation = evaluate_split(model, target_task, "val")
            _check_finite({"val": validation})
        except TrialFailure as failure:  # This rate diverged; the others may not.
            validation_by_rate[str(rate)] = None
            last_failure = failure
            continue
        validation_by_rate[str(rate)] = validation[primary]
        score = validation[primary]
        if best is None or (score > best[0] if higher else score < best[0]):
            best = (score, rate, model.get_weights(), epochs, report, transferred,
                    source_model, validation, frozen)
    if best is None:
        raise last_failure
    # Every rate trains the same network with the same freeze pattern, so the last
    # model can hold the best rate's weights (a pooled model is shared across rates).
    _, rate, weights, epochs, report, transferred, source_model, validation, frozen = best
    model.set_weights(weights)
    test = evaluate_split(model, target_task, "test")
    _check_finite({"val": validation, "test": test})
    record = {
        "learning_rate": rate,
        "validation_by_learning_rate": validation_by_rate if len(rates) > 1 else None,
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
    }
    if source is not None and source.task is not None and spec.arm != "random_transfer":
        _, before = sources.trained(spec.seed, source.name)
        record["source_metrics"] = {
            "before": before,
            "after": _retention(sources, source, source_model, model, transferred),
        }
        record["stream"] = stream
    if source is not None and spec.arm != "random_transfer":
        record["cka"] = _layer_cka(source_model, model, transferred, target_task)
    record["fit_time"] = time.perf_counter() - started
    return record


def base_record(plan, spec):
    """The identifying fields of a trial's record."""
    return {
        "key": spec.key(plan.experiment),
        "arm": spec.arm,
        "recipe": spec.recipe,
        "source": spec.source,
        "freeze_depth": spec.freeze_depth,
        "requested_train_size": spec.train_size,
        "seed": spec.seed,
    }


def _data_fingerprints(context):
    return {
        "target": context["target_task"]["fingerprint"],
        **{s["name"]: s["task"]["fingerprint"] for s in context["sources"] if s["task"]},
    }


def _check_same_data(store, context, out):
    """Refuses to resume a run whose task data changed under the same names."""
    stored = store.get_meta("context")
    if stored and _data_fingerprints(stored) != _data_fingerprints(context):
        store.close()
        raise StoreError(
            f"The data of a task in {out!r} changed since the run started (same task "
            f"names, different contents). Use a new --out folder, or --overwrite."
        )


def prepare_run_folder(out, experiment, overwrite=False):
    """Creates or reopens a run folder for `experiment` and returns its store.

    A folder holding a store of the same experiment is resumed; a non-empty folder
    with anything else is refused unless `overwrite`.
    """
    store_path = os.path.join(out, STORE_NAME)
    if os.path.isdir(out) and os.listdir(out):
        if overwrite:
            shutil.rmtree(out)
        elif os.path.isfile(store_path):
            return _bound_store(store_path, experiment)
        else:
            raise StoreError(
                f"Output folder {out!r} exists and is not empty. Use a new --out "
                f"folder, or --overwrite to replace it."
            )
    elif os.path.exists(out) and not os.path.isdir(out):
        raise StoreError(f"--out {out!r} is a file. Expected a folder path.")
    os.makedirs(out, exist_ok=True)
    return _bound_store(store_path, experiment)


def _bound_store(path, experiment):
    store = TrialStore(path)
    try:
        store.bind(experiment)
    except BaseException:
        store.close()
        raise
    return store


class _EpochReporter(keras.callbacks.Callback):
    """Calls `on_epoch(epoch, epochs)` at the end of every epoch of every fit."""

    def __init__(self, on_epoch):
        super().__init__()
        self._on_epoch = on_epoch

    def on_epoch_end(self, epoch, logs=None):
        self._on_epoch(epoch + 1, self.params.get("epochs"))


def _announced(specs, on_trial_start, done, total):
    """Yields `specs` to a serial executor, calling `on_trial_start(done, total,
    spec)` just before each is taken (the previous ones have finished by then)."""
    for index, spec in enumerate(specs):
        on_trial_start(done + index, total, spec)
        yield spec


def _start_executor(name, the_plan, cache_folder, workers, address, gpus_per_trial):
    backend = keras.config.backend()
    if name == "serial":
        return SerialExecutor(the_plan, cache_folder)
    if name == "process":
        return ProcessExecutor(the_plan, cache_folder, workers, backend)
    return RayExecutor(the_plan, cache_folder, workers, backend, address, gpus_per_trial)


def evaluate(experiment=None, out=None, overwrite=False, retry_failed=False,
             on_trial=None, command=None, workers=None, verbose=False, executor=None,
             address=None, gpus_per_trial=0, on_trial_start=None, on_epoch=None):
    """Runs an experiment's trials (those not yet finished in `out`) and returns Results.

    Whatever the executor, this process alone writes the trial store, so resuming
    and failure isolation work the same way with each of them.

    Args:
        experiment: an `Experiment`, a YAML path, a dict, or None for the default.
        out: str or None. The run folder; it holds `trials.sqlite`, `results.json`,
            `trials.csv`, `run.log` and `cache/`. Re-running with the same folder
            resumes: finished trials are not run again.
        overwrite: bool. Replace a non-empty `out` that belongs to another run.
        retry_failed: bool. Run failed trials again.
        on_trial: callable or None. Called as `on_trial(done, total, record)` after
            each trial.
        on_trial_start: callable or None. Called as `on_trial_start(done, total,
            spec)` (`spec` a `TrialSpec`) just before each trial starts; only
            with the serial executor.
        on_epoch: callable or None. Called as `on_epoch(epoch, epochs)` after each
            training epoch (source or target); only with the serial executor.
        command: str or None. The command line, recorded in the provenance.
        workers: int or None. Worker processes (`"process"`) or Ray actors
            (`"ray"`); None: one per CPU (on Ray, one per `gpus_per_trial` GPUs
            when that is set). More than one picks `"process"` when `executor`
            is None.
        verbose: bool. Show Keras' per-epoch progress bars (in this process).
        executor: str or None. `"serial"` (in this process), `"process"`
            (spawned worker processes) or `"ray"` (actors on a Ray cluster, see
            `keras_tl.executors.RayExecutor`); None: `"serial"` for one worker,
            `"process"` for more.
        address: str or None. With `"ray"`: the cluster, `"auto"` or
            `"ray://HOST:PORT"`; None starts a local Ray (or uses `RAY_ADDRESS`).
        gpus_per_trial: float. With `"ray"`: GPUs each actor holds.

    Returns:
        `Results`.

    Example:

    >>> results = keras_tl.evaluate("examples/parity.yaml", out="runs/parity")
    >>> results.summary["best"]["verdict"]
    'inconclusive'
    """
    executor = resolve_executor(executor, workers, address, gpus_per_trial)
    experiment = load_experiment(experiment)
    config = experiment.config
    registered = [
        name for name in [config["target"]["task"], *(s["task"] for s in config["sources"])]
        if name and is_registered(name)
    ]
    if registered and executor != "serial":
        raise ConfigError(
            f"executor: task(s) {registered} were registered in this process with "
            f"register_task, which {executor} workers cannot see. Received: "
            f"executor={executor!r}, workers={workers!r}. Use the serial executor "
            f"(workers=1), or save the data as an npz: task."
        )
    the_plan = plan(experiment)
    the_plan.verbose = 1 if verbose else 0
    if on_epoch and executor == "serial":
        the_plan.callbacks = (_EpochReporter(on_epoch),)
    context = plan_context(the_plan)
    # Absolute: Ray workers may run in another folder.
    cache_folder = os.path.abspath(os.path.join(out, "cache")) if out else None
    scratch_folder = None
    if executor != "serial" and cache_folder is None:  # Workers share sources through files.
        cache_folder = scratch_folder = tempfile.mkdtemp(prefix="keras-tl-cache-")
    # Started before the run folder is touched: a Ray cluster that cannot be
    # reached leaves `out` as it was.
    try:
        executor = _start_executor(
            executor, the_plan, cache_folder, workers, address, gpus_per_trial
        )
    except BaseException:
        if scratch_folder:
            shutil.rmtree(scratch_folder, ignore_errors=True)
        raise
    records = {}
    try:
        store = prepare_run_folder(out, experiment, overwrite) if out else None
        if store:
            _check_same_data(store, context, out)
            store.set_meta("context", context)
        done = store.statuses() if store else {}
        rerun = {None, "failed"} if retry_failed else {None}
        pending = [
            spec for spec in the_plan.trials if done.get(spec.key(experiment)) in rerun
        ]
        total = len(the_plan.trials)
        finished = total - len(pending)
        if on_trial_start and isinstance(executor, SerialExecutor):
            # The serial executor takes each spec just as it starts it.
            pending = _announced(pending, on_trial_start, finished, total)
        for record, details in executor.run(pending):
            if store:
                store.put(record)
            if details and out:
                with open(os.path.join(out, "run.log"), "a") as log:
                    log.write(f"trial {record['key']} ({record['arm']}, seed "
                              f"{record['seed']}) failed:\n{details}\n")
            records[record["key"]] = record
            finished += 1
            if on_trial:
                on_trial(finished, total, record)
    finally:
        executor.close()
        keras.backend.clear_session()
        if cache_folder:  # Prefix features that workers' caches spilled to files.
            for folder in glob.glob(os.path.join(cache_folder, "features-*")):
                shutil.rmtree(folder, ignore_errors=True)
        if scratch_folder:
            shutil.rmtree(scratch_folder, ignore_errors=True)
    try:
        keys = {spec.key(experiment) for spec in the_plan.trials}
        run_provenance = provenance(experiment, command)
        if store:
            # From the store, exactly as `keras-tl report` builds them.
            store.set_meta("provenance", run_provenance)
            results = results_from_store(store, keys)
            results.write(out)
        else:
            stored = [record for key, record in records.items() if key in keys]
            results = build_results(experiment.to_dict(), context, stored, run_provenance)
        return results
    finally:
        if store:
            store.close()
