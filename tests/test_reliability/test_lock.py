"""The run lock: one live run per run folder, refused at once, never left held by a
killed process, and `--overwrite` never deletes a live run's folder.

Every test uses real processes. A holder process takes the lock through the same
API `evaluate` uses (`prepare_run_folder`), prints `locked` when it holds it and
keeps it until its stdin closes; the test reads that line before it goes on, so
the order is fixed without sleeping.
"""

import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import pytest
import yaml

from keras_tl.config.schema import load_experiment
from keras_tl.errors import KerasTLError, StoreError
from keras_tl.experiment.folder import prepare_run_folder
from keras_tl.store import LOCK_NAME, STORE_NAME, RunLock, RunLockedError, TrialStore

EXPERIMENT = {
    "name": "tiny-lock",
    "model": {"builder": "mlp"},
    "source": {"task": "digits", "epochs": 1, "batch_size": 64},
    "target": {"task": "digits:parity", "train_sizes": [20], "epochs": 1, "batch_size": 10},
    "arms": ["scratch", "linear_probe"],
    "seeds": 1,
}
HANG_LIMIT = 300

HOLDER = """
import json, sys
from keras_tl.config.schema import load_experiment
from keras_tl.experiment.folder import prepare_run_folder

store = prepare_run_folder(sys.argv[1], load_experiment(json.loads(sys.argv[2])))
store.put({"key": "held", "status": "failed", "error": "kept by the holder",
           "arm": "scratch", "recipe": "scratch", "source": None, "freeze_depth": None,
           "requested_train_size": 20, "seed": 0})
print("locked", flush=True)
sys.stdin.read()  # Holds the lock until the test closes our stdin.
store.close()
print("released", flush=True)
"""


class Holder:
    """A process holding the lock of `out` (a `prepare_run_folder` store)."""

    def __init__(self, out, config=EXPERIMENT):
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(out), json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=dict(os.environ, KERAS_BACKEND=keras.config.backend()),
        )
        line = self.process.stdout.readline()  # Blocks until the lock is held.
        if line.strip() != "locked":
            self.process.kill()
            raise AssertionError(f"the holder did not lock: {line!r} "
                                 f"{self.process.communicate(timeout=HANG_LIMIT)[1]}")

    @property
    def pid(self):
        return self.process.pid

    def release(self):
        """Closes the holder's stdin: it closes its store and exits."""
        out, err = self.process.communicate(input="", timeout=HANG_LIMIT)
        assert self.process.returncode == 0, err
        assert out.strip() == "released"

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.communicate(timeout=HANG_LIMIT)

    def stop(self):
        if self.process.poll() is None:
            self.kill()


@pytest.fixture
def holder(tmp_path):
    started = []

    def start(out=None, config=EXPERIMENT):
        started.append(Holder(out or tmp_path / "run", config))
        return started[-1]

    yield start
    for process in started:
        process.stop()


def _files(folder):
    """Every file under `folder` with its bytes (what a refused run must not change)."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as file:
                found[os.path.relpath(path, folder)] = file.read()
    return found


def test_a_second_run_on_a_live_run_folder_is_refused_at_once_naming_the_holder(
    holder, tmp_path
):
    out = tmp_path / "run"
    first = holder(out)
    before = _files(out)

    started = time.monotonic()
    with pytest.raises(RunLockedError) as caught:
        prepare_run_folder(str(out), load_experiment(EXPERIMENT))
    waited = time.monotonic() - started

    message = str(caught.value)
    assert message == (
        f"Run folder {str(out)!r} is in use by process {first.pid} on host "
        f"{socket.gethostname()}, started {_holder_started(out)}. Wait for that run to "
        f"finish (or stop it), or use another --out folder."
    )
    assert isinstance(caught.value, StoreError) and isinstance(caught.value, KerasTLError)
    assert waited < 30  # No waiting on the lock (the bound only absorbs a slow machine).
    assert _files(out) == before  # Nothing read into, written or deleted.
    first.release()


def _holder_started(out):
    with open(os.path.join(out, LOCK_NAME)) as file:
        return json.load(file)["started"]


def test_overwrite_does_not_delete_a_live_runs_folder(holder, tmp_path):
    out = tmp_path / "run"
    first = holder(out)
    (out / "results.json").write_text("{}")
    before = _files(out)

    with pytest.raises(RunLockedError, match=f"is in use by process {first.pid} on host"):
        prepare_run_folder(str(out), load_experiment(EXPERIMENT), overwrite=True)
    # Another experiment with --overwrite is refused just the same.
    with pytest.raises(RunLockedError):
        prepare_run_folder(str(out), load_experiment({**EXPERIMENT, "name": "other"}),
                           overwrite=True)
    assert _files(out) == before
    first.release()

    # Once the run has ended, --overwrite replaces the folder.
    store = prepare_run_folder(str(out), load_experiment(EXPERIMENT), overwrite=True)
    try:
        assert store.statuses() == {}
        assert "results.json" not in os.listdir(out)
    finally:
        store.close()


def test_a_killed_run_leaves_no_lock_held(holder, tmp_path):
    out = tmp_path / "run"
    holder(out).kill()  # SIGKILL: no cleanup; the lock file stays, unlocked.
    assert os.path.exists(out / LOCK_NAME)

    store = prepare_run_folder(str(out), load_experiment(EXPERIMENT))
    try:
        # The run is resumed: what the killed run stored is there.
        assert store.statuses() == {"held": "failed"}
    finally:
        store.close()
    assert not os.path.exists(out / LOCK_NAME)


def test_a_stale_lock_file_alone_does_not_make_a_folder_non_empty(holder, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text('{"pid": 1, "host": "gone"}')
    store = prepare_run_folder(str(out), load_experiment(EXPERIMENT))
    store.close()
    assert os.listdir(out) == [STORE_NAME]


def test_the_lock_is_released_when_the_run_closes_its_store(holder, tmp_path):
    out = tmp_path / "run"
    holder(out).release()
    assert not os.path.exists(out / LOCK_NAME)  # A finished run leaves no lock file.

    store = prepare_run_folder(str(out), load_experiment(EXPERIMENT))
    try:
        assert store.statuses() == {"held": "failed"}
    finally:
        store.close()


def test_a_second_store_in_the_same_process_is_refused_too(tmp_path):
    out = tmp_path / "run"
    experiment = load_experiment(EXPERIMENT)
    store = prepare_run_folder(str(out), experiment)
    try:
        with pytest.raises(RunLockedError, match=rf"in use by this process \(pid {os.getpid()}\)"):
            prepare_run_folder(str(out), experiment)
    finally:
        store.close()
    prepare_run_folder(str(out), experiment).close()


def test_a_refused_folder_gets_no_lock_file(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="exists and is not empty"):
        prepare_run_folder(str(out), load_experiment(EXPERIMENT))
    assert os.listdir(out) == ["notes.txt"]


def test_a_store_that_cannot_be_opened_releases_the_lock_and_leaves_no_lock_file(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / STORE_NAME).write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="is not a keras-tl trial store"):
        prepare_run_folder(str(out), load_experiment(EXPERIMENT))
    assert os.listdir(out) == [STORE_NAME]
    with RunLock.acquire(str(out)):  # Not held by anyone.
        pass


# Many processes at once: exactly one wins.

RACER_COUNT = 4


# Runs in a spawned process as `exec` of this source, so a racer imports neither this
# test module nor keras: all start within a moment of each other.
RACER = """
from keras_tl.store import RunLock, RunLockedError

ready.wait(timeout=300)  # Every racer tries at the same moment.
try:
    lock = RunLock.acquire(folder)
except RunLockedError as error:
    lock, outcome = None, str(error)
else:
    outcome = "won"
tried.wait(timeout=300)  # The winner holds the lock until all have tried.
results.put((index, outcome))
if lock:
    lock.release()
"""


@pytest.mark.parametrize("round_", range(5))
def test_of_processes_locking_at_once_exactly_one_wins(tmp_path, round_):
    folder = str(tmp_path)
    context = multiprocessing.get_context("spawn")
    ready, tried = context.Barrier(RACER_COUNT), context.Barrier(RACER_COUNT)
    results = context.Queue()
    racers = [
        context.Process(target=exec, args=(RACER, {
            "folder": folder, "ready": ready, "tried": tried, "results": results,
            "index": index,
        }))
        for index in range(RACER_COUNT)
    ]
    for racer in racers:
        racer.start()
    outcomes = dict(results.get(timeout=HANG_LIMIT) for _ in racers)
    for racer in racers:
        racer.join(timeout=HANG_LIMIT)
    assert [racer.exitcode for racer in racers] == [0] * RACER_COUNT
    assert list(outcomes.values()).count("won") == 1, outcomes
    winner = next(index for index, outcome in outcomes.items() if outcome == "won")
    for index, outcome in outcomes.items():
        if index != winner:
            assert outcome.startswith(f"Run folder {folder!r} is in use by process "), outcome
            assert str(racers[winner].pid) in outcome
    assert not os.path.exists(os.path.join(folder, LOCK_NAME))


# Runs in a spawned process (as above): takes and releases the lock `count` times,
# retrying while another holds it, and counts the times it found the lock taken by
# someone else while it held it (two holders at once).
CYCLER = """
import os
from keras_tl.store import RunLock, RunLockedError

start.wait(timeout=300)
for _ in range(count):
    while True:
        try:
            lock = RunLock.acquire(folder)
            break
        except RunLockedError:
            continue
    with inside.get_lock():
        inside.value += 1
        if inside.value != 1:
            overlaps.value += 1
    os.listdir(folder)  # Hold it for a moment.
    with inside.get_lock():
        inside.value -= 1
    lock.release()
"""


def test_taking_and_releasing_the_lock_in_a_loop_never_gives_two_holders(tmp_path):
    # Releasing removes the lock file; a process that opened the file just before
    # must not end up holding a lock on a removed file while another locks a new one.
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    inside, overlaps = context.Value("i", 0), context.Value("i", 0)
    cyclers = [
        context.Process(target=exec, args=(CYCLER, {
            "folder": str(tmp_path), "start": start, "inside": inside,
            "overlaps": overlaps, "count": 200,
        }))
        for _ in range(3)
    ]
    for cycler in cyclers:
        cycler.start()
    for cycler in cyclers:
        cycler.join(timeout=HANG_LIMIT)
    assert [cycler.exitcode for cycler in cyclers] == [0, 0, 0]
    assert overlaps.value == 0
    assert os.listdir(tmp_path) == []


def test_a_lock_taken_on_a_lock_file_just_removed_is_not_kept(tmp_path, monkeypatch):
    # The window above, forced: B opens the lock file; before B locks it, holder A
    # releases (removing the file) and C locks a new file. B's lock on the removed
    # file would be a second holder: B must look again and find C.
    import keras_tl.runlock as store_module

    folder = str(tmp_path)
    first = RunLock.acquire(folder)
    real_try_lock = store_module._try_lock
    third = []

    def interleaved(descriptor):
        if not third:
            third.append(None)  # Only B's first try is interleaved.
            first.release()
            third[0] = RunLock.acquire(folder)
        return real_try_lock(descriptor)

    monkeypatch.setattr(store_module, "_try_lock", interleaved)
    with pytest.raises(RunLockedError, match=r"in use by this process"):
        RunLock.acquire(folder)
    assert third[0].held
    third[0].release()


# The command line


def test_the_cli_refuses_a_second_evaluate_with_one_line_and_exit_2(holder, tmp_path):
    out = tmp_path / "run"
    first = holder(out)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(EXPERIMENT))
    before = _files(out)
    for extra in ([], ["--overwrite"]):
        second = subprocess.run(
            [sys.executable, "-m", "keras_tl_cli", "evaluate", str(config),
             "--backend", keras.config.backend(), "--out", str(out), "--quiet", *extra],
            capture_output=True, text=True, timeout=HANG_LIMIT, cwd=tmp_path,
            env=dict(os.environ, KERAS_BACKEND=keras.config.backend(),
                     KERAS_HOME=str(tmp_path / "keras_home")),
        )
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert lines[-1].startswith(
            f"Error: Run folder {str(out)!r} is in use by process {first.pid} on host "
        ), second.stderr
        assert "Traceback" not in second.stderr
        assert _files(out) == before
    first.release()
    store = TrialStore.open_existing(str(out))
    try:
        assert store.statuses() == {"held": "failed"}
    finally:
        store.close()


@pytest.mark.slow
def test_an_interrupted_evaluate_does_not_keep_the_folder_locked_in_its_process(tmp_path):
    import keras_tl

    out = tmp_path / "run"

    def stop_after_one(done, total, record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        keras_tl.evaluate(EXPERIMENT, out=str(out), on_trial=stop_after_one)
    results = keras_tl.evaluate(EXPERIMENT, out=str(out))  # The same process resumes.
    assert [t["status"] for t in results.trials] == ["ok", "ok"]
    assert not os.path.exists(out / LOCK_NAME)
