"""Tests for keras_tl.scores.multitask.delta_m."""

import pytest

from keras_tl.errors import ConfigError, DataError
from keras_tl.scores.multitask import delta_m

DIRECTIONS = {"accuracy": "higher", "loss": "lower", "auc": "higher"}


def test_delta_m_one_metric_per_task_is_the_mean_relative_gain():
    results = {"a": {"accuracy": 0.90}, "b": {"accuracy": 0.60}}
    baselines = {"a": {"accuracy": 0.80}, "b": {"accuracy": 0.75}}
    # a: (0.90 - 0.80) / 0.80 = +0.125; b: (0.60 - 0.75) / 0.75 = -0.2.
    expected = (0.125 - 0.2) / 2
    for form in ("metric_balanced", "task_balanced"):
        assert delta_m(results, baselines, DIRECTIONS, form=form) == pytest.approx(
            expected
        )


def test_delta_m_flips_the_sign_of_a_lower_is_better_metric():
    baselines = {"a": {"loss": 0.50}}
    lower_loss = delta_m({"a": {"loss": 0.40}}, baselines, DIRECTIONS)
    higher_loss = delta_m({"a": {"loss": 0.60}}, baselines, DIRECTIONS)
    assert lower_loss == pytest.approx(0.2)  # -(0.40 - 0.50) / 0.50
    assert higher_loss == pytest.approx(-0.2)


def test_delta_m_forms_differ_when_tasks_have_different_numbers_of_metrics():
    results = {
        "a": {"accuracy": 0.88, "loss": 0.40},
        "b": {"accuracy": 0.57},
    }
    baselines = {
        "a": {"accuracy": 0.80, "loss": 0.50},
        "b": {"accuracy": 0.60},
    }
    # Terms: a/accuracy +0.10, a/loss +0.20, b/accuracy -0.05.
    metric_balanced = delta_m(results, baselines, DIRECTIONS, form="metric_balanced")
    task_balanced = delta_m(results, baselines, DIRECTIONS, form="task_balanced")
    assert metric_balanced == pytest.approx((0.10 + 0.20 - 0.05) / 3)
    assert task_balanced == pytest.approx(((0.10 + 0.20) / 2 - 0.05) / 2)
    assert metric_balanced != pytest.approx(task_balanced)


def test_delta_m_is_zero_when_the_model_matches_the_baselines():
    baselines = {"a": {"accuracy": 0.8, "loss": 0.3}, "b": {"auc": 0.9}}
    assert delta_m(baselines, baselines, DIRECTIONS) == 0.0
    assert type(delta_m(baselines, baselines, DIRECTIONS)) is float


def test_delta_m_names_a_missing_task():
    with pytest.raises(DataError, match="'b'"):
        delta_m(
            {"a": {"accuracy": 0.9}},
            {"a": {"accuracy": 0.8}, "b": {"accuracy": 0.7}},
            DIRECTIONS,
        )


def test_delta_m_names_a_missing_metric():
    with pytest.raises(DataError, match="'loss'"):
        delta_m(
            {"a": {"accuracy": 0.9}},
            {"a": {"accuracy": 0.8, "loss": 0.5}},
            DIRECTIONS,
        )


def test_delta_m_rejects_a_zero_baseline():
    with pytest.raises(DataError, match=r"baselines\['a'\]\['loss'\] is 0"):
        delta_m({"a": {"loss": 0.1}}, {"a": {"loss": 0.0}}, DIRECTIONS)


def test_delta_m_rejects_a_non_finite_value():
    with pytest.raises(DataError, match="finite"):
        delta_m({"a": {"loss": None}}, {"a": {"loss": 0.5}}, DIRECTIONS)


def test_delta_m_requires_a_direction_for_every_metric():
    with pytest.raises(ConfigError, match="'mae'"):
        delta_m({"a": {"mae": 0.1}}, {"a": {"mae": 0.2}}, DIRECTIONS)
    with pytest.raises(ConfigError, match="'higher', 'lower'"):
        delta_m({"a": {"mae": 0.1}}, {"a": {"mae": 0.2}}, {"mae": "up"})


def test_delta_m_rejects_an_unknown_form_listing_the_allowed_ones():
    with pytest.raises(ConfigError, match="metric_balanced.*task_balanced"):
        delta_m({"a": {"accuracy": 0.9}}, {"a": {"accuracy": 0.8}}, DIRECTIONS,
                form="balanced")
