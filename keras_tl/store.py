"""The SQLite trial store of a run folder: atomic, resumable, locked while a run uses it.

`trials.sqlite` (WAL mode) holds the resolved experiment and one row per finished
trial, written in one transaction when the trial ends. A run folder belongs to one
experiment: opening it for another is refused, so results never mix.

Storage faults become one `StoreError` that says what happened
(`keras_tl.storage_faults`); a valid store is never called corrupt. A store whose
creation was interrupted is completed when it is next opened. A hand-edited row that
cannot be read is skipped with a warning (and, when a run resumes, moved to the
`quarantine` table so that its trial runs again). The run lock (`RunLock`) lives in
`keras_tl.runlock`, atomic files and `json_text` in `keras_tl.atomic`; both are
re-exported here.
"""

import contextlib
import json
import logging
import math
import os
import sqlite3
import time

from keras_tl.atomic import json_text, write_atomic
from keras_tl.errors import StoreError
from keras_tl.runlock import LOCK_NAME, RunLock, RunLockedError
from keras_tl.storage_faults import storage_error, storage_errors

__all__ = [
    "LOCK_NAME",
    "STORE_NAME",
    "SCHEMA_VERSION",
    "RunLock",
    "RunLockedError",
    "TrialStore",
    "json_text",
    "storage_error",
    "storage_errors",
    "write_atomic",
]

STORE_NAME = "trials.sqlite"
SCHEMA_VERSION = 1

logger = logging.getLogger(__name__)

# Table -> its columns, in order. `quarantine` is made only when a row is moved there.
_TABLES = {
    "meta": ("key", "value"),
    "trials": ("key", "status", "record", "finished_at"),
    "quarantine": ("key", "record", "finished_at", "reason", "quarantined_at"),
}
_CREATE = {
    "meta": "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "trials": (
        "CREATE TABLE IF NOT EXISTS trials (key TEXT PRIMARY KEY, status TEXT NOT NULL, "
        "record TEXT NOT NULL, finished_at REAL NOT NULL)"
    ),
    "quarantine": (
        "CREATE TABLE IF NOT EXISTS quarantine (key TEXT, record TEXT, finished_at REAL, "
        "reason TEXT, quarantined_at REAL)"
    ),
}
_REQUIRED = ("key", "status", "arm", "recipe", "freeze_depth", "requested_train_size", "seed")
# Meta entries every run writes again: a damaged one is ignored, not fatal.
_REWRITTEN_META = ("context", "provenance")


# Rows


def _row_problem(key, status, text, experiment):
    """Why a stored row cannot be used as a trial record, or None when it can.

    Returns:
        `(record_or_None, problem_or_None)`.
    """
    try:
        record = json.loads(text)
    except (TypeError, ValueError) as error:
        return None, f"invalid JSON ({error})"
    if not isinstance(record, dict):
        return None, f"expected a JSON object, found {type(record).__name__}"
    if record.get("key") != key:
        return None, f"its record's key {record.get('key')!r} is not the row's key"
    if record.get("status") != status:
        return None, f"its record's status {record.get('status')!r} is not the row's {status!r}"
    if experiment is None:
        return record, None
    missing = [name for name in _REQUIRED if name not in record]
    if missing:
        return None, f"missing {', '.join(missing)}"
    if status not in ("ok", "failed"):
        return None, f"status {status!r} is neither 'ok' nor 'failed'"
    arms = experiment.get("arms") or []
    if arms and record["arm"] not in arms:
        return None, f"arm {record['arm']!r} is not one of the experiment's {arms}"
    sizes = (experiment.get("target") or {}).get("train_sizes") or []
    if sizes and record["requested_train_size"] not in sizes:
        return None, (f"requested_train_size {record['requested_train_size']!r} is not one "
                      f"of the experiment's {sizes}")
    if not isinstance(record["seed"], int) or isinstance(record["seed"], bool):
        return None, f"seed {record['seed']!r} is not an integer"
    depth = record["freeze_depth"]
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool)):
        return None, f"freeze_depth {depth!r} is not an integer or null"
    if status == "ok" and not isinstance(record.get("test"), dict):
        return None, "a finished trial without its test metrics"
    if status == "ok":  # A trial with a non-finite metric fails; it never finishes so.
        for split in ("val", "test"):
            metrics = record.get(split)
            for name, value in (metrics.items() if isinstance(metrics, dict) else ()):
                if isinstance(value, float) and not math.isfinite(value):
                    return None, f"non-finite {split} {name} ({value})"
    return record, None


class TrialStore:
    """Finished trials of one experiment, in `RUN_DIR/trials.sqlite`.

    Args:
        path: str. The SQLite file.
        check_records: bool. Check every row against the stored experiment (the
            fields a trial record has, its arm and train size) and skip, with a
            warning, those that do not fit; rows that are not valid JSON, or whose
            key or status disagree with their record, are always skipped.

    Example:

    >>> store = TrialStore("runs/parity/trials.sqlite")
    >>> store.bind(experiment)
    >>> store.put(record)
    >>> store.records()
    """

    def __init__(self, path, check_records=False):
        self.path = path
        self.check_records = check_records
        self.lock = None  # A `RunLock` released by `close()`.
        self._connection = None
        try:
            with storage_errors(path, "open"):
                self._connection = sqlite3.connect(path, timeout=60, isolation_level=None)
                tables = self._tables()
            self._check_ours(tables)
            # WAL only after the tables were checked: a refused file is left as it was.
            with storage_errors(path, "set up"):
                if self._connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self._connection.execute("PRAGMA journal_mode=WAL")
                missing = [name for name in ("meta", "trials") if name not in tables]
                if missing:  # A new store, or one whose creation was interrupted.
                    with self._transaction():
                        for name in missing:
                            self._connection.execute(_CREATE[name])
        except BaseException:
            self.close()
            raise

    def _tables(self):
        """Table name -> its column names."""
        names = [row[0] for row in self._connection.execute(
            "SELECT name FROM sqlite_master WHERE type='table'"
        )]
        return {
            name: tuple(row[1] for row in self._connection.execute(
                f"PRAGMA table_info({json.dumps(name)})"
            ))
            for name in names
        }

    def _check_ours(self, tables):
        """Refuses an SQLite file that is not a (possibly half-created) trial store."""
        user_tables = {name for name in tables if not name.startswith("sqlite_")}
        ours = {name for name in user_tables if tables[name] == _TABLES.get(name)}
        if ours == user_tables or {"meta", "trials"} <= user_tables:
            return
        raise StoreError(
            f"{self.path} is an SQLite file but not a keras-tl trial store (tables: "
            f"{sorted(user_tables)}). Delete it, or run in another folder."
        )

    @contextlib.contextmanager
    def _transaction(self):
        self._connection.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._connection.execute("COMMIT")
        except BaseException:
            if self._connection.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._connection.execute("ROLLBACK")
            raise

    @classmethod
    def open_existing(cls, folder):
        """Opens the store of a run folder; raises `StoreError` when there is none.

        Its rows are checked against the stored experiment (`check_records`).
        """
        path = os.path.join(folder, STORE_NAME)
        if not os.path.isdir(folder):
            raise StoreError(
                f"Run folder {folder!r} does not exist. Expected a folder written by "
                f"`keras-tl evaluate --out {folder}`."
            )
        if not os.path.isfile(path):
            raise StoreError(
                f"{folder!r} holds no {STORE_NAME}. Expected a run folder written by "
                f"`keras-tl evaluate --out {folder}`."
            )
        store = cls(path, check_records=True)
        try:
            if store.get_meta("experiment") is None:
                raise StoreError(f"{path} holds no experiment; it was never started.")
        except BaseException:
            store.close()
            raise
        return store

    def get_meta(self, key):
        with storage_errors(self.path, "read"):
            row = self._connection.execute(
                "SELECT value FROM meta WHERE key=?", (key,)
            ).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except (TypeError, ValueError) as error:
            if key in _REWRITTEN_META:
                logger.warning("%s: ignored its stored %s, which is not valid JSON (%s); "
                               "the next run writes it again.", self.path, key, error)
                return None
            raise StoreError(
                f"{self.path}: its stored {key!r} is not valid JSON ({error}); the store "
                f"was edited by hand. Restore that entry, or start again in a new --out "
                f"folder."
            ) from None

    def set_meta(self, key, value):
        with storage_errors(self.path, "write to"), self._transaction():
            self._set_meta(key, value)

    def _set_meta(self, key, value):
        self._connection.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            (key, json.dumps(value, sort_keys=True)),
        )

    def bind(self, experiment):
        """Claims the store for `experiment`, or checks that it already belongs to it."""
        stored = self.get_meta("fingerprint")
        if stored is None:
            with storage_errors(self.path, "write to"), self._transaction():
                self._set_meta("schema_version", SCHEMA_VERSION)
                self._set_meta("experiment", experiment.to_dict())
                self._set_meta("fingerprint", experiment.fingerprint())
        elif stored != experiment.fingerprint():
            stored_name = (self.get_meta("experiment") or {}).get("name")
            raise StoreError(
                f"{os.path.dirname(self.path) or '.'} holds results of another "
                f"experiment ({stored_name!r}, {stored}); this one is "
                f"{experiment.name!r} ({experiment.fingerprint()}). Use a new --out "
                f"folder, or --overwrite to replace it."
            )

    def put(self, record):
        """Writes one finished trial (its `key`, `status` and all fields) atomically."""
        text = json.dumps(record, sort_keys=True)
        with storage_errors(self.path, "write to"), self._transaction():
            self._connection.execute(
                "INSERT OR REPLACE INTO trials (key, status, record, finished_at) "
                "VALUES (?, ?, ?, ?)",
                (record["key"], record["status"], text, time.time()),
            )

    def _rows(self):
        """`(key, status, record text, finished_at)` of every row, in finishing order."""
        with storage_errors(self.path, "read"):
            return self._connection.execute(
                "SELECT key, status, record, finished_at FROM trials ORDER BY finished_at, key"
            ).fetchall()

    def _checked(self, warn=True):
        """`(usable records, [(row, problem)])` of the stored rows."""
        experiment = None
        if self.check_records:
            experiment = self.get_meta("experiment")
        usable, bad = [], []
        for row in self._rows():
            record, problem = _row_problem(row[0], row[1], row[2], experiment)
            if problem:
                bad.append((row, problem))
                if warn:
                    logger.warning("%s: skipped the row of trial %r: %s. That trial counts "
                                   "as not run.", self.path, row[0], problem)
            else:
                usable.append(record)
        return usable, bad

    def statuses(self):
        """Trial key -> status of every usable stored trial."""
        return {record["key"]: record["status"] for record in self._checked()[0]}

    def records(self):
        """Every usable stored trial record, in the order they finished."""
        return self._checked()[0]

    def quarantine_bad_rows(self):
        """Moves every row that cannot be used into the `quarantine` table, so that its
        trial runs again; logs a warning naming each. Returns the keys moved."""
        _, bad = self._checked(warn=False)
        if not bad:
            return []
        with storage_errors(self.path, "write to"), self._transaction():
            self._connection.execute(_CREATE["quarantine"])
            for (key, _, text, finished_at), problem in bad:
                self._connection.execute(
                    "INSERT INTO quarantine (key, record, finished_at, reason, "
                    "quarantined_at) VALUES (?, ?, ?, ?, ?)",
                    (key, text, finished_at, problem, time.time()),
                )
                self._connection.execute("DELETE FROM trials WHERE key=?", (key,))
        for (key, *_), problem in bad:
            logger.warning("%s: the row of trial %r cannot be read (%s); moved it to the "
                           "'quarantine' table, and the trial runs again.", self.path, key,
                           problem)
        return [key for (key, *_), _ in bad]

    def close(self):
        try:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
        finally:
            if self.lock is not None:
                self.lock.release()
                self.lock = None
