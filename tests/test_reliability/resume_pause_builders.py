"""A test-only network builder that stops a run at a known point (test_resume.py).

`mlp_pausing` builds keras-tl's `mlp`. It changes nothing unless its process was
started with `KERAS_TL_TEST_PAUSE` set to a JSON object:

* `store`: the run's `trials.sqlite`;
* `after`: N, a number of stored trials;
* `ready`: a file to create when it pauses;
* `limit`: seconds to wait before giving up (guards against an orphaned process).

Then the first build that finds at least N trials in the store creates `ready`
and waits there, never returning, until the process is killed or interrupted
(Ctrl-C raises `KeyboardInterrupt` out of the wait). The serial executor stores a
trial before it starts the next one, and every trial builds a network first, so
a process that has created `ready` holds exactly N stored trials and is inside
the next one, which it will never finish: a signal sent after `ready` exists
lands at that point, whatever the speed of the machine.

Only the environment switches the pause on, so the experiment (and every trial's
key and numbers) is the same with and without it.
"""

import json
import os
import sqlite3
import time

from keras_tl.networks.network import mlp

PAUSE_VARIABLE = "KERAS_TL_TEST_PAUSE"


def _stored_trials(store):
    """Trials in the store, or 0 while it does not exist or has no table yet."""
    try:
        connection = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return 0
    try:
        return connection.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        connection.close()


def _pause(settings, stored):
    temporary = settings["ready"] + ".tmp"
    with open(temporary, "w") as file:
        file.write(f"{stored}\n")
    os.replace(temporary, settings["ready"])
    deadline = time.monotonic() + settings["limit"]
    while time.monotonic() < deadline:
        time.sleep(0.1)
    os._exit(3)  # No one stopped this process: it would otherwise hang forever.


def mlp_pausing(input_shape, num_outputs):
    """keras-tl's `mlp`; pauses the process as `KERAS_TL_TEST_PAUSE` says."""
    settings = os.environ.get(PAUSE_VARIABLE)
    if settings:
        settings = json.loads(settings)
        stored = _stored_trials(settings["store"])
        if stored >= settings["after"]:
            _pause(settings, stored)
    return mlp(input_shape, num_outputs)
