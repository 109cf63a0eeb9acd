"""Nothing lost: kill -9, Ctrl-C and resume end with the numbers of an uninterrupted run.

One tiny experiment (6 trials) runs three times through the CLI in a subprocess, as
a user would run it, each time with the same command:

1. killed with SIGKILL once exactly one trial is in the store;
2. resumed, then interrupted with SIGINT (Ctrl-C) once exactly three are;
3. resumed to completion.

The signals never race the clock: the experiment's network is the test-only
builder `resume_pause_builders:mlp_pausing` (keras-tl's `mlp`), which, in the
first two runs only (told so by an environment variable), stops the run inside
the first trial that starts once the store holds the chosen number of trials,
and says so with a marker file. The test sends each signal after it sees the
marker, so it knows exactly which trials are stored, on a fast machine or a busy one.

The same experiment also runs uninterrupted in this process: the reference. Every
trial's numbers (val and test metrics, source metrics, transferability scores:
the whole record except its timings) must equal the reference's exactly. That
holds on CPU for torch, tensorflow and jax (measured), so no tolerance is used.
Each trial seeds itself before it builds and trains, so its numbers depend neither
on what ran before it in the process nor on whether its source model was trained
in this process or loaded from the run folder's cache.

Starting a subprocess costs 4-12 s (keras and the backend are imported and the
experiment is planned); the three phases share one run folder to keep that cost
to three starts.
"""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import keras
import pytest
import yaml

import keras_tl
from keras_tl.config.schema import load_experiment
from keras_tl.experiment.plan import plan
from keras_tl.experiment.sources import SourceModels
from keras_tl.experiment.trial import run_trial
from keras_tl.store import STORE_NAME, TrialStore

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow

NUM_TRIALS = 6
# Stored trials when the first run is killed and when the second is interrupted.
KILL_AFTER = 1
INTERRUPT_AFTER = 3
# The test-only builder that pauses a run (resume_pause_builders.py, in this folder).
PAUSING_BUILDER = "resume_pause_builders:mlp_pausing"
# The environment variable that tells it when to pause (its PAUSE_VARIABLE).
PAUSE_VARIABLE = "KERAS_TL_TEST_PAUSE"
HERE = os.path.dirname(os.path.abspath(__file__))
# Record fields that measure time, not results: they differ between any two runs.
TIMINGS = ("fit_time", "wall_time")
# Guards against a hung subprocess; not a timing assertion: nothing waits for
# time to pass, only for a marker file or a process to end.
HANG_LIMIT = 600


def _numbers(record):
    """A trial record without its timings: everything a rerun must reproduce."""
    return {key: value for key, value in record.items() if key not in TIMINGS}


def _by_key(records):
    return {record["key"]: record for record in records}


@pytest.fixture(scope="module")
def tiny(tiny_experiment):
    """The tiny experiment (tests/conftest.py), 6 trials of 150 epochs, built by
    the pausing builder (keras-tl's `mlp` unless a run is told to pause).

    Its folder is on `sys.path` here, so that the uninterrupted reference and the
    trials run in this process import the builder as the subprocesses do (through
    `PYTHONPATH`).
    """
    sys.path.insert(0, HERE)
    try:
        yield tiny_experiment(
            "tiny-resume", model={"builder": PAUSING_BUILDER},
            target={"epochs": 150, "learning_rate": 0.01},
        )
    finally:
        sys.path.remove(HERE)


def _snapshot(out):
    """The store as found on disk, read without writing to it.

    A read-only connection never checkpoints or removes the WAL a killed process
    left behind, so the resumed run sees the folder exactly as the crash left it.

    Returns:
        `(integrity, rows)`: the `PRAGMA integrity_check` answer and
        key -> (status, record text, finished_at) of every stored trial.
    """
    path = os.path.join(out, STORE_NAME)
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        integrity = connection.execute("PRAGMA integrity_check").fetchone()[0]
        rows = {
            key: (status, record, finished_at)
            for key, status, record, finished_at in connection.execute(
                "SELECT key, status, record, finished_at FROM trials"
            )
        }
    finally:
        connection.close()
    return integrity, rows


def _wait_until_paused(process, ready, after, log):
    """Waits until `process` has paused with `after` trials stored (the builder
    created `ready`), or fails if it ends first."""
    deadline = time.monotonic() + HANG_LIMIT  # A failure guard only.
    while not os.path.exists(ready):
        if process.poll() is not None:
            pytest.fail(
                f"the run ended (exit {process.returncode}) without pausing after "
                f"{after} stored trial(s), so it could not be interrupted:\n{_read(log)}"
            )
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the run did not pause after {after} trial(s) within {HANG_LIMIT} s")
        time.sleep(0.05)


def _read(path):
    with open(path) as file:
        return file.read()


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory, tiny):
    """Runs the tiny experiment through the CLI: SIGKILL, resume + SIGINT, resume to the end."""
    base = tmp_path_factory.mktemp("interrupted")
    out = str(base / "run")
    config_path = base / "tiny.yaml"
    config_path.write_text(yaml.safe_dump(tiny))
    command = [
        sys.executable, "-m", "keras_tl_cli", "evaluate", str(config_path),
        "--backend", keras.config.backend(), "--out", out,
    ]
    environment = dict(
        os.environ,
        KERAS_BACKEND=keras.config.backend(),
        KERAS_HOME=str(base / "keras_home"),
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [HERE, os.environ.get("PYTHONPATH")])),
    )
    environment.pop(PAUSE_VARIABLE, None)
    started = []

    def start(phase, pause_after=None):
        """Starts the run; with `pause_after`, it pauses once that many trials
        are stored (and creates the returned marker file)."""
        stdout = open(base / f"{phase}.out", "w")
        stderr = open(base / f"{phase}.err", "w")
        ready = str(base / f"{phase}.ready")
        phase_environment = dict(environment)
        if pause_after is not None:
            phase_environment[PAUSE_VARIABLE] = json.dumps({
                "store": os.path.join(out, STORE_NAME), "after": pause_after,
                "ready": ready, "limit": 2 * HANG_LIMIT,
            })
        process = subprocess.Popen(
            command, cwd=base, env=phase_environment, stdout=stdout, stderr=stderr
        )
        started.append(process)
        stdout.close()
        stderr.close()
        return process, ready, base / f"{phase}.err"

    def wait(process):
        try:
            return process.wait(timeout=HANG_LIMIT)
        except subprocess.TimeoutExpired:
            process.kill()
            raise

    try:
        killed, ready, log = start("killed", pause_after=KILL_AFTER)
        _wait_until_paused(killed, ready, KILL_AFTER, log)
        killed.kill()  # SIGKILL: no handler, no cleanup, no chance to close the store.
        wait(killed)
        after_kill = _snapshot(out)

        interrupted, ready, log = start("interrupted", pause_after=INTERRUPT_AFTER)
        _wait_until_paused(interrupted, ready, INTERRUPT_AFTER, log)
        interrupted.send_signal(signal.SIGINT)
        interrupted_code = wait(interrupted)
        after_interrupt = _snapshot(out)
        try:
            store = TrialStore.open_existing(out)  # As `keras-tl report` opens it.
            opened_records = store.records()
            store.close()
        except keras_tl.StoreError as error:
            opened_records = error

        finished, _, _ = start("finished")
        finished_code = wait(finished)
    finally:
        for process in started:  # Only a failed test leaves one running.
            if process.poll() is None:
                process.kill()
                process.wait()
    return {
        "out": out,
        "after_kill": after_kill,
        "killed_code": killed.returncode,
        "interrupted_code": interrupted_code,
        "interrupted_stderr": _read(base / "interrupted.err"),
        "after_interrupt": after_interrupt,
        "opened_records": opened_records,
        "finished_code": finished_code,
        "finished_stdout": _read(base / "finished.out"),
        "finished_stderr": _read(base / "finished.err"),
        "final": _snapshot(out),
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, tiny):
    """The tiny experiment run once, start to end, in this process; records in run order."""
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    order = []
    results = keras_tl.evaluate(
        tiny, out=str(out), on_trial=lambda done, total, record: order.append(record["key"])
    )
    keras.backend.clear_session()
    return {"results": results, "order": order, "records": _by_key(results.trials)}


def _records(rows):
    return {key: json.loads(record) for key, (_, record, _) in rows.items()}


# SIGKILL, then resume


def test_kill_9_after_a_finished_trial_leaves_a_sound_partial_store(interrupted_run):
    integrity, rows = interrupted_run["after_kill"]
    assert interrupted_run["killed_code"] == -signal.SIGKILL
    assert integrity == "ok"
    assert len(rows) == KILL_AFTER
    for key, (status, text, _) in rows.items():
        record = json.loads(text)
        assert record["key"] == key and record["status"] == status == "ok"


def test_trials_finished_before_a_kill_or_an_interrupt_are_kept_unchanged(interrupted_run):
    _, final = interrupted_run["final"]
    _, after_kill = interrupted_run["after_kill"]
    _, after_interrupt = interrupted_run["after_interrupt"]
    assert len(after_kill) == KILL_AFTER
    assert len(after_interrupt) == INTERRUPT_AFTER < NUM_TRIALS
    # Same status, same record text, same finished_at: never run again.
    for key, row in after_interrupt.items():
        assert final[key] == row
    for key, row in after_kill.items():
        assert after_interrupt[key] == row


def test_the_final_resume_runs_only_the_trials_not_yet_stored(interrupted_run):
    _, after_interrupt = interrupted_run["after_interrupt"]
    progress = re.findall(
        rf"^\[(\d+)/{NUM_TRIALS}\] ", interrupted_run["finished_stdout"], re.MULTILINE
    )
    assert len(after_interrupt) == INTERRUPT_AFTER
    assert len(progress) == NUM_TRIALS - len(after_interrupt)
    assert [int(done) for done in progress][-1] == NUM_TRIALS


def test_the_resumed_run_finishes_every_trial_and_writes_results(interrupted_run):
    assert interrupted_run["finished_code"] == 0, interrupted_run["finished_stderr"]
    integrity, final = interrupted_run["final"]
    assert integrity == "ok"
    assert len(final) == NUM_TRIALS
    assert {status for status, _, _ in final.values()} == {"ok"}
    results = keras_tl.Results.from_folder(interrupted_run["out"])
    assert sorted(trial["key"] for trial in results.trials) == sorted(final)
    assert results.summary["num_trials"] == NUM_TRIALS
    assert results.summary["num_failed"] == 0


def test_resumed_results_equal_an_uninterrupted_run_exactly(interrupted_run, uninterrupted):
    final = _records(interrupted_run["final"][1])
    reference = uninterrupted["records"]
    assert sorted(final) == sorted(reference)
    for key, record in final.items():
        assert _numbers(record) == _numbers(reference[key]), record["arm"]
    resumed = keras_tl.Results.from_folder(interrupted_run["out"])
    assert resumed.summary == uninterrupted["results"].summary


# SIGINT (Ctrl-C)


def test_ctrl_c_exits_130_and_says_how_to_resume(interrupted_run):
    stderr = interrupted_run["interrupted_stderr"]
    assert interrupted_run["interrupted_code"] == 130, stderr
    assert "Resume with the same command" in stderr
    assert interrupted_run["out"] in stderr
    assert "Traceback" not in stderr


def test_the_store_is_consistent_after_ctrl_c(interrupted_run, uninterrupted):
    integrity, rows = interrupted_run["after_interrupt"]
    assert integrity == "ok"
    for key, (status, text, finished_at) in rows.items():
        record = json.loads(text)
        # A whole record of a trial that finished: the interrupt neither marks the
        # trial it stopped as failed nor leaves a partial row behind.
        assert record["key"] == key and record["status"] == status == "ok"
        assert set(record) == set(uninterrupted["records"][key])
        assert finished_at > 0
    opened = interrupted_run["opened_records"]
    assert not isinstance(opened, Exception), opened
    assert _by_key(opened) == _records(rows)


# Reproducibility in one process


def test_a_trial_gives_the_same_numbers_when_the_trials_run_in_another_order(
    tmp_path, uninterrupted, tiny
):
    # Reversed arms and seeds: the same trials (same keys), each run at another
    # position, after other trials than before.
    reordered = {**tiny, "arms": tiny["arms"][::-1], "seeds": [1, 0]}
    order = []
    results = keras_tl.evaluate(
        reordered, out=str(tmp_path / "reordered"),
        on_trial=lambda done, total, record: order.append(record["key"]),
    )
    keras.backend.clear_session()
    assert sorted(order) == sorted(uninterrupted["order"])
    assert order != uninterrupted["order"]
    records = _by_key(results.trials)
    for key, record in uninterrupted["records"].items():
        assert _numbers(records[key]) == _numbers(record), record["arm"]


def test_a_trial_run_alone_gives_the_same_numbers_as_in_the_sweep(uninterrupted, tiny):
    # A transfer trial from the middle of the sweep, run alone: no trial before it,
    # its source trained afresh in memory (no cache), no compiled model to reuse.
    the_plan = plan(load_experiment(tiny))
    spec = next(s for s in the_plan.trials if (s.arm, s.seed) == ("fine_tune", 1))
    alone = run_trial(the_plan, spec, SourceModels(the_plan))
    keras.backend.clear_session()
    in_sweep = uninterrupted["records"][spec.key(the_plan.experiment)]
    assert alone["test"] and alone["val"]
    assert _numbers(alone) == {key: in_sweep[key] for key in _numbers(alone)}
