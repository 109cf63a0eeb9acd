"""The run folder: its trial store, the data check on resume."""

import os
import shutil

from keras_tl.errors import StoreError
from keras_tl.store import STORE_NAME, TrialStore


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


def prepare_run_folder(out, experiment, overwrite=False):
    """Creates or reopens a run folder for `experiment` and returns its store.

    A folder holding a store of the same experiment is resumed; a non-empty folder
    with anything else is refused unless `overwrite`.
    """
    store_path = os.path.join(out, STORE_NAME)
    if os.path.isdir(out) and os.listdir(out):
        if overwrite:
            shutil.rmtree(out)
        elif os.path.isfile(store_path):
            return _bound_store(store_path, experiment)
        else:
            raise StoreError(
                f"Output folder {out!r} exists and is not empty. Use a new --out "
                f"folder, or --overwrite to replace it."
            )
    elif os.path.exists(out) and not os.path.isdir(out):
        raise StoreError(f"--out {out!r} is a file. Expected a folder path.")
    os.makedirs(out, exist_ok=True)
    return _bound_store(store_path, experiment)


def _bound_store(path, experiment):
    store = TrialStore(path)
    try:
        store.bind(experiment)
    except BaseException:
        store.close()
        raise
    return store
