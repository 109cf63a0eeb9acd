"""Training-time augmentation (`augment:`): applied to training batches only,
seeded per trial, and off the frozen-prefix feature cache."""

from unittest import mock

import numpy as np
import pytest

from keras_tl.config.schema import load_experiment
from keras_tl.data.registry import load_task
from keras_tl.errors import ConfigError
from keras_tl.experiment.plan import plan
from keras_tl.experiment.sources import SourceModels
from keras_tl.experiment.trial import run_trial
from keras_tl.networks.network import Network
from keras_tl.training import fit, loops
from keras_tl.training.augment import Augmenter
from keras_tl.training.cache import FeatureCache, ModelPool

EVERY_AUGMENTATION = [
    "random_flip",
    {"random_translation": {"height_factor": 0.2, "width_factor": 0.2}},
    "random_zoom",
    "random_rotation",
    "random_contrast",
    {"gaussian_noise": {"stddev": 0.05}},
]


@pytest.fixture(scope="module")
def task():
    return load_task("digits:parity").subsample(30, seed=0)


def _resolved(entries):
    return load_experiment({"target": {"task": "digits:parity", "augment": entries}}
                           ).config["target"]["augment"]


def _fit_recording(task, augment, seed=0, patience=None):
    """Fits a small_cnn; returns the train batches and the val inputs it was given.

    Both with and without augmentation the steps run through `train_on_batch`
    (the step loop), where the batches can be recorded."""
    model = Network("small_cnn").build(task.input_shape, task.num_outputs, seed=0)
    fit.compile_model(model, task.kind, "adam", 0.01)
    train, val = [], []
    train_on_batch, test_on_batch = model.train_on_batch, model.test_on_batch

    def record_train(x, y, **kwargs):
        train.append(np.array(x))
        return train_on_batch(x, y, **kwargs)

    def record_val(x, y, **kwargs):
        val.append(np.array(x))
        return test_on_batch(x, y, **kwargs)

    model.train_on_batch, model.test_on_batch = record_train, record_val
    settings = fit.FitSettings(epochs=2, batch_size=10, patience=patience,
                               augment=tuple(augment))
    with mock.patch.object(fit, "training_loop", loops.StepLoop):
        fit.fit(model, task, settings, seed)
    return model, train, val


def test_every_augmentation_resolves_with_its_defaults_and_builds():
    resolved = _resolved(EVERY_AUGMENTATION)
    assert [next(iter(entry)) for entry in resolved] == [
        "random_flip", "random_translation", "random_zoom", "random_rotation",
        "random_contrast", "gaussian_noise",
    ]
    assert resolved[1]["random_translation"]["height_factor"] == 0.2
    assert resolved[1]["random_translation"]["fill_mode"] == "reflect"
    batch = np.random.default_rng(0).random((4, 8, 8, 1)).astype("float32")
    out = Augmenter(resolved, seed=0)(batch)
    assert out.shape == batch.shape and out.dtype == np.float32
    assert not np.array_equal(out, batch)


def test_an_experiment_without_augment_resolves_without_the_key():
    config = load_experiment({}).config
    assert "augment" not in config["target"]
    assert all("augment" not in source for source in config["sources"])


@pytest.mark.slow  # Trains models.
def test_augmentation_changes_the_training_batches_but_not_evaluation(task):
    augment = _resolved(EVERY_AUGMENTATION)
    _, plain, plain_val = _fit_recording(task, (), patience=5)
    model, augmented, augmented_val = _fit_recording(task, augment, patience=5)
    assert len(plain) == len(augmented) == 6
    assert all(a.shape == p.shape for a, p in zip(augmented, plain))
    assert not any(np.array_equal(a, p) for a, p in zip(augmented, plain))
    # Early stopping's val loss reads the val inputs as they are.
    every_epoch = np.concatenate([task.x_val, task.x_val])
    assert np.array_equal(np.concatenate(augmented_val), every_epoch)
    assert np.array_equal(np.concatenate(plain_val), every_epoch)
    # The model holds no augmentation layer: evaluation is the plain model's.
    assert not any(type(layer).__name__.startswith("Random") for layer in model.layers)
    x, _ = task.split("test")
    assert np.array_equal(fit.predict(model, x), fit.predict(model, x))


@pytest.mark.slow  # Trains models.
def test_the_same_seed_gives_the_same_augmented_batches(task):
    augment = _resolved(EVERY_AUGMENTATION)
    _, first, _ = _fit_recording(task, augment, seed=3)
    _, again, _ = _fit_recording(task, augment, seed=3)
    _, other, _ = _fit_recording(task, augment, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def _experiment(cache_features, **changes):
    config = {
        "source": {"task": "digits:0-4", "epochs": 1,
                   "augment": [{"gaussian_noise": {"stddev": 0.05}}]},
        "target": {"task": "digits:5-9", "train_sizes": [30], "epochs": 2,
                   "batch_size": 10,
                   "augment": ["random_flip", {"random_translation": {
                       "height_factor": 0.1, "width_factor": 0.1}}]},
        "arms": ["scratch", "fine_tune", "linear_probe"], "freeze_depths": [2],
        "seeds": 1, "scores": [], "cache_features": cache_features,
    }
    return load_experiment({**config, **changes})


@pytest.mark.slow
def test_a_trial_with_augment_trains_end_to_end_and_cache_changes_nothing():
    runs = {}
    for cache_features in (False, True):
        the_plan = plan(_experiment(cache_features))
        sources, pool = SourceModels(the_plan), ModelPool()
        feature_cache = FeatureCache(512)
        runs[cache_features] = [
            run_trial(the_plan, spec, sources, pool, feature_cache)
            for spec in the_plan.trials
        ]
        # The frozen prefix never ran on un-augmented inputs for training.
        assert feature_cache.requested == 0
        assert any("Augmentation (target.augment, source.augment)" in note
                   for note in the_plan.notes)
        assert ("feature cache is off" in " ".join(the_plan.notes)) == cache_features
    for plain, cached in zip(runs[False], runs[True]):
        assert np.isfinite(plain["test"]["loss"])
        assert cached["test"] == plain["test"]
        assert cached["val"] == plain["val"]


def test_augment_errors_name_the_key_path(task):
    cases = {
        "target.augment[0]: expected one of random_flip": ["flip"],
        "target.augment[1].random_zoom.heigth_factor: unknown key": [
            "random_flip", {"random_zoom": {"heigth_factor": 0.1}}],
        "target.augment[0].random_rotation.factor: expected a number in [0, 1]": [
            {"random_rotation": {"factor": 2}}],
        "target.augment[0].random_flip.mode: expected one of horizontal": [
            {"random_flip": {"mode": "diagonal"}}],
        "target.augment: expected a list of augmentations": "random_flip",
    }
    for message, value in cases.items():
        with pytest.raises(ConfigError) as error:
            load_experiment({"target": {"task": "digits:parity", "augment": value}})
        assert str(error.value).startswith(message)
        assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match=r"^source.augment: augmentation applies"):
        load_experiment({"source": {"task": "digits", "untrained": True,
                                    "augment": ["random_flip"]}})
    with pytest.raises(ConfigError, match=r"^target.augment: the fused arm"):
        load_experiment({"arms": ["scratch", "fused"],
                         "target": {"task": "digits:parity", "augment": ["random_flip"]}})


def test_an_image_augmentation_on_flat_inputs_is_refused_before_training(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "flat.npz"
    np.savez(path, x_train=rng.random((60, 5)).astype("float32"), y_train=np.arange(60) % 2,
             x_test=rng.random((20, 5)).astype("float32"), y_test=np.arange(20) % 2)
    experiment = load_experiment({
        "model": {"builder": "mlp"}, "arms": ["scratch"], "seeds": 1,
        "source": {"task": f"npz:{path}"},
        "target": {"task": f"npz:{path}", "train_sizes": [10],
                   "augment": [{"gaussian_noise": {"stddev": 0.1}}, "random_flip"]},
    })
    with pytest.raises(ConfigError, match=r"^target.augment\[1\]: random_flip needs image"):
        plan(experiment)
