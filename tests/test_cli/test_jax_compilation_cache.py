"""On jax the CLI keeps compiled XLA programs for later runs (jax's persistent
compilation cache, keras_tl.backend.keep_jax_compilations): a run that reads
them back gives the same numbers as one that compiled everything."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import yaml

from keras_tl import backend
from keras_tl.filesystem import cache_root


@pytest.fixture
def clean_environment(monkeypatch):
    for name in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_compilations_are_kept_beside_the_data_cache(clean_environment, tmp_path):
    clean_environment.delenv("KERAS_TL_CACHE_DIR", raising=False)
    clean_environment.setenv("XDG_CACHE_HOME", str(tmp_path))
    backend.keep_jax_compilations()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "keras-tl" / "jax")
    assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"


def test_nothing_is_kept_where_the_cache_cannot_be_written(clean_environment, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    # A folder cannot be made inside a file (whoever runs the test, root too).
    clean_environment.setenv("KERAS_TL_CACHE_DIR", str(blocker / "cache"))
    backend.keep_jax_compilations()
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ
    assert "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ


@pytest.mark.parametrize("variables, expected", [
    ({"KERAS_TL_CACHE_DIR": "mine"}, ("mine",)),
    ({"XDG_CACHE_HOME": "xdg"}, ("xdg", "keras-tl")),
    ({"HOME": "home"}, ("home", ".cache", "keras-tl")),
])
def test_the_cache_root_follows_the_environment(monkeypatch, tmp_path, variables, expected):
    for name in ("KERAS_TL_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, str(tmp_path / value))
    assert cache_root() == str(tmp_path.joinpath(*expected))


def test_the_user_s_jax_settings_win(clean_environment, tmp_path):
    clean_environment.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "mine"))
    clean_environment.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "2")
    backend.keep_jax_compilations()
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "mine")
    assert os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "2"


def _evaluate_on_jax(folder, config, out, **env):
    environment = {
        name: value for name, value in os.environ.items()
        if not name.startswith("JAX_") and name != "KERAS_BACKEND"
    }
    environment.pop("KERAS_TL_CACHE_DIR", None)
    environment.update(XDG_CACHE_HOME=str(folder / "cache"), **env)
    completed = subprocess.run(
        [sys.executable, "-m", "keras_tl_cli", "evaluate", str(config), "--backend", "jax",
         "--quiet", "--out", str(out)],
        env=environment, cwd=folder, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "persistent compilation cache" not in completed.stderr  # no unreadable entry
    trials = json.loads((out / "results.json").read_text())["trials"]
    return {trial["key"]: (trial["test"], trial["val"], trial["scores"]) for trial in trials}


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                    reason="jax is not installed in this environment")
def test_a_run_from_cached_programs_gives_the_same_numbers(tiny_experiment, tmp_path):
    config = tmp_path / "experiment.yaml"
    config.write_text(yaml.safe_dump(tiny_experiment("cache", arms=["scratch", "fine_tune"])))
    cache = tmp_path / "cache" / "keras-tl" / "jax"

    compiled = _evaluate_on_jax(tmp_path, config, tmp_path / "first")
    kept = sorted(os.listdir(cache))
    read_back = _evaluate_on_jax(tmp_path, config, tmp_path / "second")
    uncached = _evaluate_on_jax(tmp_path, config, tmp_path / "off",
                                JAX_ENABLE_COMPILATION_CACHE="false")

    assert len(kept) > 10  # initialisers, training steps, predictions
    # The second run compiled nothing new: every program came from the cache.
    assert sorted(os.listdir(cache)) == kept
    assert read_back == compiled
    assert uncached == compiled
