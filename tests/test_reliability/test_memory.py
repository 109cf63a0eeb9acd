"""Flat memory: a long sweep does not accumulate models, graphs or cached arrays."""

import json
import os
import subprocess
import sys

import keras
import pytest

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow

# 10 seeds x 2 train sizes x (scratch, fine_tune, linear_probe) = 60 trials, each
# with its source model, transferability scores, retention and CKA.
SWEEP = {
    "name": "memory",
    "model": {"builder": "mlp"},
    "source": {"task": "digits:0-4", "epochs": 1, "batch_size": 64},
    "target": {"task": "digits:5-9", "train_sizes": [20, 40], "epochs": 2,
               "batch_size": 10},
    "arms": ["scratch", "fine_tune", "linear_probe"],
    "freeze_depths": [0],
    "seeds": 10,
}
# Peak RSS in MB after each trial, printed by a fresh process so that no earlier
# test's peak hides this sweep's.
SCRIPT = """
import json, resource, sys
import keras_tl
peaks = []
keras_tl.evaluate(
    json.loads(sys.argv[1]), out=sys.argv[2],
    on_trial=lambda done, total, record: peaks.append(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
)
print("PEAKS", json.dumps(peaks))
"""


@pytest.mark.slow
def test_peak_memory_of_a_60_trial_sweep_grows_less_than_300_mb_after_trial_10(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(SWEEP), str(tmp_path / "run")],
        env={**os.environ, "KERAS_BACKEND": keras.config.backend()},
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    line = next(line for line in completed.stdout.splitlines() if line.startswith("PEAKS "))
    peaks = json.loads(line[len("PEAKS "):])
    assert len(peaks) == 60
    assert peaks[59] - peaks[9] < 300, f"peak RSS {peaks[9]:.0f} -> {peaks[59]:.0f} MB"
