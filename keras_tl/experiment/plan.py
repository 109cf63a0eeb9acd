"""Experiment -> Plan: every check that needs the data and the network, before any training."""

import dataclasses
import re

import keras

from keras_tl.config.arms import ARMS
from keras_tl.data.registry import load_task
from keras_tl.errors import ConfigError, TransferError
from keras_tl.experiment.spec import TrialSpec
from keras_tl.measure.scoring import default_scores
from keras_tl.networks.network import Network, load_model_file
from keras_tl.networks.transfer import transfer_weights
from keras_tl.networks.units import is_graph_model, transfer_units
from keras_tl.scores import task_metrics
from keras_tl.training import distribution
from keras_tl.training.augment import needs_images
from keras_tl.training.fit import (
    FitSettings,
)
from keras_tl.training.recipes import every_unit, frozen_by_recipe


def frozen_layers(config, arm, depth, transferred):
    """The transferred layers a trial freezes during target training.

    Arms that use no source (`scratch`, `fused`) freeze nothing. Otherwise the
    arm asks for the first `depth` units (every unit for an arm that freezes all),
    or with `freeze: {layers: REGEX}` for a depth-swept arm, the transferred
    layers whose names match it in full; what its recipe then freezes of that
    is `keras_tl.training.recipes.frozen_by_recipe` (`linear_probe`: every unit).
    """
    rules = ARMS[arm]
    if not rules.uses_source:
        return []
    if rules.sweeps_depth and config.get("freeze"):
        pattern = re.compile(config["freeze"]["layers"])
        request = {"layers": [name for name in transferred if pattern.fullmatch(name)]}
    elif rules.freezes_all:
        request = every_unit(transferred)
    else:
        request = {"depth": depth}
    return frozen_by_recipe(rules.recipe, transferred, request)


EXACT_TRANSFER = {"mode": "exact", "noise": 0.0}


def transfer_options(config, source_config):
    """How a source's layers transfer: its own `transfer`, else the experiment's,
    else an exact copy (`{"mode": ..., "noise": ...}`)."""
    return source_config.get("transfer") or config.get("transfer") or EXACT_TRANSFER


def transfer_arguments(config, source_config, seed):
    """The keyword arguments of `transfer_weights` for a source's transfer mode
    (none for an exact copy; net2wider draws the units it copies with `seed`)."""
    options = transfer_options(config, source_config)
    if options["mode"] == "exact":
        return {}
    return {"mode": options["mode"], "noise": options["noise"], "seed": seed}


def _frozen_prefix_depth(transferred, frozen):
    """How many leading transferred units are entirely frozen."""
    depth = 0
    for _, layers in transfer_units(transferred):
        if not all(name in frozen for name in layers):
            break
        depth += 1
    return depth


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


def pretrained_model(source_config, network, input_shape, num_outputs, seed=0):
    """The model of a `pretrained: true` source: a .keras file as saved, or a
    backbone built with its own weights (an application's ImageNet weights, a
    KerasHub preset's weights)."""
    if "file" in source_config["model"]:
        return load_model_file(source_config["model"]["file"], network.unsafe_load)
    return network.build(input_shape, num_outputs, seed=seed)


def _check_augment(stage, path, task):
    """Image augmentations need image inputs (height, width, channels)."""
    for index, entry in enumerate(stage.get("augment") or []):
        for name in needs_images([entry]):
            if len(task.input_shape) != 3:
                raise ConfigError(
                    f"{path}.augment[{index}]: {name} needs image inputs (height, width, "
                    f"channels), but the task {task.name!r} has inputs of shape "
                    f"{tuple(task.input_shape)}. Remove it (gaussian_noise works on any "
                    f"inputs)."
                )


def _augment_note(config):
    """The plan note of an experiment with augmentation; None without."""
    stages = [("target", config["target"])] + [
        ("source" if len(config["sources"]) == 1 else f"sources[{index}]", source)
        for index, source in enumerate(config["sources"])
    ]
    augmented = [path for path, stage in stages if stage.get("augment")]
    if not augmented:
        return None
    return (
        f"Augmentation ({', '.join(f'{path}.augment' for path in augmented)}) is applied "
        f"to each training batch, seeded by the trial seed (paired arms see the same "
        f"augmented batches); evaluation, early stopping, scores and CKA read the inputs "
        f"as they are, and saved or transferred weights hold no augmentation layers."
        + (" The frozen-prefix feature cache is off for the target trials: a frozen "
           "prefix sees new inputs every batch, so every epoch runs the whole network."
           if config["target"].get("augment") and config["cache_features"] else "")
    )


def _plan_source(config, index, network, target_model, target_task, transfer_arms):
    source_config = config["sources"][index]
    path = "source" if len(config["sources"]) == 1 else f"sources[{index}]"
    task = load_task(source_config["task"]) if source_config["task"] else None
    if task is not None:
        _check_augment(source_config, path, task)
    source_network = (
        Network.from_config(source_config["model"], network.unsafe_load, f"{path}.model")
        if source_config["model"] else network
    )
    source = Source(source_config["name"], source_config, task, source_network, [])
    if source_config["pretrained"]:
        source_model = pretrained_model(
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
    mode = transfer_options(config, source_config)["mode"]
    try:
        report = transfer_weights(
            source_model, target_model, **transfer_arguments(config, source_config, 0)
        )
    except TransferError as error:
        where = f"{path}.transfer" if "transfer" in source_config else "transfer"
        raise ConfigError(f"{where}.mode: {mode}: {error}") from None
    if transfer_arms and not report.copied:
        reasons = "; ".join(reason for _, reason in report.skipped) or "no layers"
        hint = (
            " (or, for a wider target, transfer: {mode: net2wider} or {mode: slice})"
            if mode == "exact" else ""
        )
        raise ConfigError(
            f"arms: {transfer_arms} need transferred layers, but no layer of the "
            f"{path} network can be copied into the target by transfer mode {mode} "
            f"({reasons}). Use the same layer names and shapes{hint}, or arms: [scratch]."
        )
    source.transferable = report.copied
    return source


def plan(experiment, unsafe_load=False):
    """Checks an experiment against its data and network and lists its trials.

    `unsafe_load` lets `.keras` files that hold code (a `Lambda`) load; only for
    files you trust.

    Raises `ConfigError` or `DataError` (before anything is trained) for a freeze
    depth beyond the network, a train size larger than the train split, a metric
    or score the target task does not have, or a transfer arm when no layer can
    be copied.
    """
    config = experiment.config
    distribution.check(config["distribution"], keras.config.backend())
    target_task = load_task(config["target"]["task"])
    network = Network.from_config(config["model"], unsafe_load)

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

    _check_augment(config["target"], "target", target_task)
    transfer_arms = [arm for arm in config["arms"] if not ARMS[arm].is_baseline]
    target_model = network.build(target_task.input_shape, target_task.num_outputs, seed=0)
    notes = [note for note in [_augment_note(config)] if note]
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
    # Planning models are dropped here; their memory is collected with the
    # run's (a full gc.collect costs 0.15-0.3 s).
    keras.backend.clear_session(free_memory=False)

    num_transferable = min(len(transfer_units(s.transferable)) for s in sources.values())
    depths = config["freeze_depths"]
    regex_depths = {}
    swept_arms = [arm for arm in config["arms"] if ARMS[arm].sweeps_depth]
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
            rules = ARMS[arm]
            for source in list(sources.values()) if rules.uses_source else [None]:
                if not rules.uses_source:
                    arm_depths = [0]
                elif rules.freezes_all:
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


def fit_settings(plan, stage, patience=None, learning_rate=None):
    return FitSettings(
        epochs=stage["epochs"],
        batch_size=stage["batch_size"],
        optimizer=stage["optimizer"],
        learning_rate=learning_rate or stage["learning_rate"],
        patience=patience,
        verbose=plan.verbose,
        callbacks=plan.callbacks,
        augment=tuple(stage.get("augment") or ()),
    )
