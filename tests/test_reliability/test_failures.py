"""A failing trial costs only itself: it is recorded as failed and the sweep goes on.

One trial is made to diverge (plain SGD at a learning rate of 1e6, for one arm and
seed only), another made to raise; the other trials finish, the results are
written, the summary counts the failures per arm and refuses a gain from fewer
than 2 finished seeds, and `--retry-failed` (only it) runs failed trials again.
"""

import dataclasses
import inspect
import os
import re
import shutil
import sqlite3

import keras
import pytest
import yaml
from click.testing import CliRunner

import keras_tl
import keras_tl.experiment.run
import keras_tl.experiment.trial
from keras_tl.store import STORE_NAME
from keras_tl_cli.main import cli

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow

DIVERGING = ("fine_tune", 1)  # (arm, seed) of the one trial made to diverge.


def _diverge_one_trial(monkeypatch):
    """Trains the DIVERGING trial with SGD at learning rate 1e6; the others as set."""
    original = keras_tl.experiment.trial.train_target
    signature = inspect.signature(original)

    def train_target(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        arguments = bound.arguments
        if (arguments["recipe"], arguments["seed"]) == DIVERGING:
            arguments["settings"] = dataclasses.replace(
                arguments["settings"], optimizer="sgd", learning_rate=1e6
            )
        return original(*bound.args, **bound.kwargs)

    monkeypatch.setattr(keras_tl.experiment.trial, "train_target", train_target)


def _record_run_trial(monkeypatch):
    """Counts the trials run (as (arm, seed)) while still running them."""
    original = keras_tl.experiment.trial.run_trial
    calls = []

    def run_trial(plan, spec, *args, **kwargs):
        calls.append((spec.arm, spec.seed))
        return original(plan, spec, *args, **kwargs)

    monkeypatch.setattr(keras_tl.experiment.run, "run_trial", run_trial)
    return calls


def _rows(out):
    connection = sqlite3.connect(os.path.join(out, STORE_NAME))
    try:
        return {
            key: (status, record, finished_at)
            for key, status, record, finished_at in connection.execute(
                "SELECT key, status, record, finished_at FROM trials"
            )
        }
    finally:
        connection.close()


def _by_arm_and_seed(trials):
    return {(trial["arm"], trial["seed"]): trial for trial in trials}


def _conditions(results):
    return {condition["arm"]: condition for condition in results.summary["conditions"]}


def _gains(results):
    return {gain["arm"]: gain for gain in results.summary["gains"]}


@pytest.fixture(scope="module")
def tiny(tiny_experiment):
    """The tiny experiment (tests/conftest.py), 6 trials of 150 epochs (about a
    second each, so a kill or Ctrl-C lands while trials remain)."""
    return tiny_experiment("tiny-failures", target={"epochs": 150, "learning_rate": 0.01})


@pytest.fixture(scope="module")
def diverged(tmp_path_factory, tiny):
    """The tiny experiment with the DIVERGING trial diverging, run once into a run folder."""
    out = tmp_path_factory.mktemp("diverged") / "run"
    with pytest.MonkeyPatch.context() as monkeypatch:
        _diverge_one_trial(monkeypatch)
        results = keras_tl.evaluate(tiny, out=str(out))
    keras.backend.clear_session()
    return {"out": out, "results": results}


@pytest.fixture
def diverged_copy(diverged, tmp_path, tiny):
    """A copy of the diverged run folder, for a test to resume."""
    out = tmp_path / "run"
    shutil.copytree(diverged["out"], out)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny))
    return out, config


# Divergence


def test_a_diverging_trial_is_recorded_as_failed_while_the_others_finish(diverged):
    trials = _by_arm_and_seed(keras_tl.Results.from_folder(diverged["out"]).trials)
    assert len(trials) == 6
    failed = trials.pop(DIVERGING)
    assert failed["status"] == "failed"
    assert re.fullmatch(r"non-finite loss at epoch [1-3]", failed["error"])
    for trial in trials.values():
        assert trial["status"] == "ok" and trial["error"] is None
        assert 0.0 <= trial["test"]["accuracy"] <= 1.0
    with open(diverged["out"] / "trials.csv") as file:
        assert file.read().count(",failed,") == 1


def test_the_summary_counts_failures_per_arm(diverged):
    conditions = _conditions(keras_tl.Results.from_folder(diverged["out"]))
    assert {arm: (c["n"], c["num_failed"]) for arm, c in conditions.items()} == {
        "scratch": (2, 0),
        "fine_tune": (1, 1),
        "linear_probe": (2, 0),
    }
    (failure,) = conditions["fine_tune"]["failures"]
    assert failure["seed"] == DIVERGING[1]
    assert failure["error"].startswith("non-finite loss at epoch")
    assert keras_tl.Results.from_folder(diverged["out"]).summary["num_failed"] == 1


def test_an_arm_with_fewer_than_2_finished_seeds_gets_no_gain(diverged):
    gains = _gains(keras_tl.Results.from_folder(diverged["out"]))
    assert gains["fine_tune"]["verdict"] == "insufficient"
    assert gains["fine_tune"]["mean"] is None
    # Two paired seeds: the exact sign-flip test cannot go below p = 0.5.
    assert gains["linear_probe"]["n"] == 2
    assert gains["linear_probe"]["p_value"] >= 0.5
    assert gains["linear_probe"]["verdict"] == "inconclusive"
    assert gains["linear_probe"]["mean"] is not None


# Resuming a run with failed trials


def test_failed_trials_are_not_run_again_without_retry_failed(diverged_copy, monkeypatch):
    out, config = diverged_copy
    before = _rows(out)
    calls = _record_run_trial(monkeypatch)

    result = CliRunner().invoke(cli, ["evaluate", str(config), "--out", str(out), "--quiet"])

    assert result.exit_code == 0, result.output
    assert calls == []
    assert _rows(out) == before
    assert keras_tl.Results.from_folder(out).summary["num_failed"] == 1


def test_retry_failed_runs_only_the_failed_trials_again(diverged_copy, monkeypatch):
    out, config = diverged_copy
    before = _rows(out)
    calls = _record_run_trial(monkeypatch)

    result = CliRunner().invoke(
        cli, ["evaluate", str(config), "--out", str(out), "--quiet", "--retry-failed"]
    )
    keras.backend.clear_session()

    assert result.exit_code == 0, result.output
    assert calls == [DIVERGING]  # Trained as configured this time: it converges.
    after = _rows(out)
    assert after.keys() == before.keys()
    changed = {key for key in after if after[key] != before[key]}
    assert len(changed) == 1 and before[changed.pop()][0] == "failed"
    results = keras_tl.Results.from_folder(out)
    assert results.summary["num_failed"] == 0
    assert _by_arm_and_seed(results.trials)[DIVERGING]["status"] == "ok"
    retried = _gains(results)["fine_tune"]
    assert retried["n"] == 2 and retried["verdict"] == "inconclusive"  # p >= 0.5 at 2 seeds


# A trial that raises


def test_a_trial_that_raises_is_recorded_with_the_exception_text_and_the_sweep_continues(
    tmp_path, monkeypatch, tiny
):
    original = keras_tl.experiment.trial.run_trial
    calls = []

    def run_trial(plan, spec, *args, **kwargs):
        calls.append((spec.arm, spec.seed))
        if spec.arm == "fine_tune":
            raise RuntimeError("simulated out of memory: 12.0 GiB requested\nmore detail")
        return original(plan, spec, *args, **kwargs)

    out = tmp_path / "run"
    results = keras_tl.evaluate(tiny, out=str(out), trial_runner=run_trial)
    keras.backend.clear_session()

    # Every trial was attempted, including those after the failures.
    assert calls == [(arm, seed) for arm in tiny["arms"] for seed in (0, 1)]
    trials = _by_arm_and_seed(keras_tl.Results.from_folder(out).trials)
    for seed in (0, 1):
        failed = trials[("fine_tune", seed)]
        assert failed["status"] == "failed"
        assert failed["error"] == "RuntimeError: simulated out of memory: 12.0 GiB requested"
        for arm in ("scratch", "linear_probe"):
            assert trials[(arm, seed)]["status"] == "ok"
    conditions = _conditions(results)
    assert (conditions["fine_tune"]["n"], conditions["fine_tune"]["num_failed"]) == (0, 2)
    assert _gains(results)["fine_tune"]["verdict"] == "insufficient"
    probe = _gains(results)["linear_probe"]
    assert probe["n"] == 2 and probe["verdict"] == "inconclusive"  # p >= 0.5 at 2 seeds
    # The one-line error is in the record; the traceback goes to the run log.
    with open(out / "run.log") as file:
        log = file.read()
    assert log.count("Traceback (most recent call last)") == 2
    assert "more detail" in log
