"""Worker processes share the cores: each process, the driver included, gets
cores // workers compute threads (keras_tl.backend.limit_threads, torch_threads)."""

import importlib.util
import os
import sys

import keras
import pytest

from keras_tl import backend
from keras_tl_cli.main import _share_cores

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "XLA_FLAGS")


@pytest.fixture
def clean_environment(monkeypatch):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("cores, processes, expected", [
    (2, 1, 2), (2, 2, 1), (8, 3, 2), (2, 4, 1), (None, 2, 1),
])
def test_threads_per_process_splits_the_cores(monkeypatch, cores, processes, expected):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert backend.threads_per_process(processes) == expected


def test_limit_threads_sets_every_backend_s_variable(clean_environment):
    backend.limit_threads(3)
    for name in THREAD_VARIABLES[:-1]:
        assert os.environ[name] == "3"
    assert os.environ["XLA_FLAGS"].split() == [
        "--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=3"]


def test_limit_threads_keeps_what_the_user_set(clean_environment):
    clean_environment.setenv("OMP_NUM_THREADS", "4")
    clean_environment.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    backend.limit_threads(1)
    assert os.environ["OMP_NUM_THREADS"] == "4"
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == "1"
    # Other XLA flags stay; the thread flags are added.
    assert os.environ["XLA_FLAGS"].split() == [
        "--xla_force_host_platform_device_count=2", "--xla_cpu_multi_thread_eigen=false",
        "intra_op_parallelism_threads=1"]


def test_thread_flags_are_not_repeated(clean_environment):
    # A worker spawned by a capped driver inherits its XLA_FLAGS: the same
    # string again, so driver and workers share jax's compilation cache keys.
    os.environ.update(backend.thread_limits(1))
    first = os.environ["XLA_FLAGS"]
    os.environ.update(backend.thread_limits(1))
    assert os.environ["XLA_FLAGS"] == first
    os.environ.update(backend.thread_limits(2))
    assert os.environ["XLA_FLAGS"].split() == [
        "--xla_cpu_multi_thread_eigen=false", "intra_op_parallelism_threads=2"]


@pytest.mark.parametrize("executor, workers, capped", [
    (None, None, False), (None, 1, False), ("serial", None, False), ("ray", 2, False),
    (None, 2, True), ("process", None, True), ("process", 2, True),
])
def test_the_cli_caps_its_threads_only_beside_worker_processes(
    clean_environment, executor, workers, capped
):
    clean_environment.setattr(os, "cpu_count", lambda: 2)
    if executor == "ray" and importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed in this environment")
    _share_cores(executor, workers, None, 0)
    assert os.environ.get("OMP_NUM_THREADS") == ("1" if capped else None)


@pytest.mark.skipif(keras.config.backend() != "torch",
                    reason="TensorFlow and XLA fix their thread pools at start-up")
def test_torch_threads_caps_and_restores_torch_s_threads():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with backend.torch_threads(1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with backend.torch_threads(4):  # Never more than the process had.
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(keras.config.backend() == "torch", reason="checks the other backends")
def test_torch_threads_does_not_touch_torch_on_other_backends():
    imported = "torch" in sys.modules
    with backend.torch_threads(1):
        assert ("torch" in sys.modules) == imported
