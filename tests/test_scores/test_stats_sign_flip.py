"""Tests for the exact sign-flip permutation test behind every paired p-value.

Oracles: sign patterns enumerated by hand in the comments, an independent brute
force in exact rational arithmetic, SciPy's `permutation_test`, and properties the
test must have (monotone in the evidence, a floor of 2 / 2**n, symmetric).
"""

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from keras_tl.errors import ConfigError, DataError
from keras_tl.scores import stats


def _brute_force_p(differences):
    """p = #{patterns s: |sum(s d)| >= |sum(d)|} / 2**n, in exact fractions."""
    exact = [Fraction(value) for value in differences]
    observed = abs(sum(exact))
    patterns = list(itertools.product((1, -1), repeat=len(exact)))
    reaching = sum(
        1 for signs in patterns
        if abs(sum(sign * value for sign, value in zip(signs, exact))) >= observed
    )
    return Fraction(reaching, len(patterns))


# Hand-enumerated cases


def test_one_two_three_is_two_in_eight():
    # Sums of +-1 +-2 +-3: 6, 0, 2, -4, 4, -2, 0, -6; |sum| >= 6 twice.
    result = stats.sign_flip_test([1.0, 2.0, 3.0])
    assert result == {
        "p_value": 0.25, "method": "exact", "num_patterns": 8, "min_p_value": 0.25,
    }


def test_one_minus_one_two_is_six_in_eight():
    # Observed sum 2. Sums of +-1 +-1 +-2: 4, 0, 2, -2, 2, -2, 0, -4; |sum| >= 2
    # for all but the two zeros.
    assert stats.sign_flip_test([1.0, -1.0, 2.0])["p_value"] == 0.75


def test_one_two_three_minus_one_is_six_in_sixteen():
    # Observed sum 5. (+-1 +-1) in {2, 0, 0, -2} plus (+-2 +-3) in {5, -1, 1, -5}:
    # |sum| >= 5 for 2+5, 0+5 (twice), 0-5 (twice) and -2-5: 6 of 16.
    assert stats.sign_flip_test([1.0, 2.0, 3.0, -1.0])["p_value"] == 0.375


def test_zero_differences_change_nothing():
    # [0, 1, 2]: the 0 doubles both the patterns and the hits of [1, 2] (2 of 4).
    assert stats.sign_flip_test([0.0, 1.0, 2.0])["p_value"] == 0.5
    assert stats.sign_flip_test([1.0, 2.0])["p_value"] == 0.5
    assert stats.sign_flip_test([0.0, 0.0, 0.0])["p_value"] == 1.0
    # A mean of exactly zero: every pattern reaches |sum| = 0.
    assert stats.sign_flip_test([1.0, -1.0])["p_value"] == 1.0


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 10, 20])
def test_identical_differences_get_two_in_two_to_the_n(n):
    # Only all-plus and all-minus reach |sum| = n * c.
    result = stats.sign_flip_test([0.05] * n)
    assert result["p_value"] == pytest.approx(2 / 2**n, rel=1e-12)
    assert result["min_p_value"] == pytest.approx(2 / 2**n, rel=1e-12)
    assert result["method"] == "exact"


def test_the_issue_examples_get_the_same_p_value():
    # Three seeds, a test split of 100 images: +5, +5, +5 images, and +2, +2, +3.
    # The Student t test gave 0.25 (sign-flip fallback) and 0.0198 (t = 7, 2 df).
    five = stats.paired_difference([0.55, 0.65, 0.75], [0.50, 0.60, 0.70])
    noisy = stats.paired_difference([0.52, 0.62, 0.73], [0.50, 0.60, 0.70])
    assert five["p_value"] == 0.25
    assert noisy["p_value"] == 0.25
    assert stats.verdict(noisy["mean"], noisy["p_value"]) == "inconclusive"
    assert noisy["p_value_method"] == "sign_flip_exact"


def test_float_round_off_does_not_decide():
    # 0.3 - 0.2, 0.8 - 0.7, 0.2 - 0.1 differ in the last bits; still 2 of 8.
    differences = [0.3 - 0.2, 0.8 - 0.7, 0.2 - 0.1]
    assert len(set(differences)) > 1
    assert stats.sign_flip_test(differences)["p_value"] == 0.25
    # Round-off differences alone are no gain at all.
    result = stats.paired_difference([0.30000000000000004] * 6, [0.3] * 6)
    assert result["p_value"] == 1.0
    assert result["wilcoxon_p_value"] == 1.0


# Against independent implementations


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-6, 6), min_size=1, max_size=9))
def test_matches_a_brute_force_in_exact_arithmetic(integers):
    differences = [value / 50 for value in integers]  # whole test images of 50
    expected = _brute_force_p([Fraction(value, 50) for value in integers])
    assert stats.sign_flip_test(differences)["p_value"] == pytest.approx(
        float(expected), rel=1e-12
    )


def test_matches_scipy_permutation_test_at_eighteen_pairs():
    differences = np.array(
        [4, 2, 1, -1, -1, -3, -3, -3, -2, 4, 2, 5, 1, 2, 5, 3, 2, 1], dtype=float
    ) / 100
    expected = scipy_stats.permutation_test(
        (differences, np.zeros_like(differences)),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=np.inf,
    ).pvalue
    assert stats.sign_flip_test(differences)["p_value"] == pytest.approx(expected)


# Properties: the p-value never rewards noise


def _oriented(integers):
    """The differences as floats with a sum >= 0 (the test is symmetric)."""
    differences = np.asarray(integers, dtype=float)
    return differences if differences.sum() >= 0 else -differences


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-9, 9), min_size=2, max_size=10), st.integers(2, 5))
def test_scaling_up_the_positive_differences_never_raises_p(integers, factor):
    differences = _oriented(integers)
    larger = np.where(differences > 0, factor * differences, differences)
    before = stats.sign_flip_test(differences)["p_value"]
    after = stats.sign_flip_test(larger)["p_value"]
    assert after <= before


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-9, 9), min_size=2, max_size=10), st.data())
def test_flipping_a_negative_difference_never_raises_p(integers, data):
    differences = _oriented(integers)
    negatives = np.flatnonzero(differences < 0)
    assume(negatives.size > 0)
    index = data.draw(st.sampled_from(negatives.tolist()))
    flipped = differences.copy()
    flipped[index] = -flipped[index]
    assert stats.sign_flip_test(flipped)["p_value"] <= (
        stats.sign_flip_test(differences)["p_value"]
    )


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(-9, 9), min_size=21, max_size=30),
    st.data(),
)
def test_the_monte_carlo_branch_is_monotone_too(integers, data):
    # A fixed seed draws the same sign patterns for the same n, so every pattern
    # that reaches the larger sum reached the smaller one.
    differences = _oriented(integers)
    assume(np.any(differences != 0))
    index = data.draw(st.integers(0, differences.size - 1))
    increase = data.draw(st.integers(1, 9))
    larger = differences.copy()
    larger[index] += increase
    kwargs = dict(max_exact=0, num_samples=2000)
    before = stats.sign_flip_test(differences, **kwargs)
    after = stats.sign_flip_test(larger, **kwargs)
    assert before["method"] == after["method"] == "monte_carlo"
    assert after["p_value"] <= before["p_value"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-9, 9).filter(lambda v: v != 0), min_size=1, max_size=12))
def test_no_data_beats_identical_differences(integers):
    # The floor 2 / 2**n is reached by identical differences and never undercut.
    n = len(integers)
    assert stats.sign_flip_test(np.asarray(integers, float))["p_value"] >= 2 / 2**n
    assert stats.sign_flip_test([3.0] * n)["p_value"] == 2 / 2**n


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-9, 9), min_size=3, max_size=3))
def test_three_seeds_can_never_be_significant(integers):
    differences = np.asarray(integers, dtype=float) / 100
    result = stats.paired_difference(differences, np.zeros(3))
    assert result["p_value"] >= 0.25
    assert stats.verdict(result["mean"], result["p_value"]) == "inconclusive"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-9, 9), min_size=1, max_size=10), st.randoms())
def test_symmetric_in_sign_and_order(integers, random):
    differences = np.asarray(integers, dtype=float)
    p_value = stats.sign_flip_test(differences)["p_value"]
    assert stats.sign_flip_test(-differences)["p_value"] == p_value
    shuffled = list(differences)
    random.shuffle(shuffled)
    assert stats.sign_flip_test(shuffled)["p_value"] == p_value


# The Monte-Carlo branch


def test_monte_carlo_agrees_with_enumeration_at_eighteen_pairs():
    differences = np.array(
        [4, 2, 1, -1, -1, -3, -3, -3, -2, 4, 2, 5, 1, 2, 5, 3, 2, 1], dtype=float
    )
    exact = stats.sign_flip_test(differences)
    sampled = stats.sign_flip_test(differences, max_exact=0)
    assert exact["method"] == "exact" and exact["num_patterns"] == 2**18
    assert sampled["method"] == "monte_carlo"
    assert sampled["num_patterns"] == 100_000
    p = exact["p_value"]
    # Binomial standard error of the estimate, plus the (1 + count) correction.
    assert abs(sampled["p_value"] - p) <= 4 * np.sqrt(p * (1 - p) / 100_000) + 1e-5


def test_monte_carlo_p_value_is_never_zero_and_reproducible():
    # 30 identical differences: exact p = 2 / 2**30; no random pattern reaches it,
    # so the estimate is (1 + 0) / (1 + 100_000), never 0.
    result = stats.sign_flip_test([0.02] * 30)
    assert result["method"] == "monte_carlo"
    assert result["p_value"] == pytest.approx(1 / 100_001)
    assert result["min_p_value"] == pytest.approx(1 / 100_001)
    differences = np.random.default_rng(3).normal(0.1, 1.0, size=40)
    assert stats.sign_flip_test(differences) == stats.sign_flip_test(differences)


def test_more_than_twenty_pairs_use_monte_carlo_in_paired_difference():
    rng = np.random.default_rng(4)
    baseline = rng.uniform(0.6, 0.8, size=25)
    result = stats.paired_difference(baseline + rng.normal(0, 0.02, 25), baseline)
    assert result["p_value_method"] == "sign_flip_monte_carlo"
    assert 0 < result["p_value"] <= 1
    # 20 non-zero differences among 25 pairs are still enumerated exactly.
    values = baseline.copy()
    values[:20] += 0.01
    exact = stats.paired_difference(values, baseline)
    assert exact["p_value_method"] == "sign_flip_exact"
    assert exact["p_value"] == pytest.approx(2 / 2**20)


def test_min_pairs_for_significance_hand_computed():
    # Smallest n with 2 / 2**n < alpha.
    assert stats.min_pairs_for_significance(0.05) == 6  # 2/64 = 0.031 < 0.05 <= 2/32
    assert stats.min_pairs_for_significance(0.01) == 8  # 2/256 < 0.01 <= 2/128
    assert stats.min_pairs_for_significance(0.05 / 3) == 7  # Holm, 3 comparisons
    assert stats.min_pairs_for_significance(0.5) == 3  # 2/8 < 0.5 = 2/4
    with pytest.raises(ConfigError, match="alpha"):
        stats.min_pairs_for_significance(5)


def test_sign_flip_test_rejects_bad_input():
    with pytest.raises(DataError, match="empty"):
        stats.sign_flip_test([])
    with pytest.raises(DataError, match="finite"):
        stats.sign_flip_test([1.0, float("inf")])
    with pytest.raises(ConfigError, match="num_samples"):
        stats.sign_flip_test([1.0] * 25, num_samples=0)
    with pytest.raises(ConfigError, match="max_exact"):
        stats.sign_flip_test([1.0], max_exact=-1)
