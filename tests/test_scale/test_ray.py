"""Sweeps through the Ray executor on a local 2-CPU Ray cluster (conftest.py).

The same trials, with the same numbers, as the serial executor, even when a
worker is killed mid-trial (the trial runs again on a restarted worker; one
whose worker dies every time is recorded failed): never a lost or duplicated
trial. A driver stopped mid-sweep resumes through `keras-tl evaluate --executor
ray` where it stopped. Each test starts its own actors (a few seconds each: they
import keras and plan the experiment), so the tests are few and share the
reference run.
"""

import os

import pytest
import yaml
from click.testing import CliRunner

import keras_tl
from keras_tl.config.schema import load_experiment
from keras_tl.experiment.executors import RAY_TRIAL_RETRIES, RayExecutor
from keras_tl.experiment.plan import plan
from keras_tl.experiment.trial import run_trial
from keras_tl.store import TrialStore
from keras_tl_cli.main import cli

pytestmark = pytest.mark.slow

# Record fields that measure time, not results: they differ between any two runs.
TIMINGS = ("fit_time", "wall_time")
# Ray and serial runs do the same arithmetic on CPU (measured: equal to the last
# bit); the tolerance only allows for a different summation order.
TOLERANCE = 1e-6


def _numbers(record):
    """The metrics of a trial record, flat: `test_accuracy`, `source_after_loss`, ..."""
    parts = {"val": record["val"], "test": record["test"]}
    for moment, metrics in (record["source_metrics"] or {}).items():
        parts[f"source_{moment}"] = metrics
    return {
        f"{part}_{name}": value
        for part, metrics in parts.items()
        for name, value in metrics.items()
    }


def _by_key(trials):
    return {trial["key"]: trial for trial in trials}


def _by_identity(trials):
    """Trials by what they run (arm, source, depth, size, seed), whatever the model's
    builder is called."""
    fields = ("arm", "source", "freeze_depth", "requested_train_size", "seed")
    return {tuple(trial[field] for field in fields): trial for trial in trials}


def _assert_same_trials(trials, reference):
    trials, reference = _by_identity(trials), _by_identity(reference)
    assert sorted(trials, key=str) == sorted(reference, key=str)
    for identity, trial in trials.items():
        assert trial["status"] == "ok", trial["error"]
        assert _numbers(trial) == pytest.approx(
            _numbers(reference[identity]), abs=TOLERANCE
        )


def _stored(out):
    store = TrialStore(os.path.join(out, "trials.sqlite"))
    try:
        return store.records()
    finally:
        store.close()


@pytest.fixture(scope="module")
def serial_trials(tiny_sweep, tmp_path_factory):
    """The reference: the tiny sweep's trials run by the serial executor."""
    out = tmp_path_factory.mktemp("serial") / "run"
    return keras_tl.evaluate(tiny_sweep("tiny"), out=str(out), executor="serial").trials


def test_sweep_with_a_worker_killed_mid_trial_matches_the_serial_run(
    ray_cluster, tiny_sweep, serial_trials, tmp_path
):
    marker = tmp_path / "killed"
    experiment = tiny_sweep(
        "tiny-ray-kill",
        model={"builder": "ray_kill_builders:mlp_killing_once", "marker": str(marker)},
    )
    reported = []

    results = keras_tl.evaluate(
        experiment, out=str(tmp_path / "run"), executor="ray",
        on_trial=lambda done, total, record: reported.append(record["key"]),
    )

    resolved = load_experiment(experiment)
    planned = [spec.key(resolved) for spec in plan(resolved).trials]
    assert marker.exists()  # A worker did die mid-trial; its trial ran again.
    assert sorted(reported) == sorted(planned)  # Each trial reported once.
    assert sorted(_by_key(results.trials)) == sorted(planned)
    _assert_same_trials(results.trials, serial_trials)


def test_driver_stopped_mid_sweep_resumes_through_the_cli(
    ray_cluster, tiny_sweep, serial_trials, tmp_path
):
    experiment = tiny_sweep("tiny")
    out = tmp_path / "run"
    config = tmp_path / "experiment.yaml"
    config.write_text(yaml.safe_dump(experiment))

    def stop_after_two(done, total, record):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        keras_tl.evaluate(experiment, out=str(out), executor="ray",
                          on_trial=stop_after_two)
    stored_before = _by_key(_stored(str(out)))
    result = CliRunner().invoke(
        cli, ["evaluate", str(config), "--out", str(out), "--executor", "ray",
              "--workers", "2", "--quiet"],
        prog_name="keras-tl",
    )
    stored_after = _by_key(_stored(str(out)))

    assert result.exit_code == 0, result.output
    assert len(stored_before) == 2
    for key, record in stored_before.items():  # Finished trials are not run again.
        assert stored_after[key] == record
    _assert_same_trials(stored_after.values(), serial_trials)
    assert ray_cluster.is_initialized()  # A Ray session the caller started stays up.


def test_trial_whose_worker_always_dies_is_recorded_failed(ray_cluster, tiny_sweep,
                                                           tmp_path):
    marker = tmp_path / "deaths"
    experiment = tiny_sweep(
        "tiny-ray-doomed",
        model={"builder": "ray_kill_builders:mlp_killing_always", "marker": str(marker)},
        arms=["scratch"], seeds=1,
    )

    results = keras_tl.evaluate(
        experiment, out=str(tmp_path / "run"), executor="ray", workers=1
    )

    (trial,) = results.trials
    assert trial["status"] == "failed"
    assert trial["error"] == (
        f"the Ray worker running this trial died {RAY_TRIAL_RETRIES + 1} times"
    )
    assert marker.read_text().count("died") == RAY_TRIAL_RETRIES + 1


def test_worker_that_cannot_start_its_backend_fails_its_trials(ray_cluster, tiny_sweep,
                                                               tmp_path):
    the_plan = plan(load_experiment(tiny_sweep("tiny")))
    executor = RayExecutor(the_plan, str(tmp_path / "cache"), 1, backend="theano",
                           run_one=run_trial)
    try:
        records = [record for record, _ in executor.run(the_plan.trials)]
    finally:
        executor.close()

    assert len(records) == len(the_plan.trials)
    for record in records:
        assert record["status"] == "failed"
        assert "could not start: BackendError: Unknown backend 'theano'" in (
            record["error"]
        )
