"""A trial runner that records which process ran each trial (test_executors.py).

Process workers import it by name, so it lives in a module of its own. With
`PID_RUNNER_BARRIER` set to a folder, a spawned worker marks it when it imports
this module (as it starts) and the driver, `PID_RUNNER_DRIVER`, runs its first
trial only once a worker has: the spawned worker then surely gets trials of its
own, however slowly it starts.
"""

import glob
import os
import time

from keras_tl.experiment.trial import run_trial



def _is_driver():
    return os.environ.get("PID_RUNNER_DRIVER") == str(os.getpid())


if os.environ.get("PID_RUNNER_BARRIER") and not _is_driver():
    open(os.path.join(os.environ["PID_RUNNER_BARRIER"], f"started-{os.getpid()}"), "w").close()


def _wait_for_a_spawned_worker(barrier, seconds=600):
    deadline = time.monotonic() + seconds  # A safety net only: not a timing.
    while not glob.glob(os.path.join(barrier, "started-*")):
        if time.monotonic() > deadline:
            raise RuntimeError("no spawned worker started")
        time.sleep(0.05)


def run_trial_recording_pid(plan, spec, sources, pool, feature_cache):
    if os.environ.get("PID_RUNNER_BARRIER") and _is_driver():
        _wait_for_a_spawned_worker(os.environ["PID_RUNNER_BARRIER"])
    record = run_trial(plan, spec, sources, pool, feature_cache)
    record["worker_pid"] = os.getpid()
    return record
