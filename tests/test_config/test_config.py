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
    assert experiment.seeds == [0, 1, 2]
    assert config["model"] == {"builder": "small_cnn"}
    (source,) = config["sources"]
    assert source["task"] == "digits" and source["name"] == "digits"
    assert source["model"] is None and source["untrained"] is False
    assert config["target"]["task"] == "digits:parity"
    assert config["target"]["train_sizes"] == [30]
    assert config["arms"] == ["scratch", "fine_tune", "linear_probe"]
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
        ({"seeds": [0, -1]}, "seeds[1]: expected a non-negative integer, received -1"),
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
        load_experiment(_with({"target.train_sizes": [20, 40], "seeds": 2}))
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
