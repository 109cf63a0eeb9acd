"""Tests for keras_tl.config (structure) and keras_tl.evaluator.plan (data checks)."""

import copy
import json

import pytest

import keras_tl
from keras_tl.config.schema import (
    ARMS,
    DEFAULT_EXPERIMENT,
    METRICS,
    OPTIMIZERS,
    Experiment,
    load_experiment,
    resolve,
)
from keras_tl.errors import ConfigError, DataError
from keras_tl.experiment.plan import plan

# A valid experiment that sets every key away from its default.
FULL = {
    "name": "full",
    "model": {"builder": "small_cnn", "filters": [8, 16], "units": 32},
    "source": {
        "task": "digits:0-4",
        "model": "small_cnn",
        "epochs": 2,
        "batch_size": 16,
        "optimizer": "sgd",
        "learning_rate": 0.1,
    },
    "target": {
        "task": "digits:5-9",
        "train_sizes": [20, 0.5, 1.0],
        "epochs": 3,
        "batch_size": 8,
        "optimizer": "rmsprop",
        "learning_rate": 0.002,
    },
    "arms": [
        "scratch",
        "fine_tune",
        "linear_probe",
        "lp_ft",
        "l2sp",
        "random_transfer",
    ],
    "freeze_depths": "all",
    "seeds": [3, 1, 4],
    "learning_rates": [0.01, 0.001],
    "early_stopping": {"patience": 2},
    "metrics": ["loss", "accuracy"],
    "lp_ft": {"learning_rate_scale": 0.2, "probe_fraction": 0.25},
    "l2sp": {"alpha": 0.5, "beta": 0.0},
}


def _with(changes):
    """The default experiment with `changes` ({"a.b": value}) applied."""
    raw = copy.deepcopy(DEFAULT_EXPERIMENT)
    for path, value in changes.items():
        *parents, last = path.split(".")
        section = raw
        for key in parents:
            section = section[key]
        section[last] = value
    return raw


def _error(raw):
    with pytest.raises(ConfigError) as info:
        load_experiment(raw)
    return str(info.value)


# The default and round trips


def test_the_default_experiment_resolves_with_every_default_filled():
    experiment = load_experiment()
    config = experiment.config
    assert isinstance(experiment, Experiment)
    assert experiment.name == "parity"
    # Adaptive seeds (DEFAULT_EXPERIMENT): rounds of seeds from 5 up to 30.
    assert experiment.seed_range == (5, 30)
    assert experiment.seeds == list(range(30))
    assert config["model"] == {"builder": "small_cnn"}
    (source,) = config["sources"]
    assert source["task"] == "digits" and source["name"] == "digits"
    assert source["model"] is None and source["untrained"] is False
    assert config["target"]["task"] == "digits:parity"
    assert config["target"]["train_sizes"] == [30]
    assert config["arms"] == ["scratch", "fine_tune"]
    assert config["freeze_depths"] == [0]
    assert config["learning_rates"] is None
    assert config["early_stopping"] is None
    assert config["metrics"] is None
    assert config["lp_ft"] == {"learning_rate_scale": 0.1, "probe_fraction": 0.5}
    assert config["l2sp"] == {"alpha": 0.01, "beta": 0.01}


def test_keras_tl_default_experiment_is_the_built_in_default():
    assert keras_tl.load_experiment is load_experiment
    assert (
        load_experiment(None).fingerprint() == resolve(DEFAULT_EXPERIMENT).fingerprint()
    )


def test_missing_keys_take_their_defaults():
    experiment = load_experiment({"target": {"task": "digits:0-4"}})
    assert experiment.config["target"]["train_sizes"] == [1.0]
    assert experiment.config["target"]["epochs"] == 10
    assert experiment.config["sources"] == load_experiment().config["sources"]


@pytest.mark.parametrize("raw", [DEFAULT_EXPERIMENT, FULL], ids=["default", "full"])
def test_resolving_the_resolved_config_round_trips_to_the_same_fingerprint(raw):
    experiment = load_experiment(raw)
    again = resolve(experiment.to_dict())
    assert again.to_dict() == experiment.to_dict()
    assert again.fingerprint() == experiment.fingerprint()
    # Also through JSON, as results.json stores it.
    from_json = resolve(json.loads(json.dumps(experiment.to_dict())))
    assert from_json.fingerprint() == experiment.fingerprint()
    assert load_experiment(experiment).fingerprint() == experiment.fingerprint()


def test_different_experiments_have_different_fingerprints():
    assert (
        load_experiment(_with({"seeds": 2})).fingerprint()
        != load_experiment().fingerprint()
    )


def test_to_dict_is_a_copy():
    experiment = load_experiment()
    experiment.to_dict()["target"]["epochs"] = 999
    assert experiment.config["target"]["epochs"] == 50


def test_full_experiment_keeps_every_value():
    config = load_experiment(FULL).config
    assert config["seeds"] == [3, 1, 4]
    assert config["target"]["train_sizes"] == [20, 0.5, 1.0]
    assert config["freeze_depths"] == "all"
    assert config["sources"][0]["model"] == {"builder": "small_cnn"}
    assert config["learning_rates"] == [0.01, 0.001]
    assert config["early_stopping"] == {"patience": 2}


def test_freeze_depths_are_sorted_and_deduplicated():
    config = load_experiment(_with({"freeze_depths": [2, 0, 2, 1]})).config
    assert config["freeze_depths"] == [0, 1, 2]


def test_overrides_replace_top_level_keys():
    assert load_experiment(None, overrides={"seeds": 5}).seeds == [0, 1, 2, 3, 4]


# YAML


def test_yaml_file_loads_to_the_same_experiment_as_the_dict(tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_text("""
name: full
model: {builder: small_cnn, filters: [8, 16], units: 32}
source:
  task: "digits:0-4"
  model: small_cnn
  epochs: 2
  batch_size: 16
  optimizer: sgd
  learning_rate: 0.1
target:
  task: "digits:5-9"
  train_sizes: [20, 0.5, 1.0]
  epochs: 3
  batch_size: 8
  optimizer: rmsprop
  learning_rate: 0.002
arms: [scratch, fine_tune, linear_probe, lp_ft, l2sp, random_transfer]
freeze_depths: all
seeds: [3, 1, 4]
learning_rates: [0.01, 0.001]
early_stopping: {patience: 2}
metrics: [loss, accuracy]
lp_ft: {learning_rate_scale: 0.2, probe_fraction: 0.25}
l2sp: {alpha: 0.5, beta: 0.0}
""")
    assert load_experiment(path).to_dict() == load_experiment(FULL).to_dict()
    assert (
        load_experiment(str(path)).fingerprint() == load_experiment(FULL).fingerprint()
    )


def test_yaml_is_read_safely(tmp_path):
    path = tmp_path / "unsafe.yaml"
    path.write_text("name: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_experiment(path)


def test_bad_yaml_raises_config_error_naming_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: parity\narms: [scratch, fine_tune\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        load_experiment(path)


def test_missing_experiment_file_raises_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"Experiment file not found: .*absent\.yaml"):
        load_experiment(tmp_path / "absent.yaml")


@pytest.mark.parametrize("text", ["", "\n# only a comment\n"], ids=["empty", "comment"])
def test_empty_experiment_file_raises_config_error(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"empty\.yaml: the file is empty"):
        load_experiment(path)


def test_yaml_that_is_not_a_mapping_raises_config_error(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- scratch\n- fine_tune\n")
    with pytest.raises(ConfigError, match="^experiment: expected a mapping"):
        load_experiment(path)


# Structural errors name the key path


def test_train_size_error_names_the_index_and_the_allowed_values():
    raw = _with({"target.train_sizes": [30, 100, -5]})
    assert _error(raw) == (
        "target.train_sizes[2]: expected a positive integer or a fraction in (0, 1], "
        "received -5"
    )


@pytest.mark.parametrize(
    "changes, key_path, suggestion",
    [
        ({"nmae": "x"}, "nmae", "name"),
        ({"target.epoch": 5}, "target.epoch", "epochs"),
        ({"source.learning_rat": 0.1}, "source.learning_rat", "learning_rate"),
        ({"early_stopping": {"patients": 3}}, "early_stopping.patients", "patience"),
        (
            {"lp_ft": {"probe_fractions": 0.3}},
            "lp_ft.probe_fractions",
            "probe_fraction",
        ),
        ({"l2sp": {"alpah": 0.1}}, "l2sp.alpah", "alpha"),
    ],
)
def test_unknown_key_names_its_path_and_suggests_the_closest_key(
    changes, key_path, suggestion
):
    message = _error(_with(changes))
    assert message.startswith(f"{key_path}: unknown key. Allowed keys: ")
    assert message.endswith(f"Did you mean {suggestion!r}?")


def test_unknown_key_without_a_close_match_lists_the_allowed_keys():
    message = _error(_with({"zzzzzz": 1}))
    assert message.startswith("zzzzzz: unknown key. Allowed keys: name, model, source")
    assert "Did you mean" not in message


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"name": 5}, "name: expected a non-empty string, received 5"),
        ({"source": [1, 2]}, "source: expected a mapping, received [1, 2]"),
        (
            {"source.epochs": "10"},
            "source.epochs: expected a positive integer, received '10'",
        ),
        (
            {"target.epochs": 0},
            "target.epochs: expected a positive integer, received 0",
        ),
        (
            {"target.batch_size": 2.5},
            "target.batch_size: expected a positive integer, received 2.5",
        ),
        (
            {"target.learning_rate": "fast"},
            "target.learning_rate: expected a positive number, received 'fast'",
        ),
        (
            {"source.learning_rate": -0.1},
            "source.learning_rate: expected a positive number, received -0.1",
        ),
        (
            {"target.task": None},
            "target.task: expected a non-empty string, received None",
        ),
        (
            {"target.train_sizes": 30},
            "target.train_sizes: expected a non-empty list, received 30",
        ),
        (
            {"target.train_sizes": [True]},
            (
                "target.train_sizes[0]: expected a positive integer or a fraction in "
                "(0, 1], received True"
            ),
        ),
        (
            {"target.train_sizes": [1.5]},
            (
                "target.train_sizes[0]: expected a positive integer or a fraction in "
                "(0, 1], received 1.5"
            ),
        ),
        (
            {"target.train_sizes": [0]},
            (
                "target.train_sizes[0]: expected a positive integer or a fraction in "
                "(0, 1], received 0"
            ),
        ),
        (
            {"freeze_depths": [0, -1]},
            "freeze_depths[1]: expected an integer >= 0 (or 'all'), received -1",
        ),
        (
            {"freeze_depths": "every"},
            "freeze_depths: expected a non-empty list, received 'every'",
        ),
        ({"seeds": 0}, "seeds: expected a positive integer, received 0"),
        ({"seeds": "three"}, "seeds: expected a positive integer, received 'three'"),
        (
            {"seeds": [0, -1]},
            "seeds[1]: expected an integer from 0 to 2147483647 (2**31 - 1), received -1",
        ),
        ({"seeds": [1, 1]}, "seeds: expected distinct seeds, received [1, 1]"),
        (
            {"learning_rates": [0.1, 0]},
            "learning_rates[1]: expected a positive number, received 0",
        ),
        (
            {"early_stopping": 5},
            "early_stopping: expected a mapping like {patience: 5}, received 5",
        ),
        (
            {"early_stopping": {"patience": 0}},
            "early_stopping.patience: expected a positive integer, received 0",
        ),
        (
            {"lp_ft": {"probe_fraction": 1.0}},
            "lp_ft.probe_fraction: expected a fraction in (0, 1), received 1.0",
        ),
        ({"l2sp": {"alpha": -1}}, "l2sp.alpha: expected a number >= 0, received -1"),
        (
            {"model": 5},
            (
                "model: expected a builder name or a mapping with 'builder' or "
                "'file', received 5"
            ),
        ),
        (
            {"arms": ["scratch", "scratch"]},
            "arms: expected each arm once, received ['scratch', 'scratch']",
        ),
    ],
)
def test_wrong_types_and_values_name_the_key_path(changes, expected):
    assert _error(_with(changes)) == expected


@pytest.mark.parametrize(
    "key",
    [
        "arms",
        "target.train_sizes",
        "freeze_depths",
        "seeds",
        "learning_rates",
        "metrics",
    ],
)
def test_empty_list_names_the_key(key):
    assert _error(_with({key: []})) == f"{key}: expected a non-empty list, received []"


@pytest.mark.parametrize("section", ["lp_ft", "l2sp"])
@pytest.mark.parametrize("value", [0.5, [0.5]], ids=["number", "list"])
def test_recipe_option_section_that_is_not_a_mapping_raises_config_error(
    section, value
):
    message = _error(_with({section: value}))
    assert message.startswith(f"{section}: expected a mapping")


def test_model_with_both_builder_and_file_raises_config_error():
    message = _error(_with({"model": {"builder": "mlp", "file": "net.keras"}}))
    assert message.startswith("model: give exactly one of 'builder'")


def test_experiment_that_is_not_a_mapping_raises_config_error():
    with pytest.raises(ConfigError, match="^experiment: expected a mapping"):
        resolve(["scratch"])


def test_missing_scratch_arm_raises_config_error():
    message = _error(_with({"arms": ["fine_tune", "linear_probe"]}))
    assert message.startswith("arms: must include 'scratch'")


def test_unknown_arm_names_its_index_and_the_allowed_arms():
    assert {
        "scratch",
        "fine_tune",
        "linear_probe",
        "lp_ft",
        "l2sp",
        "random_transfer",
    } <= set(ARMS)
    assert _error(_with({"arms": ["scratch", "finetune"]})) == (
        f"arms[1]: expected one of {', '.join(ARMS)}, received 'finetune'"
    )


@pytest.mark.parametrize("stage", ["source", "target"])
def test_unknown_optimizer_names_the_stage(stage):
    assert {"adam", "adamw", "sgd", "rmsprop"} <= set(OPTIMIZERS)
    assert _error(_with({f"{stage}.optimizer": "adagrad"})) == (
        f"{stage}.optimizer: expected one of {', '.join(OPTIMIZERS)}, "
        "received 'adagrad'"
    )


def test_unknown_metric_names_its_index():
    assert {"accuracy", "auc", "loss", "mae", "mse"} <= set(METRICS)
    assert _error(_with({"metrics": ["accuracy", "f1"]})) == (
        f"metrics[1]: expected one of {', '.join(METRICS)}, received 'f1'"
    )


def test_config_errors_are_keras_tl_errors_and_value_errors():
    with pytest.raises(keras_tl.KerasTLError):
        load_experiment(_with({"seeds": 0}))
    with pytest.raises(ValueError):
        load_experiment(_with({"seeds": 0}))


# Plan-level checks: need the data and the network, still before any training


def test_plan_lists_every_arm_depth_size_and_seed():
    the_plan = plan(
        load_experiment(_with({"target.train_sizes": [20, 40], "seeds": 2,
                               "arms": ["scratch", "fine_tune", "linear_probe"]}))
    )
    assert the_plan.sources["digits"].transferable == ["conv1", "conv2", "fc1"]
    assert the_plan.primary_metric == "accuracy"
    listed = {
        (t.arm, t.source, t.freeze_depth, t.train_size, t.seed) for t in the_plan.trials
    }
    expected = {
        (arm, source, depth, size, seed)
        for size in (20, 40)
        for arm, source, depth in (
            ("scratch", None, 0),
            ("fine_tune", "digits", 0),
            ("linear_probe", "digits", 3),
        )
        for seed in (0, 1)
    }
    assert listed == expected
    assert len(the_plan.trials) == len(expected)


def test_plan_freeze_depths_all_sweeps_zero_to_the_number_of_transferred_layers():
    the_plan = plan(load_experiment(_with({"freeze_depths": "all", "seeds": 1})))
    depths = sorted(t.freeze_depth for t in the_plan.trials if t.arm == "fine_tune")
    assert depths == [0, 1, 2, 3]


def test_plan_rejects_a_freeze_depth_beyond_the_network():
    with pytest.raises(ConfigError) as info:
        plan(load_experiment(_with({"freeze_depths": [0, 4]})))
    assert str(info.value) == (
        "freeze_depths[1]: expected at most 3 (the transferred layers are "
        "['conv1', 'conv2', 'fc1']), received 4"
    )


def test_plan_rejects_a_train_size_larger_than_the_target_train_split():
    with pytest.raises(ConfigError) as info:
        plan(load_experiment(_with({"target.train_sizes": [30, 2000]})))
    assert str(info.value) == (
        "target.train_sizes[1]: expected at most 1078 (the train split of "
        "'digits:parity'), received 2000"
    )


def test_plan_rejects_a_metric_the_target_kind_lacks():
    with pytest.raises(ConfigError) as info:
        plan(load_experiment(_with({"metrics": ["accuracy", "mae"]})))
    assert str(info.value) == (
        "metrics[1]: expected one of accuracy, auc, loss for the binary task "
        "'digits:parity', received 'mae'"
    )


def test_plan_takes_the_first_listed_metric_as_primary():
    assert (
        plan(load_experiment(_with({"metrics": ["auc", "accuracy"]}))).primary_metric
        == "auc"
    )


def test_plan_rejects_transfer_arms_when_no_layer_can_be_transferred():
    # An mlp source shares only the name fc1 with small_cnn, at another shape.
    raw = _with(
        {"source.model": {"builder": "mlp"}, "arms": ["scratch", "linear_probe"]}
    )
    with pytest.raises(ConfigError) as info:
        plan(load_experiment(raw))
    message = str(info.value)
    assert message.startswith("arms: ['linear_probe'] need transferred layers")
    assert "fc1: shape (64, 64) in source vs (512, 64) in target" in message


def test_plan_accepts_scratch_alone_when_no_layer_can_be_transferred():
    raw = _with({"source.model": {"builder": "mlp"}, "arms": ["scratch"]})
    the_plan = plan(load_experiment(raw))
    assert the_plan.sources["digits"].transferable == []
    assert {t.arm for t in the_plan.trials} == {"scratch"}


def test_plan_rejects_an_unknown_task_with_data_error():
    with pytest.raises(DataError, match="Unknown task 'digits:7'"):
        plan(load_experiment(_with({"target.task": "digits:7"})))


def test_plan_rejects_an_unknown_builder():
    with pytest.raises(ConfigError, match="model: unknown builder 'resnet9'"):
        plan(load_experiment(_with({"model": "resnet9"})))


def test_a_plan_error_leaves_nothing_in_the_output_folder(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="freeze_depths"):
        keras_tl.evaluate(_with({"freeze_depths": [9]}), out=str(out))
    assert not out.exists()


# freeze: {layers: REGEX}


def _freeze(value):
    raw = copy.deepcopy(DEFAULT_EXPERIMENT)
    del raw["freeze_depths"]
    raw["freeze"] = value
    return raw


def test_freeze_layers_regex_resolves_and_round_trips():
    experiment = load_experiment(_freeze({"layers": "conv.*"}))
    assert experiment.config["freeze"] == {"layers": "conv.*"}
    assert experiment.config["freeze_depths"] is None
    again = load_experiment(experiment.to_dict())
    assert again.fingerprint() == experiment.fingerprint()
    assert load_experiment(None).config["freeze"] is None


@pytest.mark.parametrize(
    "value, expected",
    [
        (
            {"layers": "conv("},
            "freeze.layers: expected a Python regular expression matched against "
            "whole layer names (e.g. \"conv.*\"), received 'conv(' (missing ), "
            "unterminated subpattern at position 4). Escape special characters such "
            "as ( [ * with a backslash.",
        ),
        ("conv.*", "freeze: expected a mapping like {layers: \"conv.*\"}, received 'conv.*'"),
        (
            {"layer": "conv.*"},
            "freeze.layer: unknown key. Allowed keys: layers. Did you mean 'layers'?",
        ),
        ({"layers": ""}, "freeze.layers: expected a non-empty string, received ''"),
        ({}, "freeze.layers: expected a non-empty string, received None"),
    ],
    ids=["bad_regex", "not_a_mapping", "unknown_key", "empty", "missing"],
)
def test_freeze_layers_errors_name_the_key_path(value, expected):
    assert _error(_freeze(value)) == expected


def test_freeze_layers_and_freeze_depths_cannot_be_combined():
    raw = _freeze({"layers": "conv.*"})
    raw["freeze_depths"] = [1]
    assert _error(raw) == (
        "freeze_depths: give either 'freeze_depths' (a depth sweep) or "
        "'freeze: {layers: REGEX}' (the transferred layers to freeze), not both."
    )


# Hostile or mistaken YAML: refused before anything is built from it


def _yaml_error(tmp_path, text):
    path = tmp_path / "experiment.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    return str(info.value)


def test_a_billion_laughs_is_refused_fast(tmp_path):
    import time

    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)
    ]
    start = time.perf_counter()
    message = _yaml_error(tmp_path, "\n".join(lines) + "\nname: *a9\n")
    assert time.perf_counter() - start < 5
    assert "its aliases (*name) expand to" in message
    assert "an alias bomb?" in message


def test_nesting_beyond_the_limit_is_refused_without_recursion_error(tmp_path):
    message = _yaml_error(tmp_path, "seeds: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert "nesting deeper than 20 levels at line 1" in message


def test_a_recursive_alias_is_refused(tmp_path):
    assert "recursive alias" in _yaml_error(tmp_path, "metrics: &loop [*loop]\n")


@pytest.mark.parametrize(
    "text, key, lines",
    [
        ("seeds: 2\nname: a\nseeds: 3\n", "seeds", "lines 1 and 3"),
        ("target:\n  task: digits\n  task: digits:parity\n", "task", "lines 2 and 3"),
        ("l2sp: {alpha: 1, alpha: 2}\n", "alpha", "lines 1 and 1"),
    ],
    ids=["top_level", "nested", "flow"],
)
def test_a_key_given_twice_is_refused_naming_the_key(tmp_path, text, key, lines):
    message = _yaml_error(tmp_path, text)
    assert f"the key {key!r} is given twice in one mapping ({lines})" in message


def test_aliases_and_merge_keys_within_the_limits_still_load(tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_text(
        "source: &stage {task: digits, epochs: 2, batch_size: 16}\n"
        "target:\n  <<: *stage\n  task: digits:parity\n  train_sizes: [20]\n"
    )
    config = load_experiment(path).config
    assert config["target"]["task"] == "digits:parity"  # An explicit key overrides a merged one.
    assert config["target"]["epochs"] == 2


def test_an_unreadable_value_names_its_line(tmp_path):
    message = _yaml_error(tmp_path, "seeds: 2\nname: 2020-02-30\n")
    assert "experiment.yaml: the value '2020-02-30' at line 2 cannot be read" in message


def test_a_config_path_that_is_a_folder_says_so(tmp_path):
    with pytest.raises(ConfigError, match="is a folder. Expected a YAML file"):
        load_experiment(str(tmp_path))


# Numbers: finite, in range, each once


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 10**400])
@pytest.mark.parametrize(
    "key",
    ["target.learning_rate", "source.learning_rate", "lp_ft.learning_rate_scale",
     "lp_ft.probe_fraction", "l2sp.alpha", "l2sp.beta", "feature_cache_mb"],
)
def test_non_finite_numbers_are_refused(key, value):
    raw = _with({})
    *sections, name = key.split(".")
    section = raw
    for part in sections:
        section = section.setdefault(part, {})
    section[name] = value
    message = _error(raw)
    assert message.startswith(f"{key}: expected a finite ")
    assert "(not NaN or infinity)" in message


def test_non_finite_list_items_are_refused():
    assert _error(_with({"learning_rates": [0.1, float("nan")]})).startswith(
        "learning_rates[1]: expected a finite positive number (not NaN or infinity)"
    )
    raw = _with({"arms": ["scratch", "fused"], "fused": {"loss_weights": [1, float("inf")]}})
    assert _error(raw).startswith("fused.loss_weights[1]: expected a finite number >= 0")


def test_a_resolved_config_is_always_valid_json():
    text = json.dumps(load_experiment(FULL).to_dict(), allow_nan=False)
    assert json.loads(text)["name"] == "full"


@pytest.mark.parametrize(
    "seeds, expected",
    [
        (10**12, "seeds: expected a positive integer of at most 1000, received 1000000000000"),
        ([0, 2**32], "seeds[1]: expected an integer from 0 to 2147483647 (2**31 - 1)"),
        ([2**31], "seeds[0]: expected an integer from 0 to 2147483647 (2**31 - 1)"),
        (list(range(1001)), "seeds: expected a list of at most 1000 seeds"),
    ],
    ids=["count", "beyond_32_bits", "beyond_31_bits", "too_many"],
)
def test_seed_counts_are_capped_and_seeds_kept_in_range(seeds, expected):
    assert _error(_with({"seeds": seeds})).startswith(expected)


def test_the_largest_seed_and_count_are_accepted():
    assert load_experiment(_with({"seeds": [0, 2**31 - 1]})).seeds == [0, 2**31 - 1]
    assert len(load_experiment(_with({"seeds": 1000})).seeds) == 1000


def test_integer_settings_are_capped():
    assert _error(_with({"target.epochs": 2**31})) == (
        "target.epochs: expected a positive integer of at most 2147483647, "
        "received 2147483648"
    )


def test_a_huge_value_is_shortened_in_the_message():
    message = _error(_with({"target.learning_rate": 10**5000}))
    assert len(message) < 400
    assert "too large to print" in message


def test_duplicate_train_sizes_are_refused_but_1_and_1_0_differ():
    assert _error(_with({"target.train_sizes": [20, 0.5, 20]})) == (
        "target.train_sizes: expected each train size once, received [20, 0.5, 20]"
    )
    sizes = load_experiment(_with({"target.train_sizes": [1, 1.0]})).config["target"]
    assert sizes["train_sizes"] == [1, 1.0]


@pytest.mark.parametrize("key", ["learning_rates", "metrics", "scores"])
def test_list_settings_take_each_value_once(key):
    value = {"learning_rates": [0.1, 0.1], "metrics": ["loss", "loss"],
             "scores": ["leep", "leep"]}[key]
    assert " once, received " in _error(_with({key: value}))


# The name names the run folder runs/<name>-<time>


@pytest.mark.parametrize(
    "name", ["../../x", "/tmp/x", "a/b", "a\\b", "a\0b", "a\nb", "x" * 101, "..", "  "],
    ids=["parent", "absolute", "slash", "backslash", "nul", "newline", "long", "dots",
         "blank"],
)
def test_names_that_are_not_one_folder_name_are_refused(name):
    assert _error(_with({"name": name})).startswith("name: expected a name of at most 100")


def test_ordinary_names_are_accepted():
    for name in ("parity", "digits -> parity (2024)", "x" * 100, "ünïcode"):
        assert load_experiment(_with({"name": name})).name == name


# Messages that named the wrong thing


def test_freeze_depths_all_inside_a_list_says_how_to_write_it():
    assert _error(_with({"freeze_depths": ["all"]})) == (
        "freeze_depths[0]: 'all' stands alone, not in a list: write freeze_depths: all "
        "(every depth), or a list of integers >= 0 such as [0, 1, 2]. Received ['all']"
    )


def test_freeze_depths_null_takes_the_default():
    assert load_experiment(_with({"freeze_depths": None})).config["freeze_depths"] == [0]


def test_a_source_task_equal_to_the_target_task_is_fine_without_fused():
    config = load_experiment(_with({"source.task": "digits:parity"})).config
    assert config["fused"]["tasks"] == ["digits:parity"]


def test_fused_with_the_target_as_source_task_names_the_keys_the_user_wrote():
    raw = _with({"source.task": "digits:parity", "arms": ["scratch", "fused"]})
    message = _error(raw)
    assert message.startswith("arms: 'fused' trains a source task jointly with the target")
    assert "source.task is the target task 'digits:parity'" in message
    assert "fused.tasks:" not in message


@pytest.mark.parametrize(
    "option, expected",
    [
        (float("nan"), "model.rate: expected a finite number (not NaN or infinity), received nan"),
        (b"x", "model.rate: expected plain data: text, a number, true or false, a list"),
        ([1, float("inf")], "model.rate[1]: expected a finite number"),
    ],
    ids=["nan", "bytes", "inf_in_list"],
)
def test_options_no_check_looks_at_must_still_be_plain_finite_data(option, expected):
    message = _error(_with({"model": {"builder": "my_nets:build", "rate": option}}))
    assert message.startswith(expected)


def test_a_yaml_date_in_a_builder_option_is_refused(tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_text("model: {builder: 'my_nets:build', since: 2020-01-01}\n")
    with pytest.raises(ConfigError, match=r"^model.since: expected plain data.*received "
                                          r"datetime.date\(2020, 1, 1\)"):
        load_experiment(path)


def test_builder_options_given_as_tuples_from_python_still_resolve():
    config = load_experiment(_with({"model": {"builder": "small_cnn", "filters": (8, 16)}}))
    assert config.config["model"]["filters"] == (8, 16)
