"""The run folder: its lock, its trial store, the data check on resume."""

import os
import shutil

import keras_tl.backend  # noqa: F401  Mutes TensorFlow's start-up notices on torch / jax.
from keras_tl.errors import StoreError
from keras_tl.store import LOCK_NAME, STORE_NAME, RunLock, TrialStore, storage_errors


def _data_fingerprints(context):
    return {
        "target": context["target_task"]["fingerprint"],
        **{s["name"]: s["task"]["fingerprint"] for s in context["sources"] if s["task"]},
    }


def check_same_data(store, context, out):
    """Refuses to resume a run whose task data changed under the same names."""
    stored = store.get_meta("context")
    if stored and _data_fingerprints(stored) != _data_fingerprints(context):
        store.close()
        raise StoreError(
            f"The data of a task in {out!r} changed since the run started (same task "
            f"names, different contents). Use a new --out folder, or --overwrite."
        )


def append_run_log(out, text):
    """Appends `text` to `OUT/run.log`; a full disk or a read-only folder raises one
    clear `StoreError` (the trial's record is already in the store)."""
    path = os.path.join(out, "run.log")
    with storage_errors(path, "write to"), open(path, "a") as log:
        log.write(text)


def _entries(out):
    """What `out` holds, a stale lock file left by a killed run aside."""
    with storage_errors(out, "read the folder"):
        return [name for name in os.listdir(out) if name != LOCK_NAME]


def _refuse_unless_resumable(out):
    if os.path.isdir(out) and _entries(out) and not os.path.isfile(os.path.join(out, STORE_NAME)):
        raise StoreError(
            f"Output folder {out!r} exists and is not empty. Use a new --out "
            f"folder, or --overwrite to replace it."
        )


def _clear(out):
    """Deletes everything in `out` but its lock file (which this process holds)."""
    for name in _entries(out):
        path = os.path.join(out, name)
        with storage_errors(path, "delete"):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)


def prepare_run_folder(out, experiment, overwrite=False):
    """Creates or reopens a run folder for `experiment`, locks it, and returns its store.

    A folder holding a store of the same experiment is resumed; a non-empty folder
    with anything else is refused unless `overwrite`. The folder is locked
    (`keras_tl.store.RunLock`) before anything in it is read or deleted, so a second
    run on it (with `overwrite` too) fails at once with `RunLockedError` while the
    first one lives; `store.close()` releases the lock. Rows of the store that cannot
    be read are moved aside with a warning and their trials run again.

    Raises:
        StoreError: the folder is refused, locked by another run, or cannot be
            written (disk full, read-only, permission denied).
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise StoreError(f"--out {out!r} is a file. Expected a folder path.")
    if not overwrite:
        _refuse_unless_resumable(out)  # Before the lock file: a refused folder is left as it was.
    with storage_errors(out, "create the run folder"):
        os.makedirs(out, exist_ok=True)
    lock = RunLock.acquire(out)
    try:
        if overwrite:
            _clear(out)
        else:
            _refuse_unless_resumable(out)  # Again, now that no other run can change it.
        store = TrialStore(os.path.join(out, STORE_NAME), check_records=True)
    except BaseException:
        lock.release()
        raise
    store.lock = lock  # Released by store.close().
    try:
        store.bind(experiment)
        store.quarantine_bad_rows()
    except BaseException:
        store.close()
        raise
    return store
