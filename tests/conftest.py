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
