"""The trial store: exact round trips, clear refusals, WAL, and concurrent writers."""

import json
import math
import multiprocessing
import os
import random
import sqlite3

import keras
import pytest

import keras_tl
from keras_tl.config.schema import load_experiment
from keras_tl.errors import StoreError
from keras_tl.experiment.folder import prepare_run_folder
from keras_tl.results.results import Results
from keras_tl.results.summary import rebuild
from keras_tl.store import STORE_NAME, TrialStore

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow

EXPERIMENT = {
    "name": "tiny-store",
    "model": {"builder": "mlp"},
    "source": {"task": "digits", "epochs": 1, "batch_size": 64},
    "target": {"task": "digits:parity", "train_sizes": [20], "epochs": 1, "batch_size": 10},
    "arms": ["scratch", "linear_probe"],
    "seeds": 2,
}
NOT_A_STORE = "is not a keras-tl trial store"
FIX = "Delete it, or run in another folder."


def _record(key, status="ok", **fields):
    return {"key": key, "status": status, "error": None, **fields}


def _files(folder):
    """Every file directly in `folder` with its bytes."""
    files = {}
    for name in sorted(os.listdir(folder)):
        if not os.path.isfile(os.path.join(folder, name)):
            continue
        with open(os.path.join(folder, name), "rb") as file:
            files[name] = file.read()
    return files


# Round trips


def test_put_then_records_and_statuses_round_trip_exactly(tmp_path):
    path = str(tmp_path / STORE_NAME)
    records = [
        _record(
            "a1",
            test={"accuracy": 0.1 + 0.2, "loss": 1 / 3, "auc": None},
            val={"accuracy": 5e-324, "loss": 1.7976931348623157e308},
            epochs=3, transfer={"copied": ["fc1", "fc2"], "skipped": []},
            note="ünïcödé, \"quotes\", new\nline",
        ),
        _record("a2", status="failed", error="non-finite loss at epoch 2", test=None),
        _record("a3", test={"accuracy": math.pi, "loss": -0.0}, seeds=[0, 1, 2]),
    ]
    store = TrialStore(path)
    for record in records:
        store.put(record)
    store.set_meta("context", {"transferable": ["fc1", "fc2"], "ratio": 2 / 3})
    store.close()

    reopened = TrialStore(path)
    try:
        assert reopened.records() == records  # In the order they finished.
        assert reopened.statuses() == {"a1": "ok", "a2": "failed", "a3": "ok"}
        assert reopened.get_meta("context") == {"transferable": ["fc1", "fc2"], "ratio": 2 / 3}
        assert reopened.get_meta("missing") is None
    finally:
        reopened.close()


def test_putting_a_trial_again_replaces_its_row(tmp_path):
    store = TrialStore(str(tmp_path / STORE_NAME))
    try:
        store.put(_record("a1", status="failed", error="non-finite loss at epoch 1"))
        store.put(_record("a1", test={"accuracy": 0.75}))
        assert store.statuses() == {"a1": "ok"}
        assert store.records() == [_record("a1", test={"accuracy": 0.75})]
    finally:
        store.close()


def test_the_store_is_in_wal_mode(tmp_path):
    path = str(tmp_path / STORE_NAME)
    TrialStore(path).close()
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        connection.close()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A tiny evaluation, its run folder's files and the Results it returned."""
    out = tmp_path_factory.mktemp("store") / "run"
    results = keras_tl.evaluate(EXPERIMENT, out=str(out))
    keras.backend.clear_session()
    return {"out": str(out), "results": results, "files": _files(out)}


@pytest.fixture
def run_copy(finished_run, tmp_path):
    """A copy of the finished run's folder (its files, not its cache)."""
    out = tmp_path / "run"
    out.mkdir()
    for name, data in finished_run["files"].items():
        (out / name).write_bytes(data)
    return out


def test_rebuilding_twice_writes_identical_bytes(finished_run, run_copy):
    first = rebuild(str(run_copy))
    first_files = _files(run_copy)
    second = rebuild(str(run_copy))

    # The provenance (timestamp included) is the run's own, kept in the store.
    assert _files(run_copy) == first_files
    assert first.to_dict() == second.to_dict() == finished_run["results"].to_dict()


def test_rebuilding_writes_the_bytes_the_run_wrote(finished_run, run_copy):
    # `keras-tl report` must not rewrite a finished run's results.json in another
    # layout (key order included): the files are diffed and version-controlled.
    rebuild(str(run_copy))
    for name in ("results.json", "trials.csv"):
        assert _files(run_copy)[name] == finished_run["files"][name], name


def test_results_json_holds_the_stored_records_exactly(finished_run):
    store = TrialStore.open_existing(finished_run["out"])
    try:
        stored = {record["key"]: record for record in store.records()}
    finally:
        store.close()
    saved = Results.from_folder(finished_run["out"])
    assert len(stored) == 4
    assert {trial["key"]: trial for trial in saved.trials} == stored
    assert saved.to_dict() == finished_run["results"].to_dict()


# Refusals


def _write_random_bytes(path, size=4096):
    with open(path, "wb") as file:
        file.write(random.Random(0).randbytes(size))


def _write_foreign_sqlite(path):
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE users (name TEXT)")
    connection.execute("INSERT INTO users VALUES ('ann')")
    connection.commit()
    connection.close()


def test_a_corrupt_store_gives_a_clear_store_error_and_is_left_alone(tmp_path):
    path = tmp_path / STORE_NAME
    _write_random_bytes(path)
    before = _files(tmp_path)
    experiment = load_experiment(EXPERIMENT)

    for open_store in (
        lambda: TrialStore(str(path)),
        lambda: TrialStore.open_existing(str(tmp_path)),
        lambda: rebuild(str(tmp_path)),
        lambda: prepare_run_folder(str(tmp_path), experiment),
    ):
        with pytest.raises(StoreError) as caught:
            open_store()
        message = str(caught.value)
        assert message.startswith(f"{path} {NOT_A_STORE} (")
        assert message.endswith(FIX)
        assert "\n" not in message
    assert _files(tmp_path) == before


def test_a_foreign_sqlite_file_gives_a_clear_store_error_and_is_left_alone(tmp_path):
    path = tmp_path / STORE_NAME
    _write_foreign_sqlite(path)
    before = _files(tmp_path)

    for open_store in (
        lambda: TrialStore(str(path)),
        lambda: rebuild(str(tmp_path)),
        lambda: prepare_run_folder(str(tmp_path), load_experiment(EXPERIMENT)),
    ):
        with pytest.raises(
            StoreError,
            match=r"is an SQLite file but not a keras-tl trial store \(tables: \['users'\]\)",
        ):
            open_store()
    # Refusing the file must not change it (not even its journal mode) nor add
    # tables to it.
    assert _files(tmp_path) == before
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("SELECT name FROM users").fetchall() == [("ann",)]
    finally:
        connection.close()


def test_a_store_of_another_experiment_is_refused_and_left_alone(tmp_path):
    first = load_experiment(EXPERIMENT)
    other = load_experiment({**EXPERIMENT, "name": "other", "seeds": 3})
    store = TrialStore(str(tmp_path / STORE_NAME))
    store.bind(first)
    store.put(_record("a1", test={"accuracy": 0.5}))
    store.close()

    store = TrialStore(str(tmp_path / STORE_NAME))
    try:
        with pytest.raises(StoreError) as caught:
            store.bind(other)
        assert store.get_meta("experiment") == first.to_dict()
        store.bind(first)  # The same experiment is accepted: that is a resume.
        assert store.records() == [_record("a1", test={"accuracy": 0.5})]
    finally:
        store.close()
    message = str(caught.value)
    assert "holds results of another experiment ('tiny-store'" in message
    assert f"{first.fingerprint()}); this one is 'other' ({other.fingerprint()})" in message
    assert message.endswith("Use a new --out folder, or --overwrite to replace it.")
    with pytest.raises(StoreError, match="holds results of another experiment"):
        prepare_run_folder(str(tmp_path), other)


# Concurrent writers

# Runs in a spawned worker (exec of this source, so the worker imports neither this
# test module nor keras). Each worker waits for the other at its halfway point, so
# both are writing at the same time whatever the scheduling.
WRITER = """
import sys

from keras_tl.store import TrialStore

store = TrialStore(path)
for index in range(count):
    if index == count // 2:
        halfway.wait(timeout=120)
    store.put({"key": f"w{worker}-{index:03d}", "status": "ok", "worker": worker,
               "index": index, "test": {"accuracy": index / count}})
store.close()
if "keras" in sys.modules:
    raise SystemExit("the writer imported keras")
"""
NUM_WRITES = 200


def test_two_processes_writing_at_once_never_corrupt_the_store(tmp_path):
    path = str(tmp_path / STORE_NAME)
    TrialStore(path).close()
    context = multiprocessing.get_context("spawn")
    halfway = context.Barrier(2)
    writers = [
        context.Process(
            target=exec,
            args=(WRITER, {"path": path, "worker": worker, "count": NUM_WRITES,
                           "halfway": halfway}),
        )
        for worker in (0, 1)
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=300)
    assert [writer.exitcode for writer in writers] == [0, 0]

    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = connection.execute("SELECT key, status, record FROM trials").fetchall()
    finally:
        connection.close()
    expected = {
        f"w{worker}-{index:03d}": {
            "key": f"w{worker}-{index:03d}", "status": "ok", "worker": worker,
            "index": index, "test": {"accuracy": index / NUM_WRITES},
        }
        for worker in (0, 1)
        for index in range(NUM_WRITES)
    }
    assert len(rows) == 2 * NUM_WRITES
    assert {key: json.loads(record) for key, _, record in rows} == expected
    assert {status for _, status, _ in rows} == {"ok"}
