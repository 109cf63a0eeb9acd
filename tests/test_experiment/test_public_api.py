"""What users rely on across the restructure: the public names, the old import paths,
run folders written before it, and a new arm added through the registry alone."""

import importlib
import json
import pathlib
import shutil

import numpy as np
import pytest

import keras_tl
from keras_tl.config import arms
from keras_tl.results import rebuild
from keras_tl.training import recipes

OLD_RUN = pathlib.Path(__file__).resolve().parents[1] / "data" / "run_before_restructure"


@pytest.mark.parametrize("name", keras_tl.__all__)
def test_every_exported_name_resolves(name):
    assert getattr(keras_tl, name) is not None


@pytest.mark.parametrize("module", ["keras_tl.scores.transferability", "keras_tl.scores.stats",
                                    "keras_tl.results", "keras_tl.report"])
def test_public_subpackages_import(module):
    assert importlib.import_module(module)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="default_experiment"):
        keras_tl.default_experiment  # noqa: B018 (exported once, never existed)


@pytest.mark.parametrize("old, name, new", [
    ("keras_tl.tasks", "register_task", keras_tl.register_task),
    ("keras_tl.tasks", "load_task", keras_tl.load_task),
    ("keras_tl.evaluator", "evaluate", keras_tl.evaluate),
    ("keras_tl.models", "Network", keras_tl.Network),
    ("keras_tl.transfer", "transfer_weights", keras_tl.transfer_weights),
])
def test_old_import_paths_still_resolve_to_the_same_objects(old, name, new):
    assert getattr(importlib.import_module(old), name) is new


def test_a_run_folder_written_before_the_restructure_resumes_without_training(tmp_path):
    """tests/data/run_before_restructure was written by the flat-layout code
    (commit 6c4effc): same trial keys and store schema, so nothing runs again."""
    out = tmp_path / "run"
    shutil.copytree(OLD_RUN, out)
    experiment = json.loads((out / "experiment.json").read_text())
    (out / "experiment.json").unlink()
    stored = json.loads((OLD_RUN / "results.json").read_text())
    ran = []

    def must_not_run(plan, spec, *args):
        ran.append(spec)
        raise AssertionError("a stored trial ran again")

    results = keras_tl.evaluate(experiment, out=str(out), trial_runner=must_not_run)

    assert ran == []
    assert len(results.trials) == len(stored["trials"]) == 6
    old = {t["key"]: t for t in stored["trials"]}
    for trial in results.trials:
        assert trial["test"] == old[trial["key"]]["test"]
    rebuilt = rebuild(str(out))
    assert rebuilt.summary["conditions"] == results.summary["conditions"]


def _half_rate_fine_tune(model, task, transferred, pattern, settings, seed, options, pool,
                         feature_cache):
    """A test-only recipe: fine-tune at half the learning rate."""
    slower = settings.__class__(**{**settings.__dict__,
                                   "learning_rate": settings.learning_rate / 2})
    return recipes.train_single_stage(model, task, transferred, pattern, slower, seed,
                                      pool, feature_cache, options["cache_features"])


@pytest.fixture
def half_rate_arm():
    arms.register_arm(arms.Arm("half_rate", "half_rate", uses_source=True, sweeps_depth=True))
    recipes.register_recipe("half_rate", _half_rate_fine_tune)
    yield "half_rate"
    arms.unregister_arm("half_rate")
    recipes.RECIPES.pop("half_rate")


@pytest.mark.slow
def test_an_arm_registered_with_its_recipe_runs_end_to_end(half_rate_arm, tiny_experiment,
                                                            tmp_path):
    experiment = tiny_experiment("registered-arm", arms=["scratch", half_rate_arm],
                                 freeze_depths=[0, 1])
    results = keras_tl.evaluate(experiment, out=str(tmp_path / "run"))

    trials = [t for t in results.trials if t["arm"] == half_rate_arm]
    assert sorted({t["freeze_depth"] for t in trials}) == [0, 1]
    assert all(t["status"] == "ok" and t["recipe"] == "half_rate" for t in trials)
    labels = {g["label"] for g in results.summary["gains"]}
    assert {"half_rate@0", "half_rate@1"} <= labels
    assert all(np.isfinite(t["test"]["accuracy"]) for t in trials)


def test_built_in_arms_cannot_be_replaced():
    with pytest.raises(keras_tl.ConfigError, match="built-in"):
        arms.register_arm(arms.Arm("fine_tune", "fine_tune"))
    with pytest.raises(keras_tl.ConfigError, match="built-in"):
        recipes.register_recipe("fine_tune", _half_rate_fine_tune)
