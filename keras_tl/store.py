"""The SQLite trial store of a run folder: atomic, resumable.

`trials.sqlite` (WAL mode) holds the resolved experiment and one row per finished
trial, written in one transaction when the trial ends. A run folder belongs to one
experiment: opening it for another is refused, so results never mix.
"""

import json
import os
import sqlite3
import tempfile
import time

from keras_tl.errors import StoreError

STORE_NAME = "trials.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    record TEXT NOT NULL,
    finished_at REAL NOT NULL
);
"""


class TrialStore:
    """Finished trials of one experiment, in `RUN_DIR/trials.sqlite`.

    Args:
        path: str. The SQLite file.

    Example:

    >>> store = TrialStore.create("runs/parity", experiment)
    >>> store.put(record)
    >>> store.records()
    """

    def __init__(self, path):
        self.path = path
        self._connection = None
        try:
            self._connection = sqlite3.connect(path, timeout=60, isolation_level=None)
            tables = {
                row[0]
                for row in self._connection.execute(
                    "SELECT name FROM sqlite_master WHERE type='table'"
                )
            }
        except sqlite3.DatabaseError as error:
            self.close()
            raise StoreError(
                f"{path} is not a keras-tl trial store ({error}). Delete it, or run "
                f"in another folder."
            ) from None
        if tables and not {"meta", "trials"} <= tables:
            self.close()
            raise StoreError(
                f"{path} is an SQLite file but not a keras-tl trial store (tables: "
                f"{sorted(tables)}). Delete it, or run in another folder."
            )
        # WAL only after the tables were checked: a refused file is left as it was.
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.executescript(_SCHEMA)

    @classmethod
    def open_existing(cls, folder):
        """Opens the store of a run folder; raises `StoreError` when there is none."""
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
        store = cls(path)
        if store.get_meta("experiment") is None:
            store.close()
            raise StoreError(f"{path} holds no experiment; it was never started.")
        return store

    def get_meta(self, key):
        row = self._connection.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key, value):
        with self._connection:
            self._connection.execute("BEGIN IMMEDIATE")
            self._connection.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                (key, json.dumps(value, sort_keys=True)),
            )

    def bind(self, experiment):
        """Claims the store for `experiment`, or checks that it already belongs to it."""
        stored = self.get_meta("fingerprint")
        if stored is None:
            self.set_meta("schema_version", SCHEMA_VERSION)
            self.set_meta("experiment", experiment.to_dict())
            self.set_meta("fingerprint", experiment.fingerprint())
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
        with self._connection:
            self._connection.execute("BEGIN IMMEDIATE")
            self._connection.execute(
                "INSERT OR REPLACE INTO trials (key, status, record, finished_at) "
                "VALUES (?, ?, ?, ?)",
                (record["key"], record["status"], json.dumps(record, sort_keys=True), time.time()),
            )

    def statuses(self):
        """Trial key -> status of every stored trial."""
        return dict(self._connection.execute("SELECT key, status FROM trials"))

    def records(self):
        """Every stored trial record, in the order they finished."""
        rows = self._connection.execute("SELECT record FROM trials ORDER BY finished_at, key")
        return [json.loads(row[0]) for row in rows]

    def close(self):
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path, text):
    """Writes `text` to `path` through a temporary file and a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(handle, "w", newline="") as file:
            file.write(text)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp creates files readable by owner only
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
