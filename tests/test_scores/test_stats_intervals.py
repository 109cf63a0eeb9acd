"""Tests for the intervals of keras_tl.scores.stats: no width, no interval; bounds kept.

Oracles: hand-computed Student t intervals (t quantiles from tables), SciPy's
`t.interval`, and properties (inside the bounds, around the mean, of positive
width, unchanged where the t interval already fits).
"""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from keras_tl.errors import ConfigError, DataError
from keras_tl.scores import stats

T_975_2 = 4.302653  # Student t quantile 0.975, 2 degrees of freedom (tables)


# No width, no interval


def test_identical_values_have_no_interval():
    summary = stats.summarize([0.9, 0.9, 0.9, 0.9])
    assert summary["std"] == 0.0 and summary["sem"] == 0.0
    assert summary["ci_low"] is None and summary["ci_high"] is None
    assert json.loads(json.dumps(summary)) == summary


def test_values_identical_up_to_round_off_have_no_interval():
    values = [0.3 - 0.2, 0.8 - 0.7, 0.2 - 0.1]
    assert len(set(values)) == 3
    summary = stats.summarize(values)
    assert summary["std"] == 0.0
    assert summary["ci_low"] is None and summary["ci_high"] is None


def test_one_value_has_no_interval():
    summary = stats.summarize([0.7], bounds=(0, 1))
    assert summary["ci_low"] is None and summary["ci_high"] is None


def test_identical_paired_differences_have_no_interval():
    # Three seeds, each +5 of 100 test images.
    gain = stats.paired_difference([0.55, 0.65, 0.75], [0.50, 0.60, 0.70])
    assert gain["std"] == 0.0
    assert gain["ci_low"] is None and gain["ci_high"] is None
    assert gain["p_value"] == 0.25


@settings(max_examples=50, deadline=None)
@given(
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.integers(2, 10),
)
def test_constant_values_never_get_an_interval(value, n):
    summary = stats.summarize([value] * n)
    assert summary["ci_low"] is None and summary["ci_high"] is None
    gain = stats.paired_difference([value] * n, [0.0] * n)
    assert gain["ci_low"] is None and gain["ci_high"] is None


# Bounded metrics


def test_bounded_interval_hand_computed():
    # [1.0, 1.0, 0.9]: mean 0.9666667, std 0.0577350, sem 0.0333333; the t
    # interval 0.9666667 -+ 4.302653 * 0.0333333 = [0.8232449, 1.1100884] leaves
    # [0, 1]; clipped, it is [0.8232449, 1.0].
    unbounded = stats.summarize([1.0, 1.0, 0.9])
    assert unbounded["ci_low"] == pytest.approx(0.8232449, abs=1e-6)
    assert unbounded["ci_high"] == pytest.approx(1.1100884, abs=1e-6)
    bounded = stats.summarize([1.0, 1.0, 0.9], bounds=(0, 1))
    assert bounded["ci_low"] == pytest.approx(0.8232449, abs=1e-6)
    assert bounded["ci_high"] == 1.0
    assert bounded["mean"] == unbounded["mean"]
    assert bounded["std"] == unbounded["std"]


def test_bounded_interval_at_the_lower_bound_hand_computed():
    # [0.0, 0.1, 0.05]: mean 0.05, std 0.05, sem 0.0288675; t interval
    # 0.05 -+ 0.1242069 = [-0.0742069, 0.1742069]; clipped at 0.
    bounded = stats.summarize([0.0, 0.1, 0.05], bounds=(0, 1))
    assert bounded["ci_low"] == 0.0
    assert bounded["ci_high"] == pytest.approx(0.05 + T_975_2 * 0.05 / np.sqrt(3), abs=1e-6)
    assert bounded["ci_high"] == pytest.approx(0.1742069, abs=1e-6)


def test_bounded_paired_gain_hand_computed():
    # Gains [1, 1, 0] (accuracy 0 -> 1 twice): mean 2/3, std 0.5773503, sem 1/3;
    # t interval 2/3 -+ 4.302653 / 3 = [-0.7675510, 2.1008844]; a gain of two
    # accuracies cannot exceed 1.
    unbounded = stats.paired_difference([1.0, 1.0, 0.0], [0.0, 0.0, 0.0])
    assert unbounded["ci_high"] == pytest.approx(2.1008844, abs=1e-6)
    bounded = stats.paired_difference([1.0, 1.0, 0.0], [0.0, 0.0, 0.0], bounds=(0, 1))
    assert bounded["ci_low"] == pytest.approx(-0.7675510, abs=1e-6)
    assert bounded["ci_high"] == 1.0
    # Lower is better: the gain flips sign and so does the interval.
    loss = stats.paired_difference(
        [1.0, 1.0, 0.0], [0.0, 0.0, 0.0], higher_is_better=False, bounds=(0, 1)
    )
    assert loss["ci_low"] == -1.0
    assert loss["ci_high"] == pytest.approx(0.7675510, abs=1e-6)
    assert loss["p_value"] == bounded["p_value"]


def test_bounds_change_nothing_where_the_t_interval_fits():
    values = [0.71, 0.74, 0.69, 0.73, 0.70]
    assert stats.summarize(values, bounds=(0, 1)) == stats.summarize(values)
    low, high = scipy_stats.t.interval(
        0.95, df=4, loc=np.mean(values), scale=scipy_stats.sem(values)
    )
    summary = stats.summarize(values)
    assert (summary["ci_low"], summary["ci_high"]) == pytest.approx((low, high))
    arm, scratch = [0.71, 0.74, 0.69], [0.70, 0.70, 0.70]
    assert stats.paired_difference(arm, scratch, bounds=(0, 1)) == (
        stats.paired_difference(arm, scratch)
    )


@st.composite
def _bounded_values(draw, min_size=1):
    low = draw(st.floats(-100, 100))
    width = draw(st.floats(0.01, 100))
    high = low + width
    fractions = draw(st.lists(st.floats(0, 1), min_size=min_size, max_size=10))
    return [low + f * width for f in fractions], (low, high)


@settings(max_examples=150, deadline=None)
@given(_bounded_values(), st.sampled_from([0.5, 0.9, 0.95, 0.99]))
def test_bounded_intervals_stay_inside_their_bounds(values_and_bounds, confidence):
    values, (low, high) = values_and_bounds
    summary = stats.summarize(values, confidence=confidence, bounds=(low, high))
    free = stats.summarize(values, confidence=confidence)
    if summary["ci_low"] is None:
        assert summary["ci_high"] is None and free["ci_low"] is None
        return
    assert low <= summary["ci_low"] < summary["ci_high"] <= high
    assert summary["ci_low"] <= summary["mean"] <= summary["ci_high"]
    if low <= free["ci_low"] and free["ci_high"] <= high:
        assert summary == free


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=2, max_size=10),
    st.booleans(),
)
def test_bounded_paired_intervals_stay_inside_minus_one_one(pairs, higher_is_better):
    values = [pair[0] for pair in pairs]
    baseline = [pair[1] for pair in pairs]
    gain = stats.paired_difference(values, baseline, higher_is_better, bounds=(0, 1))
    if gain["ci_low"] is not None:
        assert -1.0 <= gain["ci_low"] < gain["ci_high"] <= 1.0
        assert gain["ci_low"] <= gain["mean"] <= gain["ci_high"]


def test_bounds_are_checked():
    with pytest.raises(DataError, match=r"bounds=\(0, 100\)"):
        stats.summarize([95.2, 96.0], bounds=(0, 1))
    with pytest.raises(DataError, match="baseline"):
        stats.paired_difference([0.9, 0.8], [0.9, 1.2], bounds=(0, 1))
    with pytest.raises(ConfigError, match="low < high"):
        stats.summarize([0.5, 0.6], bounds=(1, 0))
    with pytest.raises(ConfigError, match="pair"):
        stats.summarize([0.5, 0.6], bounds="unit")
    with pytest.raises(ConfigError, match="pair"):
        stats.summarize([0.5, 0.6], bounds=(0, 1, 2))
