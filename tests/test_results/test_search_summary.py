"""`summary.search`: each condition's mean val metric per searched setting."""

import pytest

from keras_tl.results.summary import _search


def test_the_sensitivity_summary_reads_search_and_learning_rates_records():
    config = {"target": {"batch_size": 10}}
    def trial(seed, chosen, by_rate=None, by_setting=None):
        record = {"status": "ok", "seed": seed, "train_size": 30, "learning_rate": chosen,
                  "validation_by_learning_rate": by_rate}
        if by_setting is not None:
            record |= {"batch_size": 4, "validation_by_setting": by_setting}
        return record
    old = {("fine_tune", "digits", 1, 30): [
        trial(0, 0.01, {"0.01": 0.8, "0.1": None}), trial(1, 0.1, {"0.01": 0.6, "0.1": 0.9}),
    ]}
    rows = _search(old, config, 1)
    assert [(r["learning_rate"], r["batch_size"], r["n"], r["mean"], r["chosen"])
            for r in rows] == [(0.01, 10, 2, pytest.approx(0.7), 1), (0.1, 10, 1, 0.9, 1)]
    new = {("scratch", None, 0, 30): [trial(0, 0.1, by_setting=[
        {"learning_rate": 0.1, "batch_size": 4, "val": 0.5},
        {"learning_rate": 0.1, "batch_size": 8, "val": 0.4}])]}
    rows = _search(new, config, 1)
    assert [(r["batch_size"], r["mean"], r["chosen"]) for r in rows] == [(4, 0.5, 1), (8, 0.4, 0)]
    assert _search({("scratch", None, 0, 30): [trial(0, 0.1)]}, config, 1) == []
