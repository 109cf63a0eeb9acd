"""Experiment files: YAML or dict -> a validated `Experiment` with every default filled.

Validation is structural and happens before anything is trained; every error names
the key path, the allowed values and what was received. Checks that need the
network or the data (a freeze depth beyond the network, a train size larger than
the train split) run in `keras_tl.evaluator.plan`, still before any training.
"""

import copy
import dataclasses
import difflib
import hashlib
import json
import os
import re

from keras_tl.config.arms import (
    ARMS,
    BASELINE,
    CACHE_FEATURES_DEFAULT,
    DISTRIBUTIONS,
    FEATURE_CACHE_MB_DEFAULT,
    L2SP_DEFAULTS,
    LP_FT_DEFAULTS,
    METRICS,
    OPTIMIZERS,
    SCORE_NAMES,
    STAGE_DEFAULTS,
)
from keras_tl.errors import ConfigError

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
    "arms": ["scratch", "fine_tune", "linear_probe"],
    "freeze_depths": [0],
    "seeds": 3,
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
        return list(self.config["seeds"])

    def to_dict(self):
        return copy.deepcopy(self.config)

    def fingerprint(self):
        """A stable hash of the resolved config: same experiment, same hash."""
        text = json.dumps(self.config, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _fail(path, expected, received):
    raise ConfigError(f"{path}: expected {expected}, received {received!r}")


def _check_keys(section, allowed, path):
    for key in section:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), list(allowed), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            where = f"{path}." if path else ""
            raise ConfigError(
                f"{where}{key}: unknown key. Allowed keys: {', '.join(allowed)}.{hint}"
            )


def _mapping(value, path):
    """An optional section: a mapping, or None for all its defaults."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(path, "a mapping of option names to values", value)
    return value


def _positive_int(value, path):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _fail(path, "a positive integer", value)
    return value


def _positive_float(value, path):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        _fail(path, "a positive number", value)
    return float(value)


def _non_negative_float(value, path):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        _fail(path, "a number >= 0", value)
    return float(value)


def _choice(value, allowed, path):
    if value not in allowed:
        _fail(path, f"one of {', '.join(allowed)}", value)
    return value


def _non_empty_list(value, path):
    if not isinstance(value, list) or not value:
        _fail(path, "a non-empty list", value)
    return value


def _string(value, path):
    if not isinstance(value, str) or not value:
        _fail(path, "a non-empty string", value)
    return value


def _freeze(value, path):
    """`freeze: {layers: REGEX}`: the transferred layers whose names match freeze."""
    if value is None:
        return None
    if not isinstance(value, dict):
        _fail(path, "a mapping like {layers: \"conv.*\"}", value)
    _check_keys(value, ("layers",), path)
    pattern = _string(value.get("layers"), f"{path}.layers")
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
        _fail(path, "a builder name or a mapping with 'builder' or 'file'", value)
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
        _check_keys(value, ("keras_hub", "weights", "pooling"), path)
        _string(value["keras_hub"], f"{path}.keras_hub")
        if value.get("weights", None) not in (None, "preset"):
            _fail(f"{path}.weights", "preset or null", value["weights"])
        value.setdefault("weights", None)
        value.setdefault("pooling", "avg")
        _choice(value["pooling"], ("avg", "max"), f"{path}.pooling")
    elif "application" in value:
        _check_keys(value, ("application", "weights", "image_shape", "pooling"), path)
        _string(value["application"], f"{path}.application")
        if value.get("weights", None) not in (None, "imagenet"):
            _fail(f"{path}.weights", "imagenet or null", value["weights"])
        value.setdefault("weights", None)
        value.setdefault("pooling", "avg")
        _choice(value["pooling"], ("avg", "max"), f"{path}.pooling")
        shape = value.get("image_shape")
        if shape is not None and (
            not isinstance(shape, list) or len(shape) != 3
            or not all(isinstance(d, int) and d > 0 for d in shape)
        ):
            _fail(f"{path}.image_shape", "[height, width, 3]", shape)
    elif "file" in value:
        _check_keys(value, ("file",), path)
        _string(value["file"], f"{path}.file")
    else:
        _string(value["builder"], f"{path}.builder")
    return value


def _stage(value, path, keys, defaults, needs_task=True):
    if not isinstance(value, dict):
        _fail(path, "a mapping", value)
    _check_keys(value, keys, path)
    stage = {**defaults, **value}
    if needs_task:
        stage["task"] = _string(stage.get("task"), f"{path}.task")
    stage["epochs"] = _positive_int(stage["epochs"], f"{path}.epochs")
    stage["batch_size"] = _positive_int(stage["batch_size"], f"{path}.batch_size")
    stage["optimizer"] = _choice(stage["optimizer"], OPTIMIZERS, f"{path}.optimizer")
    stage["learning_rate"] = _positive_float(
        stage["learning_rate"], f"{path}.learning_rate"
    )
    return stage


# The model kinds whose weights come from outside keras-tl (pretrained: true).
PRETRAINED_MODELS = ("file", "application", "keras_hub")


def _source(value, path):
    """A source: a task to train on, or (`pretrained: true`) weights from elsewhere.

    A pretrained `.keras` file may name the task it was trained on (then its
    source-side metrics are measured); a pretrained `application` or `keras_hub`
    backbone has no head for any task of ours, so it takes no `task` and its
    source-side metrics (retention, forgetting, FWT/BWT) are not applicable.
    """
    keys = ("name", "task", "model", "untrained", "pretrained", "epochs", "batch_size",
            "optimizer", "learning_rate")
    if not isinstance(value, dict):
        _fail(path, "a mapping", value)
    pretrained = value.get("pretrained", False)
    if not isinstance(pretrained, bool):
        _fail(f"{path}.pretrained", "true or false", pretrained)
    taskless = pretrained and "task" not in value
    source = _stage(value, path, keys, STAGE_DEFAULTS, needs_task=not taskless)
    source["model"] = _model(source.get("model"), f"{path}.model")
    source["untrained"] = source.get("untrained", False)
    if not isinstance(source["untrained"], bool):
        _fail(f"{path}.untrained", "true or false", source["untrained"])
    source["pretrained"] = pretrained
    if source["untrained"] and pretrained:
        _fail(path, "at most one of untrained: true and pretrained: true", value)
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
    source["name"] = _string(source.get("name", default_name), f"{path}.name")
    return source


def _train_size(value, path):
    if isinstance(value, bool):
        _fail(path, "a positive integer or a fraction in (0, 1]", value)
    if isinstance(value, int) and value >= 1:
        return value
    if isinstance(value, float) and 0 < value <= 1:
        return value
    _fail(path, "a positive integer or a fraction in (0, 1]", value)


def _seeds(value, path):
    if isinstance(value, list):
        _non_empty_list(value, path)
        for index, seed in enumerate(value):
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                _fail(f"{path}[{index}]", "a non-negative integer", seed)
        if len(set(value)) != len(value):
            _fail(path, "distinct seeds", value)
        return list(value)
    return list(range(_positive_int(value, path)))


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
        _fail("experiment", "a mapping of keys such as name, model, source, target", raw)
    allowed = (
        "name", "model", "source", "sources", "target", "arms", "freeze_depths",
        "freeze", "seeds", "learning_rates", "early_stopping", "metrics", "scores", "lp_ft",
        "l2sp", "fused", "cache_features", "feature_cache_mb", "distribution",
    )
    _check_keys(raw, allowed, "")
    if "source" in raw and "sources" in raw:
        raise ConfigError(
            "sources: give either 'source' (one source) or 'sources' (a list), not both."
        )
    config = {}
    config["name"] = _string(raw.get("name", DEFAULT_EXPERIMENT["name"]), "name")
    config["model"] = _model(raw.get("model", DEFAULT_EXPERIMENT["model"]), "model")
    if "sources" in raw:
        raw_sources = _non_empty_list(raw["sources"], "sources")
        paths = [f"sources[{index}]" for index in range(len(raw_sources))]
    else:
        raw_sources = [raw.get("source", DEFAULT_EXPERIMENT["source"])]
        paths = ["source"]
    config["sources"] = [_source(item, path) for item, path in zip(raw_sources, paths)]
    names = [source["name"] for source in config["sources"]]
    if len(set(names)) != len(names):
        _fail("sources", "distinct source names (set 'name' to tell them apart)", names)
    target_keys = ("task", "train_sizes", "epochs", "batch_size", "optimizer", "learning_rate")
    target = _stage(
        raw.get("target", DEFAULT_EXPERIMENT["target"]), "target", target_keys,
        {**STAGE_DEFAULTS, "train_sizes": [1.0]},
    )
    sizes = _non_empty_list(target["train_sizes"], "target.train_sizes")
    target["train_sizes"] = [
        _train_size(size, f"target.train_sizes[{index}]") for index, size in enumerate(sizes)
    ]
    config["target"] = target

    arms = _non_empty_list(raw.get("arms", DEFAULT_EXPERIMENT["arms"]), "arms")
    for index, arm in enumerate(arms):
        _choice(arm, tuple(ARMS), f"arms[{index}]")
    if len(set(arms)) != len(arms):
        _fail("arms", "each arm once", arms)
    if BASELINE not in arms:
        raise ConfigError(
            f"arms: must include {BASELINE!r}, the baseline every gain is measured "
            f"against. Received: {arms!r}"
        )
    config["arms"] = list(arms)

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
        depths = raw.get("freeze_depths", DEFAULT_EXPERIMENT["freeze_depths"])
    if depths is not None and depths != "all":
        _non_empty_list(depths, "freeze_depths")
        for index, depth in enumerate(depths):
            if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
                _fail(f"freeze_depths[{index}]", "an integer >= 0 (or 'all')", depth)
        depths = sorted(set(depths))
    config["freeze_depths"] = depths
    config["seeds"] = _seeds(raw.get("seeds", DEFAULT_EXPERIMENT["seeds"]), "seeds")

    rates = raw.get("learning_rates")
    if rates is not None:
        _non_empty_list(rates, "learning_rates")
        rates = [
            _positive_float(rate, f"learning_rates[{index}]")
            for index, rate in enumerate(rates)
        ]
    config["learning_rates"] = rates

    stopping = raw.get("early_stopping")
    if stopping is not None:
        if not isinstance(stopping, dict):
            _fail("early_stopping", "a mapping like {patience: 5}", stopping)
        _check_keys(stopping, ("patience",), "early_stopping")
        stopping = {"patience": _positive_int(stopping.get("patience"), "early_stopping.patience")}
    config["early_stopping"] = stopping

    scores = raw.get("scores")
    if scores is not None:
        if not isinstance(scores, list):
            _fail("scores", f"a list of {', '.join(SCORE_NAMES)} (or [] for none)", scores)
        for index, score in enumerate(scores):
            _choice(score, SCORE_NAMES, f"scores[{index}]")
    config["scores"] = scores

    metrics = raw.get("metrics")
    if metrics is not None:
        _non_empty_list(metrics, "metrics")
        for index, metric in enumerate(metrics):
            _choice(metric, METRICS, f"metrics[{index}]")
    config["metrics"] = metrics

    lp_ft = _mapping(raw.get("lp_ft"), "lp_ft")
    _check_keys(lp_ft, tuple(LP_FT_DEFAULTS), "lp_ft")
    config["lp_ft"] = {
        key: _positive_float(lp_ft.get(key, default), f"lp_ft.{key}")
        for key, default in LP_FT_DEFAULTS.items()
    }
    if config["lp_ft"]["probe_fraction"] >= 1:
        _fail("lp_ft.probe_fraction", "a fraction in (0, 1)", lp_ft["probe_fraction"])
    cache_features = raw.get("cache_features", CACHE_FEATURES_DEFAULT)
    if not isinstance(cache_features, bool):
        _fail("cache_features", "true or false", cache_features)
    config["cache_features"] = cache_features
    feature_cache_mb = raw.get("feature_cache_mb", FEATURE_CACHE_MB_DEFAULT)
    is_number = isinstance(feature_cache_mb, (int, float)) and not isinstance(
        feature_cache_mb, bool
    )
    if not is_number or feature_cache_mb < 0:
        _fail("feature_cache_mb", "a number of MB >= 0", feature_cache_mb)
    config["feature_cache_mb"] = feature_cache_mb
    distribution = raw.get("distribution")
    if distribution is not None:
        _choice(distribution, DISTRIBUTIONS, "distribution")
    config["distribution"] = distribution

    fused = _mapping(raw.get("fused"), "fused")
    _check_keys(fused, ("tasks", "loss_weights"), "fused")
    source_tasks = [source["task"] for source in config["sources"] if source["task"]]
    if "fused" in config["arms"] and not source_tasks:
        raise ConfigError(
            "arms: 'fused' trains the source task jointly with the target, but no "
            "source has a task (a pretrained backbone without a task). Remove "
            "'fused' or add a source with a task."
        )
    fused_tasks = fused.get("tasks") or [*source_tasks[:1], config["target"]["task"]]
    _non_empty_list(fused_tasks, "fused.tasks")
    allowed_tasks = [*source_tasks, config["target"]["task"]]
    for index, task in enumerate(fused_tasks):
        _choice(task, allowed_tasks, f"fused.tasks[{index}]")
    if config["target"]["task"] not in fused_tasks or len(set(fused_tasks)) != len(fused_tasks):
        _fail("fused.tasks", "distinct tasks including the target task", fused_tasks)
    weights = fused.get("loss_weights") or [1.0] * len(fused_tasks)
    if not isinstance(weights, list) or len(weights) != len(fused_tasks):
        _fail("fused.loss_weights", f"a list of {len(fused_tasks)} numbers", weights)
    weights = [
        _non_negative_float(weight, f"fused.loss_weights[{index}]")
        for index, weight in enumerate(weights)
    ]
    config["fused"] = {"tasks": list(fused_tasks), "loss_weights": weights}

    l2sp = _mapping(raw.get("l2sp"), "l2sp")
    _check_keys(l2sp, tuple(L2SP_DEFAULTS), "l2sp")
    config["l2sp"] = {
        key: _non_negative_float(l2sp.get(key, default), f"l2sp.{key}")
        for key, default in L2SP_DEFAULTS.items()
    }
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
        raw = _read_yaml(os.fspath(source))
    else:
        _fail("experiment", "a YAML path, a mapping or an Experiment", source)
    if overrides:
        if not isinstance(raw, dict):
            _fail("experiment", "a mapping", raw)
        raw.update(overrides)
    return resolve(raw)


def _read_yaml(path):
    import yaml

    if not os.path.isfile(path):
        raise ConfigError(
            f"Experiment file not found: {path!r}. Expected a YAML file; see "
            f"examples/ for templates."
        )
    try:
        with open(path) as file:
            raw = yaml.safe_load(file)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        first_line = str(error).strip().splitlines()[0]
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path}: not valid YAML{where} ({first_line}). Fix the syntax; see "
            f"examples/."
        ) from None
    if raw is None:
        raise ConfigError(f"{path}: the file is empty. Expected a mapping of keys.")
    return raw
