"""A trial runner that records which process ran each trial (test_executors.py).

Process workers import it by name, so it lives in a module of its own.
"""

import os

from keras_tl.experiment.trial import run_trial


def run_trial_recording_pid(plan, spec, sources, pool, feature_cache):
    record = run_trial(plan, spec, sources, pool, feature_cache)
    record["worker_pid"] = os.getpid()
    return record
