"""The experiment key `transfer: {mode, noise}`: config, trial keys, plan, a run."""

import keras
import pytest

import keras_tl
from keras_tl.config.schema import DEFAULT_EXPERIMENT, load_experiment
from keras_tl.errors import ConfigError
from keras_tl.experiment.plan import plan
from keras_tl.experiment.spec import TrialSpec

NARROW = {"builder": "small_cnn", "filters": [4, 8], "units": 16}
WIDE = {"builder": "small_cnn", "filters": [8, 16], "units": 16}


def _experiment(**changes):
    raw = {
        "name": "widths",
        "model": WIDE,
        "source": {"task": "digits", "model": NARROW, "epochs": 1, "batch_size": 64,
                   "learning_rate": 0.003},
        "target": {"task": "digits:parity", "train_sizes": [20], "epochs": 1,
                   "batch_size": 10, "learning_rate": 0.003},
        "arms": ["scratch", "fine_tune"],
        "seeds": [0],
        "scores": [],
    }
    raw.update(changes)
    return raw


def test_the_key_is_absent_from_resolved_configs_that_do_not_use_it():
    plain = load_experiment(DEFAULT_EXPERIMENT)
    assert "transfer" not in plain.config
    assert "transfer" not in plain.config["sources"][0]
    resolved = load_experiment(_experiment(transfer={"mode": "net2wider"}))
    assert resolved.config["transfer"] == {"mode": "net2wider", "noise": 0.0}
    # The resolved config loads as it is.
    assert load_experiment(resolved.to_dict()).fingerprint() == resolved.fingerprint()


def test_trial_keys_change_only_for_transfer_trials_of_a_non_exact_mode():
    plain = load_experiment(_experiment())
    exact = load_experiment(_experiment(transfer={"mode": "exact"}))
    wider = load_experiment(_experiment(transfer={"mode": "net2wider"}))
    scratch, fine_tune = TrialSpec("scratch", 0, 20, 0), TrialSpec("fine_tune", 0, 20, 0,
                                                                  "digits")
    assert scratch.key(plain) == scratch.key(exact) == scratch.key(wider)
    assert fine_tune.key(plain) == fine_tune.key(exact) != fine_tune.key(wider)
    sliced = load_experiment(_experiment(transfer={"mode": "slice"}))
    assert fine_tune.key(sliced) not in (fine_tune.key(plain), fine_tune.key(wider))


@pytest.mark.parametrize("changes, message", [
    ({"transfer": {"mode": "net2deeper"}},
     r"transfer\.mode: expected one of exact, net2wider, slice, received 'net2deeper'"),
    ({"transfer": {"mode": "slice", "noise": 0.1}},
     r"transfer\.noise: noise applies to mode net2wider only"),
    ({"transfer": {"mode": "net2wider", "noise": -1}}, r"transfer\.noise: expected a number >= 0"),
    ({"transfer": {"modes": ["slice"]}}, r"transfer\.modes: unknown key"),
    ({"transfer": "net2wider"}, r"transfer: expected a mapping"),
    ({"source": {"task": "digits", "transfer": {"mode": "wide"}}},
     r"source\.transfer\.mode: expected one of exact, net2wider, slice"),
])
def test_bad_transfer_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        load_experiment(_experiment(**changes))


def test_an_exact_copy_into_a_wider_target_names_the_modes():
    with pytest.raises(ConfigError, match=r"transfer: \{mode: net2wider\} or \{mode: slice\}"):
        plan(load_experiment(_experiment()))
    keras.backend.clear_session()


def test_a_deeper_target_is_refused_before_training():
    experiment = _experiment(
        model={"builder": "mlp", "units": [32, 16]},
        source={"task": "digits", "model": {"builder": "mlp", "units": [16]}},
        transfer={"mode": "net2wider"},
    )
    with pytest.raises(ConfigError, match=r"transfer\.mode: net2wider: .*\['fc2'\].*"
                                          r"net2deeper is not supported"):
        plan(load_experiment(experiment))
    keras.backend.clear_session()


@pytest.mark.slow
def test_a_run_records_the_mode_and_the_per_layer_report(tmp_path):
    experiment = _experiment(
        sources=[
            {"name": "wider", "task": "digits", "model": NARROW, "epochs": 1,
             "transfer": {"mode": "net2wider", "noise": 0.01}},
            {"name": "sliced", "task": "digits", "model": {**NARROW, "units": 32},
             "epochs": 1, "transfer": {"mode": "slice"}},
        ],
    )
    experiment.pop("source")
    results = keras_tl.evaluate(experiment, out=str(tmp_path / "run"))
    keras.backend.clear_session()
    trials = {t["source"]: t for t in results.trials if t["arm"] == "fine_tune"}
    assert all(t["status"] == "ok" for t in results.trials)
    wider = trials["wider"]["transfer"]
    assert wider["mode"] == "net2wider" and wider["noise"] == 0.01
    assert wider["copied"] == ["conv1", "conv2", "fc1"]
    assert wider["layers"]["conv1"]["added_units"] == 4
    sliced = trials["sliced"]["transfer"]
    assert sliced["mode"] == "slice" and sliced["copied"] == ["conv1", "conv2", "fc1"]
    assert sliced["layers"]["fc1"]["source_shape"] == [128, 32]
    assert sliced["layers"]["fc1"]["target_shape"] == [256, 16]
