"""One local Ray cluster (2 CPUs) for every Ray test of the session.

Ray is installed only in the py311-torch tox env (tox.ini: `torch: ray`); the
other envs skip these tests with that reason. The workers import the test-only
builders of `ray_kill_builders.py` through `PYTHONPATH`, which the Ray processes
inherit from this one.
"""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="session")
def ray_cluster():
    """`ray`, initialised once with 2 CPUs; shut down after the session."""
    ray = pytest.importorskip(
        "ray", reason="ray is installed only in the py311-torch tox env (tox.ini)"
    )
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [HERE, saved]))
    sys.path.insert(0, HERE)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        sys.path.remove(HERE)
        if saved is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = saved


@pytest.fixture(scope="session")
def tiny_sweep(tiny_experiment):
    """Returns `make(name, **changes)`: a 4-trial experiment (mlp, digits -> parity)."""

    def make(name, **changes):
        settings = {"arms": ["scratch", "fine_tune"], "scores": [], "target": {"epochs": 5}}
        settings.update(changes)
        return tiny_experiment(name, **settings)

    return make
