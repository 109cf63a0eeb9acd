"""The small run that test_report.py and test_results_schema.py both read."""

import pytest

import keras_tl
from keras_tl.config.arms import STAGE_DEFAULTS


@pytest.fixture(scope="module")
def report_run_config(tiny_experiment):
    """The tiny experiment of tests/conftest.py as the report tests need it: a small
    CNN from digits 0-4 to 5-9, train sizes 10 and 20, freeze depths 0 and 1, a
    random_transfer control, one epoch per stage, and the default batch size and
    5 searched at the default learning rate."""
    batch_size = STAGE_DEFAULTS["batch_size"]
    return tiny_experiment(
        "report_test",
        model={"builder": "small_cnn"},
        source={"task": "digits:0-4", "batch_size": batch_size},
        target={"task": "digits:5-9", "train_sizes": [10, 20], "epochs": 1,
                "batch_size": batch_size},
        arms=["scratch", "fine_tune", "random_transfer"],
        freeze_depths=[0, 1],
        # Two batch sizes per trial: the report's sensitivity table (search).
        search={"learning_rate": [0.001], "batch_size": [batch_size, 5]},
    )


@pytest.fixture(scope="module")
def report_run_folder(tmp_path_factory, report_run_config):
    """The run folder of `report_run_config`, trained once per test session.

    The first module to need it trains it into the session's temp folder; the
    others reuse it.
    """
    folder = tmp_path_factory.getbasetemp() / "keras_tl_report_run"
    if not (folder / "results.json").is_file():
        keras_tl.evaluate(report_run_config, out=str(folder), overwrite=True)
    return str(folder)
