"""The small run that test_report.py and test_results_schema.py both read."""

import pytest

import keras_tl

REPORT_RUN_CONFIG = {
    "name": "report_test",
    "model": {"builder": "small_cnn"},
    "source": {"task": "digits:0-4", "epochs": 1},
    "target": {"task": "digits:5-9", "train_sizes": [10, 20], "epochs": 1},
    "arms": ["scratch", "fine_tune", "random_transfer"],
    "freeze_depths": [0, 1],
    "seeds": 2,
}


@pytest.fixture(scope="module")
def report_run_folder(tmp_path_factory):
    """The run folder of REPORT_RUN_CONFIG, trained once per test session.

    The first module to need it trains it into the session's temp folder; the
    others reuse it.
    """
    folder = tmp_path_factory.getbasetemp() / "keras_tl_report_run"
    if not (folder / "results.json").is_file():
        keras_tl.evaluate(REPORT_RUN_CONFIG, out=str(folder), overwrite=True)
    return str(folder)
