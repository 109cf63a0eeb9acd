"""The frozen-prefix feature cache: when it applies, and that it changes no number."""

import keras
import numpy as np
import pytest

from keras_tl import training
from keras_tl.config import load_experiment
from keras_tl.evaluator import SourceModels, plan, run_trial
from keras_tl.models import Network
from keras_tl.tasks import load_task
from keras_tl.training import ModelPool, frozen_prefix_cut
from keras_tl.transfer import freeze


def _small_cnn():
    return Network("small_cnn").build((8, 8, 1), 5, seed=0)


def test_the_cut_is_the_last_frozen_layer_of_a_chain():
    model = _small_cnn()
    names = [layer.name for layer in model.layers]
    freeze(model, depth=2)
    assert names[frozen_prefix_cut(model)] == "conv2"
    freeze(model, depth=0)
    assert frozen_prefix_cut(model) is None


def test_a_prefix_with_dropout_is_not_cached():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(16, name="fc1")(x)
    x = keras.layers.Dropout(0.5, name="drop")(x)
    x = keras.layers.Dense(16, name="fc2")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
    freeze(model, depth=2)
    assert frozen_prefix_cut(model) is None
    freeze(model, depth=1)
    assert [layer.name for layer in model.layers][frozen_prefix_cut(model)] == "fc1"


def test_a_residual_network_is_not_cut():
    inputs = keras.Input((4,))
    a = keras.layers.Dense(4, name="fc1")(inputs)
    b = keras.layers.Dense(4, name="fc2")(a)
    x = keras.layers.Add(name="add")([a, b])
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    freeze(model, depth=1)
    assert frozen_prefix_cut(model) is None


@pytest.fixture(scope="module")
def cached_and_uncached():
    """The same trials with the cache on and off (fine_tune at depths 1, 2; linear_probe)."""
    runs = {}
    for cache in (False, True):
        experiment = load_experiment({
            "source": {"task": "digits:0-4", "epochs": 2},
            "target": {"task": "digits:5-9", "train_sizes": [40], "epochs": 4,
                       "batch_size": 10},
            "arms": ["scratch", "fine_tune", "linear_probe"],
            "freeze_depths": [1, 2], "seeds": 2, "scores": [], "cache_features": cache,
        })
        the_plan = plan(experiment)
        sources, pool = SourceModels(the_plan), ModelPool()
        runs[cache] = [
            (spec, run_trial(the_plan, spec, sources, pool)) for spec in the_plan.trials
        ]
    return runs


def test_cached_trials_give_the_uncached_metrics(cached_and_uncached):
    for (spec, plain), (_, cached) in zip(cached_and_uncached[False], cached_and_uncached[True]):
        assert plain["test"]["accuracy"] == cached["test"]["accuracy"], spec
        # The same arithmetic after the cut; torch may round the last bits differently.
        assert cached["test"]["loss"] == pytest.approx(plain["test"]["loss"], rel=1e-6), spec
        assert plain["epochs"] == cached["epochs"]


def test_the_cache_is_used_for_frozen_prefixes(monkeypatch):
    calls = []
    original = training._fit_on_prefix_features
    monkeypatch.setattr(
        training, "_fit_on_prefix_features",
        lambda *args: calls.append(args[1]) or original(*args),
    )
    model = _small_cnn()
    task = load_task("digits:5-9").subsample(20, seed=0)
    transferred = ["conv1", "conv2", "fc1"]
    settings = training.FitSettings(epochs=1, batch_size=10)
    training.train_target(model, task, "linear_probe", transferred, 3, settings, seed=0)
    training.train_target(_small_cnn(), task, "fine_tune", transferred, 0, settings, seed=0)
    assert len(calls) == 1
    assert np.isfinite(training.evaluate(model, task, "test")["loss"])
