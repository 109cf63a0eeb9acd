"""The tiny experiment that test_failures.py and test_resume.py both run."""

import pytest


@pytest.fixture(scope="session")
def tiny_experiment():
    """Returns `make(name)`: a fresh config of the tiny experiment (6 trials) named `name`."""

    def make(name):
        return {
            "name": name,
            "model": {"builder": "mlp"},
            "source": {"task": "digits", "epochs": 1, "batch_size": 64},
            "target": {
                "task": "digits:parity",
                "train_sizes": [20],
                # Long enough (about a second a trial) that the resume test's kill
                # and Ctrl-C land while trials remain, however fast training gets.
                "epochs": 150,
                "batch_size": 10,
                "learning_rate": 0.01,
            },
            "arms": ["scratch", "fine_tune", "linear_probe"],
            "seeds": 2,
        }

    return make
