"""`distribution: data_parallel`: one trial across two (simulated) JAX devices.

The sweep runs in a JAX subprocess that sees two CPU devices
(`--xla_force_host_platform_device_count=2`), once with `data_parallel` and once
without, and the two must agree within float tolerance: splitting a batch across
devices changes only the order of the sums. Backends without keras.distribution
support are refused while planning.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from keras_tl.errors import ConfigError
from keras_tl.training.distribution import check

# Trains models end to end: the full suite (tox, CI) runs it; `-m "not slow"` skips it.
pytestmark = pytest.mark.slow

RESULT_PREFIX = "DATA_PARALLEL_RESULT "
# Guards against a hung subprocess; not a timing assertion.
HANG_LIMIT = 300

SCRIPT = """
import json, sys
import keras
import keras_tl
from keras_tl.training.distribution import fitting, scope

experiment = json.loads(sys.argv[1])
numbers = {}
for distribution in (None, "data_parallel"):
    results = keras_tl.evaluate({**experiment, "distribution": distribution})
    numbers[str(distribution)] = sorted(
        [t["arm"], t["seed"], t["status"], t["test"], t["val"]] for t in results.trials
    )
# A model trained in the scope holds its variables on both devices.
with scope("data_parallel"):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    with fitting((8, 4)):
        model.fit(keras.ops.ones((8, 4)), keras.ops.ones((8, 2)), batch_size=4, verbose=0)
    devices = len(model.variables[0].value.sharding.device_set)
    layouts = {}
    for name, datasets in {"even": [(8, 4)], "uneven": [(8, 4), (7, 4)]}.items():
        with fitting(*datasets):
            layout = keras.distribution.distribution().get_data_layout((4, 4))
        layouts[name] = list(layout.axes)
print("%s" + json.dumps({"devices": devices, "layouts": layouts, "numbers": numbers}))
""" % RESULT_PREFIX


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_data_parallel_is_refused_on_backends_without_keras_distribution(backend):
    with pytest.raises(ConfigError, match=f"runs on the jax backend only .* {backend!r}"):
        check("data_parallel", backend)


def test_data_parallel_is_accepted_on_jax_and_no_distribution_everywhere():
    check("data_parallel", "jax")
    for backend in ("torch", "tensorflow", "jax"):
        check(None, backend)


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("jax") is None,
    reason="jax is installed only in the py311-jax tox env; this test runs JAX in a "
    "subprocess",
)
def test_data_parallel_trials_agree_with_one_device(tiny_sweep, tmp_path):
    # 20 target samples in batches of 10 split evenly; the source's last batch does
    # not, so both the split and the replicated path of `fitting` run.
    experiment = tiny_sweep("tiny-data-parallel")
    env = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "KERAS_HOME": str(tmp_path / "keras_home"),
    }

    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(experiment)],
        env=env, capture_output=True, text=True, timeout=HANG_LIMIT, cwd=tmp_path,
    )

    lines = [
        line for line in completed.stdout.splitlines() if line.startswith(RESULT_PREFIX)
    ]
    assert completed.returncode == 0 and lines, completed.stderr[-4000:]
    result = json.loads(lines[-1][len(RESULT_PREFIX):])
    assert result["devices"] == 2
    # Batches are split across the devices only when every batch of the fit divides.
    assert result["layouts"] == {"even": ["batch", None], "uneven": [None, None]}
    single, parallel = result["numbers"]["None"], result["numbers"]["data_parallel"]
    assert [row[:3] for row in parallel] == [row[:3] for row in single]
    assert all(row[2] == "ok" for row in parallel)
    for (*_, test, val), (*_, test_one, val_one) in zip(parallel, single):
        assert test == pytest.approx(test_one, abs=1e-4)
        assert val == pytest.approx(val_one, abs=1e-4)
