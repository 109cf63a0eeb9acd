"""Experiment files: YAML or dict -> a validated `Experiment` with every default filled.

Validation is structural and happens before anything is trained; every error names
the key path, the allowed values and what was received. Checks that need the
network or the data (a freeze depth beyond the network, a train size larger than
the train split) run in `keras_tl.evaluator.plan`, still before any training.
"""

import copy
import dataclasses
import hashlib
import json
import os
import re

from keras_tl.config.arms import (ARMS, AUGMENTATIONS, BASELINE,
                                  CACHE_FEATURES_DEFAULT, DISTRIBUTIONS,
                                  FEATURE_CACHE_MB_DEFAULT, FILL_MODES, FLIP_MODES,
                                  INTERPOLATIONS, L2SP_DEFAULTS, LP_FT_DEFAULTS,
                                  METRICS, OPTIMIZERS, SCORE_NAMES, STAGE_DEFAULTS)
from keras_tl.config.checks import (
    check_keys,
    check_plain,
    fail,
    finite,
    non_empty_list,
    non_empty_string,
    non_negative_float,
    one_of,
    optional_mapping,
    positive_float,
    positive_int,
    run_name,
    shown,
)
from keras_tl.config.yaml_file import read_yaml
from keras_tl.errors import ConfigError

# `precision`: Keras' dtype policy while trials build and train
# (keras_tl/training/precision.py).
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
DEFAULT_PRECISION = "float32"

DEFAULT_EXPERIMENT = {
    "name": "parity",
    "model": {"builder": "small_cnn"},
    "source": {
        "task": "digits",
        "epochs": 10,
        "batch_size": 64,
        "optimizer": "adam",
        "learning_rate": 0.003,
    },
    "target": {
        "task": "digits:parity",
        "train_sizes": [30],
        "epochs": 50,
        "batch_size": 10,
        "optimizer": "adam",
        "learning_rate": 0.003,
    },
    "arms": ["scratch", "fine_tune"],
    "freeze_depths": [0],
    # Seeds are added in rounds until the verdict is decided (docs/sequential.md):
    # a fixed 3 seeds could never reach p < 0.05 with an exact test.
    "seeds": {"min": 5, "max": 30},
}


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A validated experiment: the resolved config with every default filled in.

    Args:
        config: dict. The resolved configuration (JSON-friendly); `to_dict()`
            returns a copy, which `load_experiment` accepts unchanged.

    Example:

    >>> experiment = keras_tl.load_experiment("examples/parity.yaml")
    >>> experiment.seeds
    [0, 1, 2]
    """

    config: dict

    @property
    def name(self):
        return self.config["name"]

    @property
    def seeds(self):
        """Every seed the experiment may run (`max` of them for adaptive seeds)."""
        seeds = self.config["seeds"]
        if isinstance(seeds, dict):
            return list(range(seeds["max"]))
        return list(seeds)

    @property
    def seed_range(self):
        """`(min, max)` when seeds are added in rounds until decided, else None."""
        seeds = self.config["seeds"]
        return (seeds["min"], seeds["max"]) if isinstance(seeds, dict) else None

    def to_dict(self):
        return copy.deepcopy(self.config)

    def fingerprint(self):
        """A stable hash of the resolved config: same experiment, same hash."""
        text = json.dumps(self.config, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _freeze(value, path):
    """`freeze: {layers: REGEX}`: the transferred layers whose names match freeze."""
    if value is None:
        return None
    if not isinstance(value, dict):
        fail(path, "a mapping like {layers: \"conv.*\"}", value)
    check_keys(value, ("layers",), path)
    pattern = non_empty_string(value.get("layers"), f"{path}.layers")
    try:
        re.compile(pattern)
    except re.error as error:
        raise ConfigError(
            f"{path}.layers: expected a Python regular expression matched against "
            f"whole layer names (e.g. \"conv.*\"), received {pattern!r} ({error}). "
            f"Escape special characters such as ( [ * with a backslash."
        ) from None
    return {"layers": pattern}


def _model(value, path):
    if value is None:
        return None
    if isinstance(value, str):
        value = {"file": value} if value.endswith(".keras") else {"builder": value}
    if not isinstance(value, dict):
        fail(path, "a builder name or a mapping with 'builder' or 'file'", value)
    value = dict(value)
    kinds = [key for key in ("builder", "file", "application", "keras_hub") if key in value]
    if len(kinds) != 1:
        raise ConfigError(
            f"{path}: give exactly one of 'builder' (small_cnn, mlp or "
            f"package.module:function), 'file' (a .keras path), 'application' (a "
            f"keras.applications name) or 'keras_hub' (a preset). Received keys: "
            f"{sorted(value)}"
        )
    if "keras_hub" in value:
        check_keys(value, ("keras_hub", "weights", "pooling"), path)
        non_empty_string(value["keras_hub"], f"{path}.keras_hub")
        if value.get("weights", None) not in (None, "preset"):
            fail(f"{path}.weights", "preset or null", value["weights"])
        value.setdefault("weights", None)
        value.setdefault("pooling", "avg")
        one_of(value["pooling"], ("avg", "max"), f"{path}.pooling")
    elif "application" in value:
        check_keys(value, ("application", "weights", "image_shape", "pooling"), path)
        non_empty_string(value["application"], f"{path}.application")
        if value.get("weights", None) not in (None, "imagenet"):
            fail(f"{path}.weights", "imagenet or null", value["weights"])
        value.setdefault("weights", None)
        value.setdefault("pooling", "avg")
        one_of(value["pooling"], ("avg", "max"), f"{path}.pooling")
        shape = value.get("image_shape")
        if shape is not None and (
            not isinstance(shape, list) or len(shape) != 3
            or not all(isinstance(d, int) and d > 0 for d in shape)
        ):
            fail(f"{path}.image_shape", "[height, width, 3]", shape)
    elif "file" in value:
        check_keys(value, ("file",), path)
        non_empty_string(value["file"], f"{path}.file")
    else:
        non_empty_string(value["builder"], f"{path}.builder")
    return value


def _stage(value, path, keys, defaults, needs_task=True):
    if not isinstance(value, dict):
        fail(path, "a mapping", value)
    check_keys(value, keys, path)
    stage = {**defaults, **value}
    if needs_task:
        stage["task"] = non_empty_string(stage.get("task"), f"{path}.task")
    stage["epochs"] = positive_int(stage["epochs"], f"{path}.epochs")
    stage["batch_size"] = positive_int(stage["batch_size"], f"{path}.batch_size")
    stage["optimizer"] = one_of(stage["optimizer"], OPTIMIZERS, f"{path}.optimizer")
    stage["learning_rate"] = positive_float(
        stage["learning_rate"], f"{path}.learning_rate"
    )
    if "augment" in stage:
        # Only when given, so the resolved config (its fingerprint and trial keys)
        # of a stage without augmentation stays as it was.
        stage["augment"] = _augment(stage["augment"], f"{path}.augment")
    return stage


def _factor(value, path, lowest):
    """A factor of a random augmentation: a number f in [0, 1] (the range [-f, f],
    or [0, f] for random_contrast) or a list [low, high] with `lowest` <= low <=
    high <= 1."""
    expected = (
        f"a number in [0, 1] or a list [low, high] with {lowest} <= low <= high <= 1"
    )
    if isinstance(value, list):
        if len(value) != 2:
            fail(path, expected, value)
        low, high = (finite(item, path, expected) for item in value)
        if not lowest <= low <= high <= 1:
            fail(path, expected, value)
        return [low, high]
    number = finite(value, path, expected)
    if not 0 <= number <= 1:
        fail(path, expected, value)
    return number


def _search(value, path):
    """`search: {learning_rate: [...], batch_size: [...]}`: the grid of target
    settings every trial trains; a missing list (null) keeps the target stage's."""
    if not isinstance(value, dict):
        fail(path, "a mapping like {learning_rate: [0.01, 0.001], batch_size: [16, 32]}",
             value)
    check_keys(value, ("learning_rate", "batch_size"), path)
    if all(value.get(key) is None for key in ("learning_rate", "batch_size")):
        fail(path, "a list for learning_rate, batch_size or both", value)
    search = {}
    for key, check in (("learning_rate", positive_float), ("batch_size", positive_int)):
        values = value.get(key)
        if values is not None:
            non_empty_list(values, f"{path}.{key}")
            values = [check(item, f"{path}.{key}[{index}]") for index, item in enumerate(values)]
            if len(set(values)) != len(values):
                fail(f"{path}.{key}", f"each {key.replace('_', ' ')} once", value[key])
        search[key] = values
    return search


def _augmentation_option(name, key, value, path):
    if key == "mode":
        return one_of(value, FLIP_MODES, path)
    if key == "fill_mode":
        return one_of(value, FILL_MODES, path)
    if key == "interpolation":
        return one_of(value, INTERPOLATIONS, path)
    if key == "fill_value":
        return finite(value, path, "a number")
    if key == "stddev":
        return positive_float(value, path)
    if key == "value_range":
        expected = "a list [low, high] of numbers with low < high"
        if not isinstance(value, list) or len(value) != 2:
            fail(path, expected, value)
        low, high = (finite(item, path, expected) for item in value)
        if low >= high:
            fail(path, expected, value)
        return [low, high]
    if key == "width_factor" and name == "random_zoom" and value is None:
        return None  # The height factor's range.
    return _factor(value, path, 0 if name == "random_contrast" else -1)


def _augment(value, path):
    """`augment: [random_flip, {random_translation: {height_factor: 0.1}}, ...]`:
    each entry a name (its options at their defaults) or a one-key mapping of a
    name to its options. Resolved as a list of `{name: {every option}}`."""
    names = ", ".join(AUGMENTATIONS)
    if not isinstance(value, list):
        fail(path, f"a list of augmentations ({names}; [] for none)", value)
    resolved = []
    for index, entry in enumerate(value):
        where = f"{path}[{index}]"
        if isinstance(entry, str):
            name, options = entry, {}
        elif isinstance(entry, dict) and len(entry) == 1:
            name, options = next(iter(entry.items()))
            options = optional_mapping(options, f"{where}.{name}")
        else:
            fail(where, f"an augmentation name ({names}) or a mapping of one name to "
                        f"its options, like {{random_translation: {{height_factor: 0.1, "
                        f"width_factor: 0.1}}}}", entry)
        one_of(name, tuple(AUGMENTATIONS), where)
        check_keys(options, tuple(AUGMENTATIONS[name]), f"{where}.{name}")
        resolved.append({name: {
            key: _augmentation_option(
                name, key, options.get(key, default), f"{where}.{name}.{key}"
            )
            for key, default in AUGMENTATIONS[name].items()
        }})
    return resolved


# The model kinds whose weights come from outside keras-tl (pretrained: true).
PRETRAINED_MODELS = ("file", "application", "keras_hub")

# How layers transfer (keras_tl.networks.widen): `exact` copies same-shaped layers;
# `net2wider` (function-preserving) and `slice` copy into a wider target.
TRANSFER_MODES = ("exact", "net2wider", "slice")


def _transfer(value, path):
    """`transfer: {mode: exact | net2wider | slice, noise: 0.0}`."""
    value = optional_mapping(value, path)
    check_keys(value, ("mode", "noise"), path)
    mode = one_of(value.get("mode", "exact"), TRANSFER_MODES, f"{path}.mode")
    noise = non_negative_float(value.get("noise", 0.0), f"{path}.noise")
    if noise and mode != "net2wider":
        raise ConfigError(
            f"{path}.noise: noise applies to mode net2wider only (it perturbs the "
            f"copied units), received noise={noise!r} with mode {mode!r}. Remove "
            f"noise or set {path}.mode: net2wider."
        )
    return {"mode": mode, "noise": noise}


def _source(value, path):
    """A source: a task to train on, or (`pretrained: true`) weights from elsewhere.

    A pretrained `.keras` file may name the task it was trained on (then its
    source-side metrics are measured); a pretrained `application` or `keras_hub`
    backbone has no head for any task of ours, so it takes no `task` and its
    source-side metrics (retention, forgetting, FWT/BWT) are not applicable.
    """
    keys = ("name", "task", "model", "untrained", "pretrained", "epochs", "batch_size",
            "optimizer", "learning_rate", "transfer", "augment")
    if not isinstance(value, dict):
        fail(path, "a mapping", value)
    pretrained = value.get("pretrained", False)
    if not isinstance(pretrained, bool):
        fail(f"{path}.pretrained", "true or false", pretrained)
    taskless = pretrained and "task" not in value
    source = _stage(value, path, keys, STAGE_DEFAULTS, needs_task=not taskless)
    source["model"] = _model(source.get("model"), f"{path}.model")
    if "transfer" in source:  # Only when given: other sources' configs stay as they were.
        source["transfer"] = _transfer(source["transfer"], f"{path}.transfer")
    source["untrained"] = source.get("untrained", False)
    if not isinstance(source["untrained"], bool):
        fail(f"{path}.untrained", "true or false", source["untrained"])
    source["pretrained"] = pretrained
    if source["untrained"] and pretrained:
        fail(path, "at most one of untrained: true and pretrained: true", value)
    if source.get("augment") and (pretrained or source["untrained"]):
        raise ConfigError(
            f"{path}.augment: augmentation applies while keras-tl trains a source, but "
            f"an {'untrained' if source['untrained'] else 'pretrained'} source is not "
            f"trained here. Remove {path}.augment."
        )
    kind = next((k for k in PRETRAINED_MODELS if k in (source["model"] or {})), None)
    if pretrained and kind is None:
        raise ConfigError(
            f"{path}.pretrained: a pretrained source takes its weights from its model: "
            f"set {path}.model to {{file: PATH.keras}}, {{application: NAME, weights: "
            f"imagenet}} or {{keras_hub: PRESET}}. Received model: {source['model']!r}"
        )
    if pretrained and kind != "file" and not taskless:
        raise ConfigError(
            f"{path}.task: a pretrained {kind} backbone has no head for a task of "
            f"ours, so it takes no source task. Remove {path}.task (source-side "
            f"metrics are then reported as not applicable). Received "
            f"task={value['task']!r}"
        )
    if taskless:
        source["task"] = None
        model = source["model"]
        default_name = str(model[kind]) if kind != "application" else (
            f"{model['application']} ({model['weights'] or 'random init'})"
        )
    else:
        default_name = source["task"] + (" (untrained)" if source["untrained"] else "")
    source["name"] = non_empty_string(source.get("name", default_name), f"{path}.name")
    return source


def _train_size(value, path):
    if isinstance(value, bool):
        fail(path, "a positive integer or a fraction in (0, 1]", value)
    if isinstance(value, int) and value >= 1:
        return value
    if isinstance(value, float) and 0 < value <= 1:
        return value
    fail(path, "a positive integer or a fraction in (0, 1]", value)


MAX_ADAPTIVE_SEEDS = 1000
# A number of seeds runs seeds 0..N-1; more than this many is a typo, not a plan.
MAX_SEEDS = 1000
# Seeds go to numpy (below 2**32) and a second training stage uses seed + 1.
MAX_SEED = 2**31 - 1


def _seeds(value, path):
    if isinstance(value, dict):
        check_keys(value, ("min", "max"), path)
        for key in ("min", "max"):
            if key not in value:
                fail(path, "a mapping with both min and max, like {min: 5, max: 30}", value)
        low = positive_int(value["min"], f"{path}.min")
        high = positive_int(value["max"], f"{path}.max")
        if low < 2:
            fail(f"{path}.min", "at least 2 (a paired t statistic needs two seeds)", low)
        if high < low:
            fail(f"{path}.max", f"at least min ({low})", high)
        if high > MAX_ADAPTIVE_SEEDS:
            fail(f"{path}.max", f"at most {MAX_ADAPTIVE_SEEDS}", high)
        return {"min": low, "max": high}
    if isinstance(value, list):
        non_empty_list(value, path)
        if len(value) > MAX_SEEDS:
            fail(path, f"a list of at most {MAX_SEEDS} seeds", value)
        for index, seed in enumerate(value):
            if isinstance(seed, bool) or not isinstance(seed, int) or not (
                0 <= seed <= MAX_SEED
            ):
                fail(f"{path}[{index}]", f"an integer from 0 to {MAX_SEED} (2**31 - 1)",
                      seed)
        if len(set(value)) != len(value):
            fail(path, "distinct seeds", value)
        return list(value)
    return list(range(positive_int(value, path, maximum=MAX_SEEDS)))


def resolve(raw):
    """Validates a raw experiment mapping and fills every default.

    Args:
        raw: dict. As read from YAML; missing keys take the defaults of the
            built-in experiment (`DEFAULT_EXPERIMENT`).

    Returns:
        An `Experiment`.

    Raises:
        ConfigError: naming the key path, the expected values and what was received.
    """
    if not isinstance(raw, dict):
        fail("experiment", "a mapping of keys such as name, model, source, target", raw)
    allowed = (
        "name", "model", "source", "sources", "target", "arms", "freeze_depths",
        "freeze", "seeds", "learning_rates", "early_stopping", "metrics", "scores", "lp_ft",
        "l2sp", "fused", "cache_features", "feature_cache_mb", "distribution", "transfer",
        "precision", "search",
    )
    check_keys(raw, allowed, "")
    if "source" in raw and "sources" in raw:
        raise ConfigError(
            "sources: give either 'source' (one source) or 'sources' (a list), not both."
        )
    config = {}
    config["name"] = run_name(raw.get("name", DEFAULT_EXPERIMENT["name"]), "name")
    config["model"] = _model(raw.get("model", DEFAULT_EXPERIMENT["model"]), "model")
    if "sources" in raw:
        raw_sources = non_empty_list(raw["sources"], "sources")
        paths = [f"sources[{index}]" for index in range(len(raw_sources))]
    else:
        raw_sources = [raw.get("source", DEFAULT_EXPERIMENT["source"])]
        paths = ["source"]
    config["sources"] = [_source(item, path) for item, path in zip(raw_sources, paths)]
    names = [source["name"] for source in config["sources"]]
    if len(set(names)) != len(names):
        fail("sources", "distinct source names (set 'name' to tell them apart)", names)
    target_keys = ("task", "train_sizes", "epochs", "batch_size", "optimizer", "learning_rate",
                   "augment")
    target = _stage(
        raw.get("target", DEFAULT_EXPERIMENT["target"]), "target", target_keys,
        {**STAGE_DEFAULTS, "train_sizes": [1.0]},
    )
    sizes = non_empty_list(target["train_sizes"], "target.train_sizes")
    target["train_sizes"] = [
        _train_size(size, f"target.train_sizes[{index}]") for index, size in enumerate(sizes)
    ]
    # 1 (one sample) and 1.0 (the whole split) differ although 1 == 1.0 in Python.
    keys = [(isinstance(size, float), size) for size in target["train_sizes"]]
    if len(set(keys)) != len(keys):
        fail("target.train_sizes", "each train size once", sizes)
    config["target"] = target

    arms = non_empty_list(raw.get("arms", DEFAULT_EXPERIMENT["arms"]), "arms")
    for index, arm in enumerate(arms):
        one_of(arm, tuple(ARMS), f"arms[{index}]")
    if len(set(arms)) != len(arms):
        fail("arms", "each arm once", arms)
    if BASELINE not in arms:
        raise ConfigError(
            f"arms: must include {BASELINE!r}, the baseline every gain is measured "
            f"against. Received: {arms!r}"
        )
    config["arms"] = list(arms)

    if "transfer" in raw:
        # Only when given, so the resolved config (its fingerprint and trial keys)
        # of an experiment without it stays as it was.
        config["transfer"] = _transfer(raw["transfer"], "transfer")
    config["freeze"] = _freeze(raw.get("freeze"), "freeze")
    if config["freeze"] is not None:
        # The resolved config of such an experiment holds freeze_depths: null.
        if raw.get("freeze_depths") is not None:
            raise ConfigError(
                "freeze_depths: give either 'freeze_depths' (a depth sweep) or "
                "'freeze: {layers: REGEX}' (the transferred layers to freeze), not both."
            )
        depths = None
    else:
        depths = raw.get("freeze_depths")
        if depths is None:  # Not given, or null: the default.
            depths = DEFAULT_EXPERIMENT["freeze_depths"]
    if depths is not None and depths != "all":
        non_empty_list(depths, "freeze_depths")
        for index, depth in enumerate(depths):
            if depth == "all":
                raise ConfigError(
                    f"freeze_depths[{index}]: 'all' stands alone, not in a list: write "
                    f"freeze_depths: all (every depth), or a list of integers >= 0 such "
                    f"as [0, 1, 2]. Received {shown(depths)}"
                )
            if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
                fail(f"freeze_depths[{index}]", "an integer >= 0 (or 'all')", depth)
        depths = sorted(set(depths))
    config["freeze_depths"] = depths
    config["seeds"] = _seeds(raw.get("seeds", DEFAULT_EXPERIMENT["seeds"]), "seeds")

    rates = raw.get("learning_rates")
    if rates is not None:
        non_empty_list(rates, "learning_rates")
        rates = [
            positive_float(rate, f"learning_rates[{index}]")
            for index, rate in enumerate(rates)
        ]
        if len(set(rates)) != len(rates):
            fail("learning_rates", "each learning rate once", raw["learning_rates"])
    config["learning_rates"] = rates
    if "search" in raw:
        # Only when given, so the resolved config (its fingerprint and trial keys)
        # of an experiment without it stays as it was.
        if rates is not None:
            raise ConfigError(
                "search: give either 'learning_rates' (a learning-rate grid, the same as "
                "search.learning_rate) or 'search: {learning_rate: [...], batch_size: "
                "[...]}', not both."
            )
        config["search"] = _search(raw["search"], "search")

    stopping = raw.get("early_stopping")
    if stopping is not None:
        if not isinstance(stopping, dict):
            fail("early_stopping", "a mapping like {patience: 5}", stopping)
        check_keys(stopping, ("patience",), "early_stopping")
        stopping = {"patience": positive_int(stopping.get("patience"), "early_stopping.patience")}
    config["early_stopping"] = stopping

    scores = raw.get("scores")
    if scores is not None:
        if not isinstance(scores, list):
            fail("scores", f"a list of {', '.join(SCORE_NAMES)} (or [] for none)", scores)
        for index, score in enumerate(scores):
            one_of(score, SCORE_NAMES, f"scores[{index}]")
        if len(set(scores)) != len(scores):
            fail("scores", "each score once", scores)
    config["scores"] = scores

    metrics = raw.get("metrics")
    if metrics is not None:
        non_empty_list(metrics, "metrics")
        for index, metric in enumerate(metrics):
            one_of(metric, METRICS, f"metrics[{index}]")
        if len(set(metrics)) != len(metrics):
            fail("metrics", "each metric once", metrics)
    config["metrics"] = metrics

    lp_ft = optional_mapping(raw.get("lp_ft"), "lp_ft")
    check_keys(lp_ft, tuple(LP_FT_DEFAULTS), "lp_ft")
    config["lp_ft"] = {
        key: positive_float(lp_ft.get(key, default), f"lp_ft.{key}")
        for key, default in LP_FT_DEFAULTS.items()
    }
    if config["lp_ft"]["probe_fraction"] >= 1:
        fail("lp_ft.probe_fraction", "a fraction in (0, 1)", lp_ft["probe_fraction"])
    cache_features = raw.get("cache_features", CACHE_FEATURES_DEFAULT)
    if not isinstance(cache_features, bool):
        fail("cache_features", "true or false", cache_features)
    config["cache_features"] = cache_features
    feature_cache_mb = raw.get("feature_cache_mb", FEATURE_CACHE_MB_DEFAULT)
    if finite(feature_cache_mb, "feature_cache_mb", "a number of MB >= 0") < 0:
        fail("feature_cache_mb", "a number of MB >= 0", feature_cache_mb)
    config["feature_cache_mb"] = feature_cache_mb
    distribution = raw.get("distribution")
    if distribution is not None:
        one_of(distribution, DISTRIBUTIONS, "distribution")
    config["distribution"] = distribution
    precision = raw.get("precision", DEFAULT_PRECISION)
    one_of(precision, PRECISIONS, "precision")
    if precision != DEFAULT_PRECISION:
        # Only when set, so the fingerprints of float32 experiments stay as they were.
        config["precision"] = precision

    if "fused" in config["arms"] and config["target"].get("augment"):
        raise ConfigError(
            "target.augment: the fused arm trains on joint batches of several tasks, "
            "which keras-tl does not augment, so it would not be compared like for "
            "like. Remove 'fused' from arms, or remove target.augment."
        )
    fused = optional_mapping(raw.get("fused"), "fused")
    check_keys(fused, ("tasks", "loss_weights"), "fused")
    source_tasks = [source["task"] for source in config["sources"] if source["task"]]
    if "fused" in config["arms"] and not source_tasks:
        raise ConfigError(
            "arms: 'fused' trains the source task jointly with the target, but no "
            "source has a task (a pretrained backbone without a task). Remove "
            "'fused' or add a source with a task."
        )
    fused_tasks = fused.get("tasks")
    if not fused_tasks:
        target_task = config["target"]["task"]
        if "fused" in config["arms"] and source_tasks[0] == target_task:
            index = next(i for i, s in enumerate(config["sources"]) if s["task"])
            path = f"sources[{index}]" if "sources" in raw else "source"
            raise ConfigError(
                f"arms: 'fused' trains a source task jointly with the target task, but "
                f"{path}.task is the target task {target_task!r}. Use a different "
                f"source task, list the tasks to fuse in fused.tasks, or remove "
                f"'fused' from arms."
            )
        # Without a fused arm the default is never used; the same task fuses once.
        fused_tasks = list(dict.fromkeys([*source_tasks[:1], target_task]))
    non_empty_list(fused_tasks, "fused.tasks")
    allowed_tasks = [*source_tasks, config["target"]["task"]]
    for index, task in enumerate(fused_tasks):
        one_of(task, allowed_tasks, f"fused.tasks[{index}]")
    if config["target"]["task"] not in fused_tasks or len(set(fused_tasks)) != len(fused_tasks):
        fail("fused.tasks", "distinct tasks including the target task", fused_tasks)
    weights = fused.get("loss_weights") or [1.0] * len(fused_tasks)
    if not isinstance(weights, list) or len(weights) != len(fused_tasks):
        fail("fused.loss_weights", f"a list of {len(fused_tasks)} numbers", weights)
    weights = [
        non_negative_float(weight, f"fused.loss_weights[{index}]")
        for index, weight in enumerate(weights)
    ]
    config["fused"] = {"tasks": list(fused_tasks), "loss_weights": weights}

    l2sp = optional_mapping(raw.get("l2sp"), "l2sp")
    check_keys(l2sp, tuple(L2SP_DEFAULTS), "l2sp")
    config["l2sp"] = {
        key: non_negative_float(l2sp.get(key, default), f"l2sp.{key}")
        for key, default in L2SP_DEFAULTS.items()
    }
    # What no check above looked at (a custom builder's options) must still be
    # plain data: it is hashed into the fingerprint and written to results.json.
    check_plain(raw, "")
    return Experiment(config=config)


def load_experiment(source=None, overrides=None):
    """Reads, validates and resolves an experiment.

    Args:
        source: a path to a YAML file, a dict, an `Experiment`, or None for the
            built-in default (`small_cnn`, `digits` -> `digits:parity`, 30 target
            samples, 3 seeds).
        overrides: dict. Top-level keys that replace the file's (the CLI's
            `--seeds` uses this).

    Returns:
        An `Experiment`.

    Example:

    >>> experiment = keras_tl.load_experiment("examples/split_digits.yaml")
    """
    if isinstance(source, Experiment):
        raw = source.to_dict()
    elif source is None:
        raw = copy.deepcopy(DEFAULT_EXPERIMENT)
    elif isinstance(source, dict):
        raw = copy.deepcopy(source)
    elif isinstance(source, (str, os.PathLike)):
        raw = read_yaml(os.fspath(source))
    else:
        fail("experiment", "a YAML path, a mapping or an Experiment", source)
    if overrides:
        if not isinstance(raw, dict):
            fail("experiment", "a mapping", raw)
        raw.update(overrides)
    return resolve(raw)
