"""Shared test setup: the backend is chosen once, by KERAS_BACKEND, before keras loads."""

import os

import keras
import pytest


def pytest_configure(config):
    requested = os.environ.get("KERAS_BACKEND")
    if requested and keras.config.backend() != requested:
        raise pytest.UsageError(
            f"keras runs on {keras.config.backend()!r} but KERAS_BACKEND={requested!r}"
        )


def pytest_collection_modifyitems(config, items):
    """`@pytest.mark.backends("tensorflow")`: run only on the backends named."""
    backend = keras.config.backend()
    for item in items:
        marker = item.get_closest_marker("backends")
        if marker and backend not in marker.args:
            item.add_marker(pytest.mark.skip(
                reason=f"runs on the {' or '.join(marker.args)} backend; this is {backend}"
            ))


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.config.backend()}"


@pytest.fixture(scope="session")
def tiny_experiment():
    """Returns `make(name, **changes)`: the tiny experiment (mlp, digits -> parity,
    20 target samples, scratch / fine_tune / linear_probe, 2 seeds: 6 trials).

    A change replaces a top-level key; a mapping for `source` or `target` updates
    that section's keys instead (e.g. `target={"epochs": 150}`).
    """

    def make(name, **changes):
        config = {
            "name": name,
            "model": {"builder": "mlp"},
            "source": {"task": "digits", "epochs": 1, "batch_size": 64},
            "target": {"task": "digits:parity", "train_sizes": [20], "epochs": 2,
                       "batch_size": 10},
            "arms": ["scratch", "fine_tune", "linear_probe"],
            "seeds": 2,
        }
        for key, value in changes.items():
            if key in ("source", "target"):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
        return config

    return make
