"""Tests for `explain_inconclusive`: what an inconclusive gain rules out, and the
seeds that would decide it.

Oracles: hand computation with Student t quantiles from tables, and SciPy's t
quantiles for the defining inequality of the seed count.
"""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from keras_tl.errors import ConfigError, DataError
from keras_tl.scores import stats

# Student t quantiles 0.975 from tables, by degrees of freedom.
T_975 = {2: 4.302653, 5: 2.570582, 6: 2.446912, 16: 2.119905, 17: 2.109816}


def _three_seed_gain():
    # Gains 0.01, 0.03, 0.05: mean 0.03, std 0.02, sem 0.02 / sqrt(3) = 0.0115470.
    return stats.paired_difference([0.81, 0.83, 0.85], [0.80, 0.80, 0.80])


def test_hand_computed_explanation():
    gain = _three_seed_gain()
    explanation = stats.explain_inconclusive(gain)
    # 95% interval: 0.03 -+ 4.302653 * 0.0115470 = 0.03 -+ 0.0496828.
    assert explanation["ruled_out_above"] == pytest.approx(0.0796828, abs=1e-6)
    assert explanation["ruled_out_below"] == pytest.approx(-0.0196828, abs=1e-6)
    # t_{n-1} * 0.02 / sqrt(n) <= 0.02  <=>  t_{n-1} <= sqrt(n):
    # n = 6: 2.570582 > 2.449490; n = 7: 2.446912 <= 2.645751.
    assert T_975[5] > math.sqrt(6) and T_975[6] <= math.sqrt(7)
    assert explanation["seeds_needed"] == 7
    assert explanation["min_seeds_for_test"] == 6
    assert explanation["text"] == (
        "inconclusive: gains above +7.97 points and below -1.97 points are ruled "
        "out (95% interval); about 7 seeds would resolve +-2 points; the exact "
        "test cannot reach p < 0.05 with fewer than 6 seeds"
    )


def test_finer_resolution_needs_more_seeds_hand_computed():
    # t_{n-1} * 0.02 / sqrt(n) <= 0.01  <=>  t_{n-1} / sqrt(n) <= 0.5:
    # n = 17: 2.119905 / 4.123106 = 0.514 > 0.5; n = 18: 2.109816 / 4.242641 = 0.497.
    assert T_975[16] / math.sqrt(17) > 0.5 >= T_975[17] / math.sqrt(18)
    explanation = stats.explain_inconclusive(_three_seed_gain(), resolution=0.01)
    assert explanation["seeds_needed"] == 18
    assert "about 18 seeds would resolve +-1 points" in explanation["text"]


def test_units_and_alpha_follow_the_arguments():
    explanation = stats.explain_inconclusive(
        _three_seed_gain(), scale=1.0, unit="", alpha=0.01
    )
    assert explanation["min_seeds_for_test"] == 8
    assert explanation["text"] == (
        "inconclusive: gains above +0.0797 and below -0.0197 are ruled out (95% "
        "interval); about 7 seeds would resolve +-0.02; the exact test cannot "
        "reach p < 0.01 with fewer than 8 seeds"
    )


def test_enough_seeds_drop_the_test_clause_and_say_they_resolve():
    # Eight seeds, gains .02 -.01 .01 0 .03 -.02 0 .01: mean 0.005, sum of squared
    # deviations 18e-4, std = sqrt(18e-4 / 7) = 0.0160357. Resolving +-0.02 needs
    # t_{n-1} / sqrt(n) <= 0.02 / 0.0160357 = 1.2472: n = 4 gives 3.182446 / 2 =
    # 1.59, n = 5 gives 2.776445 / 2.236068 = 1.2416. Eight seeds are enough, and
    # the exact test could decide with them, so neither clause is a request.
    gain = stats.paired_difference(
        [0.82, 0.79, 0.81, 0.80, 0.83, 0.78, 0.80, 0.81], [0.80] * 8
    )
    assert gain["std"] == pytest.approx(0.0160357, abs=1e-6)
    explanation = stats.explain_inconclusive(gain)
    assert explanation["seeds_needed"] == 5
    assert "exact test" not in explanation["text"]
    assert explanation["text"].startswith("inconclusive: gains above +")
    assert explanation["text"].endswith("; 8 seeds already resolve +-2 points")


def test_identical_differences_rule_nothing_out_and_need_no_seed_count():
    gain = stats.paired_difference([0.55, 0.65, 0.75], [0.50, 0.60, 0.70])
    explanation = stats.explain_inconclusive(gain)
    assert explanation["ruled_out_above"] is None
    assert explanation["ruled_out_below"] is None
    assert explanation["seeds_needed"] is None
    assert explanation["text"] == (
        "inconclusive: all 3 differences equal +5 points, so there is no interval "
        "and nothing is ruled out; the exact test cannot reach p < 0.05 with fewer "
        "than 6 seeds"
    )


def test_one_pair_or_an_insufficient_gain():
    one = stats.explain_inconclusive(stats.paired_difference([0.9], [0.8]))
    assert one["seeds_needed"] is None and one["ruled_out_above"] is None
    assert one["text"].startswith("inconclusive: 1 pair: no interval")
    # What results.py stores for too few seeds: n, mean and p_value only.
    insufficient = stats.explain_inconclusive({"n": 0, "mean": None, "p_value": None})
    assert insufficient["seeds_needed"] is None
    assert insufficient["text"].startswith("inconclusive: 0 pairs: no interval")


@settings(max_examples=60, deadline=None)
@given(st.floats(1e-4, 1.0), st.floats(1e-3, 0.5), st.sampled_from([0.9, 0.95, 0.99]))
def test_seeds_needed_is_the_smallest_n_that_resolves(std, resolution, confidence):
    gain = {"mean": 0.01, "std": std, "n": 3, "ci_low": -0.1, "ci_high": 0.12}
    n = stats.explain_inconclusive(gain, resolution, confidence)["seeds_needed"]

    def half_width(k):
        return scipy_stats.t.ppf(0.5 + confidence / 2, k - 1) * std / math.sqrt(k)

    assert n >= 2
    assert half_width(n) <= resolution
    if n > 2:
        assert half_width(n - 1) > resolution


def test_bad_arguments_are_rejected():
    with pytest.raises(ConfigError, match="resolution"):
        stats.explain_inconclusive(_three_seed_gain(), resolution=0)
    with pytest.raises(ConfigError, match="confidence"):
        stats.explain_inconclusive(_three_seed_gain(), confidence=95)
    with pytest.raises(DataError, match="gain must be a dict"):
        stats.explain_inconclusive([0.01, 0.02])
