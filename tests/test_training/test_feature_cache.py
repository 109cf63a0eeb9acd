"""The frozen-prefix feature cache: when it applies, and that it changes no number."""

import os

import keras
import numpy as np
import pytest

from keras_tl.config.schema import load_experiment
from keras_tl.data.registry import load_task
from keras_tl.experiment.plan import plan
from keras_tl.experiment.sources import SourceModels
from keras_tl.experiment.trial import run_trial
from keras_tl.networks.network import Network
from keras_tl.networks.transfer import freeze
from keras_tl.training import fit, recipes
from keras_tl.training.cache import FeatureCache, ModelPool, frozen_prefix_cut

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow


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


def _runs_with_cache_off_and_on(config):
    """`{cache_features: [(spec, record), ...]}` of the same experiment run twice."""
    runs = {}
    for cache in (False, True):
        the_plan = plan(load_experiment({**config, "cache_features": cache}))
        sources, pool = SourceModels(the_plan), ModelPool()
        runs[cache] = [
            (spec, run_trial(the_plan, spec, sources, pool)) for spec in the_plan.trials
        ]
    return runs


@pytest.fixture(scope="module")
def cached_and_uncached():
    """The same trials with the cache on and off (fine_tune at depths 1, 2; linear_probe)."""
    return _runs_with_cache_off_and_on({
        "source": {"task": "digits:0-4", "epochs": 2},
        "target": {"task": "digits:5-9", "train_sizes": [40], "epochs": 4,
                   "batch_size": 10},
        "arms": ["scratch", "fine_tune", "linear_probe"],
        "freeze_depths": [1, 2], "seeds": 2, "scores": [],
    })


def test_cached_trials_give_the_uncached_metrics(cached_and_uncached):
    for (spec, plain), (_, cached) in zip(cached_and_uncached[False], cached_and_uncached[True]):
        assert plain["test"]["accuracy"] == cached["test"]["accuracy"], spec
        # The same arithmetic after the cut; torch may round the last bits differently.
        assert cached["test"]["loss"] == pytest.approx(plain["test"]["loss"], rel=1e-6), spec
        assert plain["epochs"] == cached["epochs"]


def test_the_cache_is_used_for_frozen_prefixes(monkeypatch):
    calls = []
    original = recipes._fit_on_prefix_features
    monkeypatch.setattr(
        recipes, "_fit_on_prefix_features",
        lambda *args: calls.append(args[1]) or original(*args),
    )
    model = _small_cnn()
    task = load_task("digits:5-9").subsample(20, seed=0)
    transferred = ["conv1", "conv2", "fc1"]
    settings = fit.FitSettings(epochs=1, batch_size=10)
    recipes.train_target(model, task, "linear_probe", transferred, 3, settings, seed=0)
    recipes.train_target(_small_cnn(), task, "fine_tune", transferred, 0, settings, seed=0)
    assert len(calls) == 1
    assert np.isfinite(fit.evaluate(model, task, "test")["loss"])


def test_with_early_stopping_cached_trials_stop_where_uncached_ones_do():
    runs = _runs_with_cache_off_and_on({
        "source": {"task": "digits:0-4", "epochs": 2},
        "target": {"task": "digits:5-9", "train_sizes": [40], "epochs": 30,
                   "batch_size": 10, "learning_rate": 0.05},
        "arms": ["scratch", "fine_tune"], "freeze_depths": [2], "seeds": 1,
        "scores": [], "early_stopping": {"patience": 1},
    })
    for (_, plain), (_, cached) in zip(runs[False], runs[True]):
        assert cached["epochs"] == plain["epochs"] < 30
        assert cached["test"]["accuracy"] == plain["test"]["accuracy"]
        assert cached["test"]["loss"] == pytest.approx(plain["test"]["loss"], rel=1e-6)


@pytest.fixture(scope="module")
def shared_cache_runs(tmp_path_factory):
    """The same trials without a shared cache, with one in memory, and with one
    that spills every array to files (memory_mb=0)."""
    experiment = load_experiment({
        "source": {"task": "digits:0-4", "epochs": 2},
        "target": {"task": "digits:5-9", "train_sizes": [40], "epochs": 3,
                   "batch_size": 10},
        "arms": ["scratch", "fine_tune", "linear_probe"], "freeze_depths": [1, 3],
        "learning_rates": [0.01, 0.003], "seeds": 1, "scores": [],
    })
    the_plan = plan(experiment)
    folder = tmp_path_factory.mktemp("spilled")
    caches = {"none": None, "memory": FeatureCache(512),
              "spilled": FeatureCache(0, str(folder))}
    runs, files = {}, None
    for name, cache in caches.items():
        sources, pool = SourceModels(the_plan), ModelPool()
        runs[name] = [run_trial(the_plan, spec, sources, pool, cache)
                      for spec in the_plan.trials]
        if name == "spilled":
            files = sorted(os.listdir(folder))
            cache.clear()
    return runs, caches, files, folder


def test_a_shared_cache_gives_the_same_trials_in_memory_and_spilled(shared_cache_runs):
    runs, _, _, _ = shared_cache_runs
    for name in ("memory", "spilled"):
        for plain, cached in zip(runs["none"], runs[name]):
            assert cached["test"] == plain["test"], name
            assert cached["validation_by_learning_rate"] == plain["validation_by_learning_rate"]


def test_a_shared_cache_computes_each_prefix_once(shared_cache_runs):
    _, caches, files, folder = shared_cache_runs
    # fine_tune@1 (2 rates), fine_tune@3 and linear_probe (both freeze all 3 units,
    # 2 rates each): 6 prefix runs over train (no early stopping: val is not
    # needed), 2 distinct prefixes.
    for name in ("memory", "spilled"):
        assert caches[name].requested == 6, name
        assert caches[name].computed == 2, name
    assert len(files) == 2 and all(name.endswith(".npy") for name in files)
    assert os.listdir(folder) == []  # clear() deleted the spilled arrays.


def test_feature_cache_mb_must_be_a_non_negative_number():
    from keras_tl.errors import ConfigError

    with pytest.raises(ConfigError, match="feature_cache_mb: expected a number of MB >= 0"):
        load_experiment({"feature_cache_mb": -1})
