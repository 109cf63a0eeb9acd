"""Nothing lost, clear messages: storage faults, half-created stores, hand-edited
rows, corrupt cached sources, non-finite results, and TensorFlow's start-up notices.

Faults are injected: SQLite errors through a wrapped connection (and one real
`SQLITE_FULL` from a capped page count), `OSError(errno.ENOSPC)` through the file
calls, read-only files and folders through chmod (skipped as root, where chmod
does not stop writes).
"""

import errno
import importlib.util
import json
import logging
import math
import os
import shutil
import sqlite3
import subprocess
import sys

import keras
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import keras_tl
import keras_tl.store as store_module
from keras_tl.backend import installed_version
from keras_tl.config.schema import load_experiment
from keras_tl.errors import StoreError
from keras_tl.experiment.folder import prepare_run_folder
from keras_tl.experiment.plan import plan
from keras_tl.experiment.sources import SourceModels
from keras_tl.results.results import Results
from keras_tl.results.summary import rebuild
from keras_tl.store import LOCK_NAME, STORE_NAME, TrialStore, write_atomic
from keras_tl_cli.main import cli

EXPERIMENT = {
    "name": "tiny-storage",
    "model": {"builder": "mlp"},
    "source": {"task": "digits", "epochs": 1, "batch_size": 64},
    "target": {"task": "digits:parity", "train_sizes": [20], "epochs": 1, "batch_size": 10},
    "arms": ["scratch", "linear_probe"],
    "seeds": 1,
}


def _chmod_stops_writes():
    """False where a read-only mode does not stop this process (root, or a process
    with CAP_DAC_OVERRIDE): then the chmod tests cannot make their fault."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        probe = os.path.join(folder, "probe")
        open(probe, "w").close()
        os.chmod(probe, 0o444)
        try:
            with open(probe, "a"):
                return False
        except PermissionError:
            return True


needs_non_root = pytest.mark.skipif(
    not _chmod_stops_writes(),
    reason=f"chmod does not stop writes here (euid {os.geteuid()}: root ignores file "
           f"modes)",
)


def _trial(key, arm="scratch", seed=0, status="ok", **fields):
    """A trial record with every field the store checks."""
    record = {
        "key": key, "status": status, "error": None if status == "ok" else "diverged",
        "arm": arm, "recipe": arm, "source": None if arm == "scratch" else "digits",
        "freeze_depth": None if arm == "scratch" else 2, "requested_train_size": 20,
        "seed": seed, "train_size": 20, "test": {"accuracy": 0.5, "loss": 0.7},
        "val": {"accuracy": 0.5, "loss": 0.7},
    }
    return {**record, **fields}


def _one_line(message):
    assert "\n" not in message, message
    return message


def _tables(path):
    connection = sqlite3.connect(path)
    try:
        return sorted(row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type='table'"))
    finally:
        connection.close()


class FaultyConnection:
    """An sqlite3 connection whose statements matching `when(sql)` raise `error()`."""

    def __init__(self, connection, when, error):
        self._connection, self._when, self._error = connection, when, error

    def execute(self, sql, *args):
        if self._when(sql):
            raise self._error()
        return self._connection.execute(sql, *args)

    def executescript(self, sql):
        if self._when(sql):
            raise self._error()
        return self._connection.executescript(sql)

    def __getattr__(self, name):
        return getattr(self._connection, name)


def _sqlite_error(message, name):
    """A function making the error SQLite raises with `message` and error `name`
    (a new one each time: a raised error keeps its traceback's frames alive)."""

    def make():
        error = sqlite3.OperationalError(message)
        error.sqlite_errorname = name
        return error

    return make


@pytest.fixture
def inject(monkeypatch):
    """`inject(when, error)`: every connection the store opens from now on raises
    `error()` on the statements for which `when(sql)` is true."""

    def start(when, error):
        real_connect = sqlite3.connect

        def connect(*args, **kwargs):
            return FaultyConnection(real_connect(*args, **kwargs), when, error)

        monkeypatch.setattr(store_module.sqlite3, "connect", connect)
        return real_connect

    return start


DISK_FULL = _sqlite_error("database or disk is full", "SQLITE_FULL")


# A full disk


def test_a_full_disk_while_creating_the_store_is_said_and_the_next_run_completes_it(
    tmp_path, inject, monkeypatch
):
    out = tmp_path / "run"
    path = out / STORE_NAME
    inject(lambda sql: "CREATE TABLE IF NOT EXISTS trials" in sql, DISK_FULL)
    with pytest.raises(StoreError) as caught:
        prepare_run_folder(str(out), load_experiment(EXPERIMENT))
    message = _one_line(str(caught.value))
    assert message == (
        f"Cannot set up {path}: the disk is full (database or disk is full). What was "
        f"already saved is kept; free some space, then run the same command again to "
        f"resume."
    )
    assert "Delete" not in message and "not a keras-tl trial store" not in message
    assert not os.path.exists(out / LOCK_NAME)  # The lock went with the failed run.

    monkeypatch.undo()  # Space freed: the same command goes on.
    store = prepare_run_folder(str(out), load_experiment(EXPERIMENT))
    try:
        assert store.statuses() == {}
        assert store.get_meta("fingerprint") == load_experiment(EXPERIMENT).fingerprint()
    finally:
        store.close()
    assert _tables(path) == ["meta", "trials"]


def _meta_only(path):
    # What keras-tl left before this fix when the disk filled up between the tables.
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    connection.close()


def _trials_only(path):
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE trials (key TEXT PRIMARY KEY, status TEXT NOT NULL, "
                       "record TEXT NOT NULL, finished_at REAL NOT NULL)")
    connection.close()


def _empty_file(path):
    open(path, "wb").close()


def _meta_without_fingerprint(path):
    # Interrupted while binding, before this fix wrote the three entries at once.
    _meta_only(path)
    connection = sqlite3.connect(path)
    connection.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    connection.commit()
    connection.close()


@pytest.mark.parametrize(
    "half_created", [_meta_only, _trials_only, _empty_file, _meta_without_fingerprint]
)
def test_a_half_created_store_is_completed_on_the_next_run(tmp_path, half_created):
    out = tmp_path / "run"
    out.mkdir()
    half_created(str(out / STORE_NAME))
    store = prepare_run_folder(str(out), load_experiment(EXPERIMENT))
    try:
        store.put(_trial("t1"))
        assert store.statuses() == {"t1": "ok"}
    finally:
        store.close()
    assert _tables(out / STORE_NAME) == ["meta", "trials"]
    assert _stored_fingerprint(out)["fingerprint"] == load_experiment(EXPERIMENT).fingerprint()


def _stored_fingerprint(out):
    store = TrialStore.open_existing(str(out))
    try:
        return {"fingerprint": store.get_meta("fingerprint")}
    finally:
        store.close()


def test_an_sqlite_file_with_a_foreign_table_named_meta_is_still_refused(tmp_path):
    path = tmp_path / STORE_NAME
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE meta (id INTEGER, name TEXT)")
    connection.close()
    with pytest.raises(StoreError, match=r"not a keras-tl trial store \(tables: \['meta'\]\)"):
        TrialStore(str(path))


def test_a_real_sqlite_full_error_while_writing_a_trial_loses_nothing(tmp_path):
    store = prepare_run_folder(str(tmp_path / "run"), load_experiment(EXPERIMENT))
    try:
        store.put(_trial("t1"))
        # SQLite's own "disk full": the file may not grow past its current pages.
        pages = store._connection.execute("PRAGMA page_count").fetchone()[0]
        store._connection.execute(f"PRAGMA max_page_count={pages}")
        with pytest.raises(StoreError) as caught:
            store.put(_trial("t2", note="x" * 100_000))
        message = _one_line(str(caught.value))
        assert message.startswith(f"Cannot write to {store.path}: the disk is full (")
        assert "Delete" not in message
        assert store.statuses() == {"t1": "ok"}  # The failed write changed nothing.
        store._connection.execute("PRAGMA max_page_count=1073741823")
        store.put(_trial("t2", note="x" * 100_000))  # Space again: it goes on.
        assert store.statuses() == {"t1": "ok", "t2": "ok"}
    finally:
        store.close()


def test_a_full_disk_while_writing_results_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path, monkeypatch
):
    path = tmp_path / "results.json"
    path.write_text('{"old": true}')

    def no_space(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "fsync", no_space)
    with pytest.raises(StoreError) as caught:
        write_atomic(str(path), '{"new": true}')
    assert _one_line(str(caught.value)) == (
        f"Cannot write {path}: the disk is full ([Errno 28] No space left on device). "
        f"What was already saved is kept; free some space, then run the same command "
        f"again to resume."
    )
    assert path.read_text() == '{"old": true}'
    assert os.listdir(tmp_path) == ["results.json"]


def test_a_full_disk_while_logging_a_failed_trial_is_said(tmp_path, monkeypatch):
    import keras_tl.experiment.folder as folder_module

    def no_space(path, mode="r", *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(folder_module, "open", no_space, raising=False)
    with pytest.raises(StoreError, match=rf"^Cannot write to {tmp_path / 'run.log'}: the "
                                         rf"disk is full \(\[Errno 28\]"):
        folder_module.append_run_log(str(tmp_path), "trial t1 failed\n")


def test_a_full_disk_when_taking_the_run_lock_is_said(tmp_path, monkeypatch):
    real_open = os.open

    def open_(path, *args, **kwargs):
        if str(path).endswith(LOCK_NAME):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(store_module.os, "open", open_)
    with pytest.raises(StoreError, match=r"^Cannot create the run lock .*: the disk is full"):
        prepare_run_folder(str(tmp_path / "run"), load_experiment(EXPERIMENT))


# I/O errors, read-only stores and folders, permissions


@pytest.mark.parametrize(
    "error, said",
    [
        (_sqlite_error("disk I/O error", "SQLITE_IOERR_READ"),
         "the disk reported an I/O error (disk I/O error). What was already saved is "
         "kept; check the disk, then run the same command again."),
        (_sqlite_error("attempt to write a readonly database", "SQLITE_READONLY"),
         "it is read-only (attempt to write a readonly database). Make it writable"),
        (_sqlite_error("database is locked", "SQLITE_BUSY"),
         "another process keeps the database locked (database is locked)."),
    ],
    ids=["io-error", "read-only", "busy"],
)
def test_a_storage_fault_on_a_valid_store_is_said_and_never_called_corrupt(
    tmp_path, inject, monkeypatch, error, said
):
    out = tmp_path / "run"
    store = prepare_run_folder(str(out), load_experiment(EXPERIMENT))
    store.put(_trial("t1"))
    store.close()

    inject(lambda sql: "sqlite_master" in sql or sql.startswith("INSERT"), error)
    for action in (
        lambda: prepare_run_folder(str(out), load_experiment(EXPERIMENT)),
        lambda: rebuild(str(out)),
        lambda: TrialStore.open_existing(str(out)),
    ):
        with pytest.raises(StoreError) as caught:
            action()
        message = _one_line(str(caught.value))
        assert message.startswith(f"Cannot open {out / STORE_NAME}: ")
        assert said in message
        assert "Delete" not in message and "not a keras-tl trial store" not in message
    monkeypatch.undo()
    assert _stored_fingerprint(out)["fingerprint"]  # The store was valid all along.


@needs_non_root
def test_a_read_only_store_file_is_said_and_can_still_be_reported(tmp_path):
    out = tmp_path / "run"
    store = prepare_run_folder(str(out), load_experiment(EXPERIMENT))
    store.put(_trial("t1"))
    store.close()
    path = out / STORE_NAME
    os.chmod(path, 0o444)
    try:
        store = prepare_run_folder(str(out), load_experiment(EXPERIMENT))
        try:
            with pytest.raises(StoreError) as caught:
                store.set_meta("context", {})
        finally:
            store.close()
        message = _one_line(str(caught.value))
        assert message.startswith(f"Cannot write to {path}: the file {path} is read-only (")
        assert "chmod -R u+w" in message and "Delete" not in message
        reopened = TrialStore.open_existing(str(out))  # Reading still works.
        try:
            assert reopened.statuses() == {"t1": "ok"}
        finally:
            reopened.close()
    finally:
        os.chmod(path, 0o644)


@needs_non_root
def test_a_read_only_run_folder_is_said(tmp_path):
    out = tmp_path / "run"
    store = prepare_run_folder(str(out), load_experiment(EXPERIMENT))
    store.put(_trial("t1"))
    store.close()
    os.chmod(out, 0o555)
    try:
        with pytest.raises(StoreError) as caught:
            prepare_run_folder(str(out), load_experiment(EXPERIMENT))
        message = _one_line(str(caught.value))
        assert message.startswith(f"Cannot create the run lock {out / LOCK_NAME}: the folder ")
        assert "is read-only" in message and "Delete" not in message
        # `keras-tl report`: SQLite may or may not read a WAL store in a read-only
        # folder; either way writing results.json cannot, and says why.
        with pytest.raises(StoreError) as caught:
            rebuild(str(out))
        message = _one_line(str(caught.value))
        assert f"the folder {out} is read-only" in message and "Delete" not in message
    finally:
        os.chmod(out, 0o755)
    assert _stored_fingerprint(out)["fingerprint"]


@needs_non_root
def test_an_unreadable_store_says_permission_denied(tmp_path):
    out = tmp_path / "run"
    prepare_run_folder(str(out), load_experiment(EXPERIMENT)).close()
    os.chmod(out / STORE_NAME, 0)
    try:
        with pytest.raises(StoreError) as caught:
            TrialStore.open_existing(str(out))
        message = _one_line(str(caught.value))
        assert message.startswith(f"Cannot open {out / STORE_NAME}: permission denied (")
        assert "Delete" not in message
    finally:
        os.chmod(out / STORE_NAME, 0o644)


def test_a_read_only_file_system_is_said(tmp_path, monkeypatch):
    real_open = os.open

    def open_(path, *args, **kwargs):
        if str(path).endswith(LOCK_NAME):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(store_module.os, "open", open_)
    with pytest.raises(StoreError) as caught:
        prepare_run_folder(str(tmp_path / "run"), load_experiment(EXPERIMENT))
    message = _one_line(str(caught.value))
    assert "the file system is read-only ([Errno 30] Read-only file system)" in message
    assert "Remount it read-write" in message


# Hand-edited rows


def _bound_store_with(path, records):
    store = TrialStore(str(path))
    store.bind(load_experiment(EXPERIMENT))
    for record in records:
        store.put(record)
    store.close()


def _edit_row(path, key, text):
    connection = sqlite3.connect(path)
    connection.execute("UPDATE trials SET record=? WHERE key=?", (text, key))
    connection.commit()
    connection.close()


@pytest.fixture
def edited_store(tmp_path):
    """A run folder whose store holds t1 (fine), t2 (invalid JSON), t3 (no arm)."""
    out = tmp_path / "run"
    out.mkdir()
    path = out / STORE_NAME
    records = [_trial("t1"), _trial("t2", arm="linear_probe"), _trial("t3", seed=1)]
    _bound_store_with(path, records)
    _edit_row(path, "t2", json.dumps(records[1])[:-20])
    without_arm = {k: v for k, v in records[2].items() if k != "arm"}
    _edit_row(path, "t3", json.dumps(without_arm))
    return out, records


def test_unreadable_rows_are_skipped_with_a_warning_naming_them(edited_store, caplog):
    out, records = edited_store
    store = TrialStore.open_existing(str(out))
    try:
        with caplog.at_level(logging.WARNING, logger="keras_tl.store"):
            assert store.records() == [records[0]]
            assert store.statuses() == {"t1": "ok"}
    finally:
        store.close()
    warnings = [r.getMessage() for r in caplog.records]
    path = out / STORE_NAME
    assert f"{path}: skipped the row of trial 't2': invalid JSON (" in warnings[0]
    assert warnings[0].endswith("That trial counts as not run.")
    assert warnings[1] == (f"{path}: skipped the row of trial 't3': missing arm. That "
                           f"trial counts as not run.")


def test_a_resumed_run_moves_unreadable_rows_aside_and_runs_their_trials_again(
    edited_store, caplog
):
    out, records = edited_store
    path = out / STORE_NAME
    connection = sqlite3.connect(path)
    edited = dict(connection.execute("SELECT key, record FROM trials"))
    connection.close()
    with caplog.at_level(logging.WARNING, logger="keras_tl.store"):
        store = prepare_run_folder(str(out), load_experiment(EXPERIMENT))
    try:
        assert store.statuses() == {"t1": "ok"}  # t2 and t3 are pending again.
        store.put(records[1])
        store.put(records[2])
        assert store.statuses() == {"t1": "ok", "t2": "ok", "t3": "ok"}
    finally:
        store.close()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert warnings[0].startswith(f"{path}: the row of trial 't2' cannot be read (invalid JSON")
    assert warnings[1] == (f"{path}: the row of trial 't3' cannot be read (missing arm); "
                           f"moved it to the 'quarantine' table, and the trial runs again.")
    # Nothing is lost: the edited text is kept, with why it was moved.
    connection = sqlite3.connect(path)
    moved = {key: (text, reason) for key, text, reason in
             connection.execute("SELECT key, record, reason FROM quarantine")}
    connection.close()
    assert {key: text for key, (text, _) in moved.items()} == {
        "t2": edited["t2"], "t3": edited["t3"]}
    assert moved["t3"][1] == "missing arm"


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda r: {**r, "arm": "scrach"},
         "arm 'scrach' is not one of the experiment's ['scratch', 'linear_probe']"),
        (lambda r: {**r, "requested_train_size": 21},
         "requested_train_size 21 is not one of the experiment's [20]"),
        (lambda r: {**r, "seed": "0"}, "seed '0' is not an integer"),
        (lambda r: {**r, "freeze_depth": "2"}, "freeze_depth '2' is not an integer or null"),
        (lambda r: {**r, "key": "t9"}, "its record's key 't9' is not the row's key"),
        (lambda r: {**r, "status": "failed"},
         "its record's status 'failed' is not the row's 'ok'"),
        (lambda r: {**r, "test": None}, "a finished trial without its test metrics"),
        (lambda r: [r], "expected a JSON object, found list"),
    ],
    ids=["arm", "train-size", "seed", "depth", "key", "status", "test", "not-object"],
)
def test_each_kind_of_hand_edit_is_named(tmp_path, caplog, edit, problem):
    path = tmp_path / STORE_NAME
    _bound_store_with(path, [_trial("t1")])
    _edit_row(path, "t1", json.dumps(edit(_trial("t1"))))
    store = TrialStore.open_existing(str(tmp_path))
    try:
        with caplog.at_level(logging.WARNING, logger="keras_tl.store"):
            assert store.records() == []
    finally:
        store.close()
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: skipped the row of trial 't1': {problem}. That trial counts as not run."
    ]


def test_a_store_not_bound_to_an_experiment_skips_only_rows_that_are_not_json(
    tmp_path, caplog
):
    path = tmp_path / STORE_NAME
    store = TrialStore(str(path))
    store.put({"key": "a1", "status": "ok"})
    store.put({"key": "a2", "status": "ok"})
    _edit_row(path, "a2", "{not json")
    with caplog.at_level(logging.WARNING, logger="keras_tl.store"):
        assert store.records() == [{"key": "a1", "status": "ok"}]
    store.close()
    assert "skipped the row of trial 'a2': invalid JSON" in caplog.records[0].getMessage()


def test_a_hand_edited_meta_entry_is_said_or_ignored_when_a_run_rewrites_it(
    tmp_path, caplog
):
    path = tmp_path / STORE_NAME
    _bound_store_with(path, [_trial("t1")])
    connection = sqlite3.connect(path)
    connection.execute("INSERT OR REPLACE INTO meta VALUES ('context', '{broken')")
    connection.execute("UPDATE meta SET value='{broken' WHERE key='experiment'")
    connection.commit()
    connection.close()
    store = TrialStore(str(path))
    try:
        with caplog.at_level(logging.WARNING, logger="keras_tl.store"):
            assert store.get_meta("context") is None
        assert "ignored its stored context, which is not valid JSON" in caplog.text
        with pytest.raises(StoreError, match=r"its stored 'experiment' is not valid JSON"):
            store.get_meta("experiment")
    finally:
        store.close()


# Non-finite numbers in results.json


def _strict_json(text):
    def refuse(constant):
        raise AssertionError(f"results.json holds {constant}")

    return json.loads(text, parse_constant=refuse)


def test_results_json_never_holds_nan_or_infinity(tmp_path):
    results = Results(
        config={"name": "x"}, context={"ratio": math.inf},
        provenance={}, trials=[{"key": "a", "test": {"loss": math.nan, "accuracy": 0.5}}],
        summary={"gains": [{"mean": -math.inf, "ci": [math.nan, 1.0]}], "n": 2},
    )
    results.write(str(tmp_path))
    data = _strict_json((tmp_path / "results.json").read_text())
    assert data["trials"][0]["test"] == {"loss": None, "accuracy": 0.5}
    assert data["summary"] == {"gains": [{"mean": None, "ci": [None, 1.0]}], "n": 2}
    assert data["context"] == {"ratio": None}
    assert Results.from_folder(str(tmp_path)).trials[0]["test"]["loss"] is None
    assert sorted(os.listdir(tmp_path)) == ["results.json", "trials.csv"]


def test_a_results_json_that_cannot_be_read_says_how_to_rebuild_it(tmp_path):
    (tmp_path / "results.json").write_text('{"config": {')
    with pytest.raises(StoreError) as caught:
        Results.from_folder(str(tmp_path))
    message = _one_line(str(caught.value))
    assert message.startswith(f"{tmp_path / 'results.json'} cannot be read as keras-tl "
                              f"results (JSONDecodeError: ")
    assert message.endswith(f"Rebuild it from the trial store with `keras-tl report {tmp_path}`.")


# Corrupt cached source models


@pytest.fixture(scope="module")
def trained_source(tmp_path_factory):
    """A source trained once and cached: its plan, cache folder, file and weights."""
    cache = tmp_path_factory.mktemp("cache")
    the_plan = plan(load_experiment(EXPERIMENT))
    model, _ = SourceModels(the_plan, str(cache)).trained(0)
    (path,) = [cache / name for name in os.listdir(cache)]
    return {"plan": the_plan, "path": path, "bytes": path.read_bytes(),
            "weights": [np.array(w) for w in model.get_weights()]}


@pytest.mark.slow
@pytest.mark.parametrize(
    "corrupt",
    [lambda good: b"", lambda good: b"garbage" * 100, lambda good: good[: len(good) // 2]],
    ids=["empty", "garbage", "truncated"],
)
def test_a_corrupt_cached_source_is_deleted_and_trained_again(
    trained_source, tmp_path, caplog, corrupt
):
    cache = tmp_path / "cache"
    cache.mkdir()
    path = cache / trained_source["path"].name
    path.write_bytes(corrupt(trained_source["bytes"]))

    with caplog.at_level(logging.WARNING, logger="keras_tl.experiment.sources"):
        model, metrics = SourceModels(trained_source["plan"], str(cache)).trained(0)
    assert metrics is not None
    (warning,) = [r.getMessage() for r in caplog.records]
    assert warning.startswith(f"The cached source model {path} cannot be loaded (")
    assert warning.endswith("deleting it and training source 'digits' (seed 0) again.")
    # Retrained to the same weights, and cached again in a loadable file.
    for got, expected in zip(model.get_weights(), trained_source["weights"]):
        np.testing.assert_allclose(np.array(got), expected, rtol=1e-5, atol=1e-6)
    assert os.listdir(cache) == [path.name]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="keras_tl.experiment.sources"):
        reloaded, _ = SourceModels(trained_source["plan"], str(cache)).trained(0)
    assert caplog.records == []
    for got, expected in zip(reloaded.get_weights(), trained_source["weights"]):
        np.testing.assert_array_equal(np.array(got), np.array(expected))


@pytest.mark.slow
def test_a_source_that_cannot_be_cached_still_serves_its_trials(
    trained_source, tmp_path, caplog, monkeypatch
):
    def no_space(self, path, *args, **kwargs):
        with open(path, "wb") as file:  # A partial file, then the disk is full.
            file.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save_weights", no_space)
    cache = tmp_path / "cache"
    with caplog.at_level(logging.WARNING, logger="keras_tl.experiment.sources"):
        model, _ = SourceModels(trained_source["plan"], str(cache)).trained(0)
    assert model is not None
    assert "Could not cache the source model" in caplog.text
    assert "No space left on device" in caplog.text
    assert os.listdir(cache) == []  # No partial file left to fail later.


# End to end: a finished run, then each fault


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    results = keras_tl.evaluate(EXPERIMENT, out=str(out))
    keras.backend.clear_session()
    return {"out": out, "results": results}


@pytest.fixture
def run_copy(finished_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run["out"], out)
    return out


def _invoke(*args):
    """Runs the CLI in this process: (exit code, stderr)."""
    result = CliRunner().invoke(cli, [str(a) for a in args], prog_name="keras-tl")
    return result.exit_code, result.stderr


@pytest.mark.slow
def test_report_skips_a_hand_edited_row_and_evaluate_runs_that_trial_again(
    finished_run, run_copy, caplog
):
    path = run_copy / STORE_NAME
    connection = sqlite3.connect(path)
    key, text = connection.execute("SELECT key, record FROM trials ORDER BY key").fetchone()
    connection.close()
    _edit_row(path, key, text[:-5])

    with caplog.at_level(logging.WARNING, logger="keras_tl.store"):
        code, output = _invoke("report", run_copy)
    assert code == 0, output
    assert f"skipped the row of trial {key!r}: invalid JSON" in caplog.text

    rerun = []
    results = keras_tl.evaluate(
        EXPERIMENT, out=str(run_copy), on_trial=lambda done, total, r: rerun.append(r["key"])
    )
    assert rerun == [key]
    assert results.to_dict()["summary"].keys() == finished_run["results"].summary.keys()
    assert sorted(t["key"] for t in results.trials) == sorted(
        t["key"] for t in finished_run["results"].trials)
    assert all(t["status"] == "ok" for t in results.trials)


@pytest.mark.slow
def test_non_finite_numbers_in_stored_trials_never_block_the_report(run_copy, caplog):
    path = run_copy / STORE_NAME
    connection = sqlite3.connect(path)
    rows = connection.execute("SELECT key, record FROM trials ORDER BY key").fetchall()
    connection.close()
    for key, text in rows:
        record = json.loads(text)
        record["fit_time"], record["wall_time"] = math.inf, math.nan
        _edit_row(path, key, json.dumps(record))  # json writes NaN and Infinity.
    code, stderr = _invoke("report", run_copy)
    assert code == 0, stderr
    data = _strict_json((run_copy / "results.json").read_text())
    assert {(t["fit_time"], t["wall_time"]) for t in data["trials"]} == {(None, None)}
    assert len(Results.from_folder(str(run_copy)).trials) == len(rows)

    # A finished trial with a non-finite test metric (trials never store one: such a
    # trial fails) was edited by hand: skipped with a warning, not fatal.
    key, text = rows[0]
    record = json.loads(text)
    record["test"]["loss"] = math.nan
    _edit_row(path, key, json.dumps(record))
    with caplog.at_level(logging.WARNING, logger="keras_tl.store"):
        code, stderr = _invoke("report", run_copy)
    assert code == 0, stderr
    assert f"skipped the row of trial {key!r}: non-finite test loss (nan)" in caplog.text
    data = _strict_json((run_copy / "results.json").read_text())
    assert key not in {t["key"] for t in data["trials"]}


@pytest.mark.slow
def test_report_on_a_full_disk_is_one_line_and_exit_2(run_copy, monkeypatch):
    before = (run_copy / "results.json").read_bytes()

    def no_space(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "fsync", no_space)
    code, output = _invoke("report", run_copy)
    assert code == 2
    assert output == (
        f"Error: Cannot write {run_copy / 'results.json'}: the disk is full ([Errno 28] "
        f"No space left on device). What was already saved is kept; free some space, "
        f"then run the same command again to resume.\n"
    )
    assert (run_copy / "results.json").read_bytes() == before


@pytest.mark.slow
def test_a_disk_full_in_the_middle_of_a_run_stops_it_with_one_line_and_the_rerun_resumes(
    tmp_path, inject, monkeypatch
):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(EXPERIMENT))
    out = tmp_path / "run"
    puts = []

    def second_put(sql):
        if sql.startswith("INSERT OR REPLACE INTO trials"):
            puts.append(sql)
            return len(puts) == 2
        return False

    inject(second_put, DISK_FULL)
    code, output = _invoke("evaluate", config, "--out", out, "--quiet",
                           "--backend", keras.config.backend())
    assert code == 2, output
    assert output.splitlines()[-1] == (
        f"Error: Cannot write to {out / STORE_NAME}: the disk is full (database or disk "
        f"is full). What was already saved is kept; free some space, then run the same "
        f"command again to resume."
    )
    assert "Traceback" not in output
    monkeypatch.undo()
    store = TrialStore.open_existing(str(out))
    try:
        assert len(store.statuses()) == 1  # The first trial is kept.
    finally:
        store.close()

    rerun = []
    results = keras_tl.evaluate(str(config), out=str(out),
                                on_trial=lambda done, total, r: rerun.append(r["key"]))
    assert len(rerun) == 1
    assert [t["status"] for t in results.trials] == ["ok", "ok"]


@pytest.mark.slow
def test_a_run_whose_cached_source_is_corrupt_retrains_it_and_every_trial_succeeds(
    tmp_path, caplog
):
    out = tmp_path / "run"
    experiment = load_experiment(EXPERIMENT)
    prepare_run_folder(str(out), experiment).close()  # A run started, then stopped...
    sources = SourceModels(plan(experiment), str(out / "cache"))
    name = f"source-{sources._spec_hash(sources._source(None))}-seed0.weights.h5"
    (out / "cache").mkdir()
    (out / "cache" / name).write_bytes(b"")  # ... while its source was being saved.

    with caplog.at_level(logging.WARNING, logger="keras_tl.experiment.sources"):
        results = keras_tl.evaluate(EXPERIMENT, out=str(out))
    assert [t["status"] for t in results.trials] == ["ok", "ok"]
    assert "cannot be loaded" in caplog.text
    assert (out / "cache" / name).stat().st_size > 0


# TensorFlow's start-up notices on torch and jax

NOTICES = ("oneDNN", "absl::InitializeLog", "TF_ENABLE_ONEDNN_OPTS")
SEED_AFTER = """
import sys
{imports}
import keras
keras.utils.set_random_seed(0)  # Imports TensorFlow when it is installed.
assert "tensorflow" in sys.modules
"""


def _python(code, backend, **environment):
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    env.update(KERAS_BACKEND=backend, **environment)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300)


def _other_backend():
    backend = keras.config.backend()
    if backend == "tensorflow":
        pytest.skip("TensorFlow's own notices are kept on the tensorflow backend")
    if installed_version("tensorflow") is None:
        pytest.skip("TensorFlow is not installed: there are no notices to mute")
    return backend


def test_tensorflow_start_up_notices_are_muted_on_torch_and_jax():
    backend = _other_backend()
    control = _python(SEED_AFTER.format(imports=""), backend)
    assert control.returncode == 0, control.stderr
    if not any(notice in control.stderr for notice in NOTICES):
        pytest.skip("this TensorFlow prints no start-up notice to mute")

    muted = _python(SEED_AFTER.format(imports="import keras_tl.backend"), backend)
    assert muted.returncode == 0, muted.stderr
    assert not any(notice in muted.stderr for notice in NOTICES), muted.stderr


def test_planning_an_experiment_through_evaluates_imports_prints_no_notice(tmp_path):
    # The library path: `keras_tl.experiment.run` (keras first), then the plan
    # builds networks, which seeds (and so imports) TensorFlow.
    backend = _other_backend()
    code = (
        "import sys, json\n"
        "import keras_tl.experiment.run\n"
        "from keras_tl.config.schema import load_experiment\n"
        "from keras_tl.experiment.plan import plan\n"
        f"plan(load_experiment(json.loads({json.dumps(json.dumps(EXPERIMENT))})))\n"
        "assert 'tensorflow' in sys.modules\n"
    )
    done = _python(code, backend, KERAS_HOME=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert not any(notice in done.stderr for notice in NOTICES), done.stderr


def test_the_users_own_tensorflow_settings_are_kept():
    code = ("import os, keras_tl.backend\n"
            "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'), "
            "os.environ.get('TF_ENABLE_ONEDNN_OPTS'))")
    kept = _python(code, "jax", TF_CPP_MIN_LOG_LEVEL="0", TF_ENABLE_ONEDNN_OPTS="1")
    assert kept.stdout.split() == ["0", "1"]
    set_ = _python(code, "jax")
    assert set_.stdout.split() == ["3", "0"]
    on_tensorflow = _python(code, "tensorflow")
    assert on_tensorflow.stdout.split() == ["None", "None"]


@pytest.mark.skipif(
    not any(importlib.util.find_spec(name) for name in ("jax", "torch")),
    reason="needs jax or torch installed (the py311-tensorflow tox env has neither)",
)
def test_tensorflow_is_muted_when_another_backend_is_chosen_later():
    # Chosen later by the CLI (`--backend jax` with KERAS_BACKEND unset).
    other = "jax" if importlib.util.find_spec("jax") else "torch"
    chosen = _python(f"import keras_tl.backend as b, os\nb.require({other!r})\n"
                     "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))", "tensorflow")
    assert chosen.stdout.split() == ["0"], chosen.stderr
