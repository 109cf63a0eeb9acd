"""`precision:` (mixed precision): validated, applied while a trial builds and trains,
recorded, and restored afterwards."""

import keras
import numpy as np
import pytest

import keras_tl
from keras_tl.config.schema import load_experiment
from keras_tl.errors import ConfigError
from keras_tl.experiment.spec import TrialSpec
from keras_tl.experiment.trial import run_trial
from keras_tl.networks.network import Network
from keras_tl.training import fit
from keras_tl.training.cache import ModelPool
from keras_tl.training.precision import current_precision, precision_scope

# bfloat16 and float16 layers run on CPU on all three backends (checked with
# Keras 3.15, torch 2.13, tensorflow-cpu 2.21, jax 0.10), so nothing here is
# skipped by backend. End to end the trials run under mixed_bfloat16;
# mixed_float16 is checked for its loss scaling.


def test_absent_or_float32_precision_leaves_the_resolved_config_as_it_was():
    plain = load_experiment({"name": "p"})
    explicit = load_experiment({"name": "p", "precision": "float32"})
    assert "precision" not in plain.config
    assert explicit.config == plain.config
    assert explicit.fingerprint() == plain.fingerprint()


def test_a_mixed_precision_changes_the_fingerprint_and_the_trial_keys():
    plain = load_experiment({"name": "p"})
    mixed = load_experiment({"name": "p", "precision": "mixed_bfloat16"})
    assert mixed.config["precision"] == "mixed_bfloat16"
    assert mixed.fingerprint() != plain.fingerprint()
    spec = TrialSpec("scratch", 0, 30, 0)
    assert spec.key(mixed) != spec.key(plain)


@pytest.mark.parametrize("value", ["bfloat16", "float64", "mixed_bf16", 16, ["float32"]])
def test_an_unknown_precision_is_one_line_config_error(value):
    with pytest.raises(ConfigError) as caught:
        load_experiment({"name": "p", "precision": value})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("precision: expected one of float32, mixed_bfloat16, "
                              "mixed_float16")


def test_the_scope_sets_the_policy_and_restores_it_even_after_an_error():
    assert current_precision() == "float32"
    with pytest.raises(RuntimeError):
        with precision_scope("mixed_bfloat16"):
            assert current_precision() == "mixed_bfloat16"
            raise RuntimeError("trial failed")
    assert current_precision() == "float32"
    with precision_scope(None):  # None: the policy as it is.
        assert current_precision() == "float32"
    with pytest.raises(ConfigError, match="Unknown precision"):
        with precision_scope("float8"):
            pass


def test_a_network_built_under_a_mixed_policy_keeps_its_head_in_float32():
    with precision_scope("mixed_bfloat16"):
        model = Network("mlp").build((64,), 3, seed=0)
    hidden = model.get_layer("fc1")
    assert hidden.compute_dtype == "bfloat16" and hidden.variable_dtype == "float32"
    assert model.get_layer("head").compute_dtype == "float32"
    outputs = model(np.zeros((2, 64), "float32"))
    assert keras.backend.standardize_dtype(outputs.dtype) == "float32"
    # Hidden outputs come back from predict as float32 NumPy, like float32 runs.
    trunk = keras.Model(model.inputs, hidden.output)
    assert fit.predict(trunk, np.zeros((2, 64), "float32")).dtype == np.float32


def test_pooled_models_are_not_shared_across_policies():
    pool = ModelPool()
    with precision_scope("mixed_bfloat16"):
        mixed = pool.compiled(Network("mlp").build((64,), 3, seed=0), "classification",
                              "adam", 0.01)
    plain = pool.compiled(Network("mlp").build((64,), 3, seed=0), "classification",
                          "adam", 0.01)
    assert plain is not mixed
    assert plain.get_layer("fc1").compute_dtype == "float32"


def test_mixed_float16_compiles_with_loss_scaling_and_a_pooled_model_resets_it():
    pool = ModelPool()
    x = np.random.default_rng(0).normal(size=(8, 64)).astype("float32")
    y = np.arange(8) % 3
    with precision_scope("mixed_float16"):
        first = pool.compiled(Network("mlp").build((64,), 3, seed=0), "classification",
                              "adam", 0.01)
        assert isinstance(first.optimizer, keras.optimizers.LossScaleOptimizer)
        first.train_on_batch(x, y)
        first.optimizer.dynamic_scale.assign(4.0)  # As if it had shrunk.
        again = pool.compiled(Network("mlp").build((64,), 3, seed=1), "classification",
                              "adam", 0.01)
    assert again is first
    assert float(keras.ops.convert_to_numpy(again.optimizer.dynamic_scale)) == 2.0**15


# End to end: trains small models.


def _observing_runner(seen):
    """`run_trial`, noting the policy and the dtypes of a target built as the trial's."""

    def run(plan, spec, sources, pool=None, feature_cache=None):
        task = plan.target_task
        model = plan.network.build(task.input_shape, task.num_outputs, spec.seed)
        outputs = model(task.x_test[:2])
        seen.append({
            "policy": current_precision(),
            "hidden": model.get_layer("fc1").compute_dtype,
            "head": model.get_layer("head").compute_dtype,
            "outputs": keras.backend.standardize_dtype(outputs.dtype),
        })
        return run_trial(plan, spec, sources, pool, feature_cache)

    return run


@pytest.mark.slow
def test_a_mixed_bfloat16_trial_trains_records_it_and_restores_float32(tiny_experiment,
                                                                       tmp_path):
    seen = []
    mixed = tiny_experiment("mixed", seeds=1, arms=["scratch", "fine_tune"],
                            precision="mixed_bfloat16")
    results = keras_tl.evaluate(mixed, out=str(tmp_path / "mixed"),
                                trial_runner=_observing_runner(seen))
    assert [trial["status"] for trial in results.trials] == ["ok", "ok"]
    assert {trial["precision"] for trial in results.trials} == {"mixed_bfloat16"}
    assert all(np.isfinite(trial["test"]["loss"]) for trial in results.trials)
    assert seen[0] == {"policy": "mixed_bfloat16", "hidden": "bfloat16",
                       "head": "float32", "outputs": "float32"}
    assert current_precision() == "float32"  # Restored after the run.

    seen.clear()
    plain = tiny_experiment("plain", seeds=1, arms=["scratch"])
    results = keras_tl.evaluate(plain, out=str(tmp_path / "plain"),
                                trial_runner=_observing_runner(seen))
    assert results.trials[0]["precision"] == "float32"
    assert seen[0] == {"policy": "float32", "hidden": "float32", "head": "float32",
                       "outputs": "float32"}


@pytest.mark.slow
def test_a_mixed_bfloat16_linear_probe_trains_on_float32_cached_features(tiny_experiment,
                                                                        tmp_path):
    experiment = tiny_experiment("probe", seeds=1, arms=["scratch", "linear_probe"],
                                 precision="mixed_bfloat16")
    results = keras_tl.evaluate(experiment, out=str(tmp_path / "probe"))
    probe = next(trial for trial in results.trials if trial["arm"] == "linear_probe")
    assert probe["status"] == "ok", probe["error"]
    assert probe["precision"] == "mixed_bfloat16"
    assert 0.0 <= probe["test"]["accuracy"] <= 1.0
    assert current_precision() == "float32"


@pytest.mark.slow
def test_a_mixed_bfloat16_fused_trial_keeps_every_head_in_float32(tiny_experiment, tmp_path):
    experiment = tiny_experiment("fused", seeds=1, arms=["scratch", "fused"],
                                 precision="mixed_bfloat16")
    results = keras_tl.evaluate(experiment, out=str(tmp_path / "fused"))
    fused = next(trial for trial in results.trials if trial["arm"] == "fused")
    assert fused["status"] == "ok", fused["error"]
    assert fused["precision"] == "mixed_bfloat16"
    assert all(np.isfinite(metrics["loss"]) for metrics in fused["fused"]["test"].values())
