"""Retention, fusion and the two-task stream on hand-made records, hand-computed."""

import pytest

from keras_tl.results import streams

SIZE = 40


def _context(target_kind="regression", target_metric="mae"):
    return {
        "primary_metric": target_metric,
        "source_metric": "accuracy",
        "scores": [],
        "sources": [
            {"name": "digits", "task": {"name": "digits", "kind": "classification"}},
            {"name": "housing", "task": {"name": "housing", "kind": "regression"}},
        ],
        "target_task": {"name": "target", "kind": target_kind},
        "notes": [],
    }


def _stream_record(seed, source, before, after, target_before, target_after,
                   random_source, random_target, source_metric, target_metric):
    return {
        "arm": "fine_tune", "source": source, "freeze_depth": 0, "seed": seed,
        "requested_train_size": SIZE, "status": "ok",
        "test": {target_metric: target_after},
        "source_metrics": {"before": {source_metric: before}, "after": {source_metric: after}},
        "stream": {"before_target_training": {target_metric: target_before},
                   "random_init": [{source_metric: random_source},
                                   {target_metric: random_target}]},
    }


def test_each_stream_column_keeps_its_own_metric_direction():
    # Source: accuracy (higher is better); target: MAE (lower is better).
    # The source model starts the target at MAE 2.0 where a random model has 3.0:
    # a head start of 1.0 MAE, so FWT = +1.0 (not -1.0).
    # The source accuracy drops 0.9 -> 0.8: BWT = -0.1, forgetting = +0.1.
    records = [_stream_record(seed, "digits", 0.9, 0.8, 2.0, 1.5, 0.1, 3.0, "accuracy", "mae")
               for seed in range(3)]
    (row,) = streams.stream({("fine_tune", "digits", 0, SIZE): records}, _context(), 2)
    assert row["metrics"] == ["accuracy", "mae"]
    assert row["fwt"]["mean"] == pytest.approx(1.0)
    assert row["bwt"]["mean"] == pytest.approx(-0.1)
    assert row["forgetting"]["mean"] == pytest.approx(0.1)
    assert row["acc"] is None  # accuracy and MAE cannot be averaged


def test_acc_is_the_mean_final_metric_when_both_tasks_share_it():
    records = [_stream_record(seed, "digits", 0.9, 0.8, 0.6, 0.7, 0.1, 0.5, "accuracy",
                              "accuracy") for seed in range(2)]
    context = _context("classification", "accuracy")
    (row,) = streams.stream({("fine_tune", "digits", 0, SIZE): records}, context, 2)
    assert row["acc"]["mean"] == pytest.approx((0.8 + 0.7) / 2)
    assert row["fwt"]["mean"] == pytest.approx(0.6 - 0.5)


def test_retention_uses_each_sources_own_metric():
    digits = [_stream_record(s, "digits", 0.9, 0.85, 2, 1, 0.1, 3, "accuracy", "mae")
              for s in range(2)]
    housing = [_stream_record(s, "housing", 1.0, 1.5, 2, 1, 4.0, 3, "mae", "mae")
               for s in range(2)]
    rows = streams.retention({("fine_tune", "digits", 0, SIZE): digits,
                              ("fine_tune", "housing", 0, SIZE): housing}, _context(), 2)
    by_source = {row["source"]: row for row in rows}
    assert by_source["digits"]["metric"] == "accuracy"
    assert by_source["digits"]["forgetting"]["mean"] == pytest.approx(0.05)
    # MAE 1.0 -> 1.5 is worse: forgetting +0.5 (lower is better).
    assert by_source["housing"]["metric"] == "mae"
    assert by_source["housing"]["forgetting"]["mean"] == pytest.approx(0.5)


def _fused_record(seed, target_test, source_test, source_baseline):
    return {
        "arm": "fused", "source": None, "freeze_depth": 0, "seed": seed,
        "requested_train_size": SIZE, "status": "ok", "test": target_test,
        "fused": {
            "test": {"target": target_test, "digits": source_test},
            "source_baselines": {"digits": source_baseline},
            "random_init": {"target": {"accuracy": 0.5, "loss": 0.7},
                            "digits": {"accuracy": 0.1, "loss": 2.3}},
        },
    }


def _scratch(seed, test):
    return {"arm": "scratch", "source": None, "freeze_depth": 0, "seed": seed,
            "requested_train_size": SIZE, "status": "ok", "test": test}


def test_delta_m_averages_task_metrics_never_the_loss():
    # Accuracy 0.90 vs 0.88 on the target, 0.99 vs 0.99 on the source; the losses
    # are worse. delta_m over accuracy only: ((0.90-0.88)/0.88 + 0) / 2.
    context = _context("classification", "accuracy")
    groups = {
        ("fused", None, 0, SIZE): [_fused_record(
            0, {"accuracy": 0.90, "loss": 0.40}, {"accuracy": 0.99, "loss": 0.05},
            {"accuracy": 0.99, "loss": 0.03})],
        ("scratch", None, 0, SIZE): [_scratch(0, {"accuracy": 0.88, "loss": 0.35})],
    }
    (row,) = streams.fusion(groups, context)
    expected = (0.02 / 0.88 + 0.0) / 2
    assert row["delta_m"]["metric_balanced"]["mean"] == pytest.approx(expected)
    assert row["delta_m"]["task_balanced"]["mean"] == pytest.approx(expected)
    assert row["delta_m_metrics"] == {"target": ["accuracy"], "digits": ["accuracy"]}


def test_delta_m_sign_flips_when_fused_and_baseline_swap():
    context = _context("classification", "accuracy")

    def delta(fused_target, scratch_target):
        groups = {
            ("fused", None, 0, SIZE): [_fused_record(
                0, {"accuracy": fused_target, "loss": 0.4}, {"accuracy": 0.9, "loss": 0.1},
                {"accuracy": 0.9, "loss": 0.1})],
            ("scratch", None, 0, SIZE): [_scratch(0, {"accuracy": scratch_target,
                                                      "loss": 0.4})],
        }
        return streams.fusion(groups, context)[0]["delta_m"]["metric_balanced"]["mean"]

    assert delta(0.9, 0.8) > 0 > delta(0.8, 0.9)
