"""Tests for keras_tl.scores.stats: summaries, paired differences, Holm, verdicts, ranks.

The sign-flip test, intervals (no-width, bounded) and inconclusive explanations
have their own files: test_stats_sign_flip.py, test_stats_intervals.py and
test_stats_inconclusive.py.
"""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from keras_tl.errors import ConfigError, DataError
from keras_tl.scores import stats

# summarize


def test_summarize_matches_a_hand_computed_case():
    summary = stats.summarize([1.0, 2.0, 3.0, 4.0])
    # mean 2.5; std = sqrt(5/3); sem = std / 2; t_{0.975, 3} = 3.182446.
    half_width = 3.182446 * 1.2909944 / 2.0
    assert summary["n"] == 4
    assert summary["mean"] == pytest.approx(2.5)
    assert summary["std"] == pytest.approx(1.2909944, abs=1e-7)
    assert summary["sem"] == pytest.approx(0.6454972, abs=1e-7)
    assert summary["ci_low"] == pytest.approx(2.5 - half_width, abs=1e-6)
    assert summary["ci_high"] == pytest.approx(2.5 + half_width, abs=1e-6)


def test_summarize_matches_scipy_student_t_interval():
    values = np.random.default_rng(0).normal(0.8, 0.05, size=7)
    summary = stats.summarize(values, confidence=0.9)
    low, high = scipy_stats.t.interval(
        0.9, df=6, loc=values.mean(), scale=scipy_stats.sem(values)
    )
    assert summary["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    assert summary["ci_low"] == pytest.approx(low, rel=1e-12)
    assert summary["ci_high"] == pytest.approx(high, rel=1e-12)


def test_summarize_of_one_value_has_undefined_spread_and_is_json_friendly():
    summary = stats.summarize([0.7])
    assert summary == {
        "mean": 0.7, "std": None, "sem": None, "n": 1, "ci_low": None, "ci_high": None,
    }
    assert json.loads(json.dumps(summary)) == summary


def test_summarize_returns_python_types():
    summary = stats.summarize(np.array([1.0, 2.0], dtype=np.float32))
    assert all(type(summary[key]) is float for key in ("mean", "std", "ci_low"))
    assert type(summary["n"]) is int


def test_summarize_rejects_empty_and_non_finite_values():
    with pytest.raises(DataError, match="empty"):
        stats.summarize([])
    with pytest.raises(DataError, match="finite"):
        stats.summarize([1.0, float("nan")])
    with pytest.raises(DataError, match="1-D"):
        stats.summarize([[1.0, 2.0]])


def test_summarize_rejects_a_confidence_outside_zero_one():
    with pytest.raises(ConfigError, match="confidence"):
        stats.summarize([1.0, 2.0], confidence=95)


# paired_difference


def test_paired_difference_matches_scipy_paired_tests():
    rng = np.random.default_rng(1)
    baseline = rng.normal(0.70, 0.03, size=8)
    values = baseline + rng.normal(0.02, 0.02, size=8)
    result = stats.paired_difference(values, baseline)
    differences = values - baseline
    assert result["n"] == 8
    assert result["mean"] == pytest.approx(differences.mean(), rel=1e-12)
    # Oracle: SciPy's own exact paired permutation test (all 2**8 within-pair swaps).
    permutation = scipy_stats.permutation_test(
        (values, baseline),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=np.inf,
        alternative="two-sided",
    )
    assert result["p_value"] == pytest.approx(permutation.pvalue, rel=1e-12)
    assert result["p_value_method"] == "sign_flip_exact"
    assert result["min_p_value"] == 2 / 2**8
    assert result["wilcoxon_p_value"] == pytest.approx(
        scipy_stats.wilcoxon(values, baseline).pvalue, rel=1e-10
    )
    assert result["effect_size"] == pytest.approx(
        differences.mean() / differences.std(ddof=1), rel=1e-12
    )
    low, high = scipy_stats.t.interval(
        0.95, df=7, loc=differences.mean(), scale=scipy_stats.sem(differences)
    )
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((low, high))


def test_paired_difference_hand_computed_case():
    # Differences [1, 2, 3, 4], all positive: of the 2**4 sign patterns only
    # all-plus (+10) and all-minus (-10) reach |sum| = 10, so p = 2 / 16.
    result = stats.paired_difference([2.0, 4.0, 6.0, 8.0], [1.0, 2.0, 3.0, 4.0])
    assert result["mean"] == pytest.approx(2.5)
    assert result["effect_size"] == pytest.approx(2.5 / 1.2909944, abs=1e-6)
    assert result["p_value"] == 0.125
    # t_{0.975, 3} = 3.182446, sem = 1.2909944 / 2.
    assert result["ci_low"] == pytest.approx(2.5 - 3.182446 * 0.6454972, abs=1e-6)
    assert result["ci_high"] == pytest.approx(2.5 + 3.182446 * 0.6454972, abs=1e-6)
    assert result["wilcoxon_p_value"] is None  # fewer than 6 pairs


def test_paired_difference_gain_is_positive_when_a_lower_loss_improves():
    loss_transfer = [0.30, 0.28, 0.35, 0.31, 0.33, 0.29]
    loss_scratch = [0.40, 0.41, 0.45, 0.39, 0.36, 0.38]
    lower = stats.paired_difference(loss_transfer, loss_scratch, higher_is_better=False)
    higher = stats.paired_difference(loss_transfer, loss_scratch, higher_is_better=True)
    # Gains 0.10, 0.13, 0.10, 0.08, 0.03, 0.09: mean 0.53 / 6.
    assert lower["mean"] == pytest.approx(0.53 / 6)
    assert lower["ci_low"] > 0
    assert lower["effect_size"] > 0
    assert higher["mean"] == pytest.approx(-lower["mean"])
    # Six gains of one sign: only the all-plus and all-minus patterns reach |sum|.
    assert lower["p_value"] == 2 / 2**6
    assert higher["p_value"] == lower["p_value"]
    assert stats.verdict(lower["mean"], lower["p_value"]) == "positive"
    assert stats.verdict(higher["mean"], higher["p_value"]) == "negative"


def test_paired_difference_constant_differences_follow_the_documented_rule():
    # 0.3 - 0.2, 0.8 - 0.7 and 0.2 - 0.1 differ in the last bits; still "identical".
    shifted = stats.paired_difference([0.3, 0.8, 0.2], [0.2, 0.7, 0.1])
    assert len({0.3 - 0.2, 0.8 - 0.7, 0.2 - 0.1}) == 3
    assert shifted["std"] == 0.0
    # No interval of zero width.
    assert shifted["ci_low"] is None and shifted["ci_high"] is None
    # The sign-flip test: 2 of the 2**3 sign patterns reach |mean| = 0.1.
    assert shifted["p_value"] == 0.25
    assert shifted["effect_size"] is None
    assert stats.verdict(shifted["mean"], shifted["p_value"]) == "inconclusive"
    six = stats.paired_difference([0.1] * 6, [0.0] * 6)
    assert six["p_value"] == 2 / 2**6
    same = stats.paired_difference([0.3] * 6, [0.3] * 6)
    assert same["p_value"] == 1.0
    assert same["wilcoxon_p_value"] == 1.0
    assert same["effect_size"] is None
    assert stats.verdict(same["mean"], same["p_value"]) == "inconclusive"


def test_paired_difference_of_one_pair_has_no_tests():
    result = stats.paired_difference([0.9], [0.8])
    assert result["mean"] == pytest.approx(0.1)
    for key in (
        "std", "ci_low", "ci_high", "p_value", "p_value_method", "min_p_value",
        "wilcoxon_p_value", "effect_size",
    ):
        assert result[key] is None


def test_paired_difference_rejects_a_length_mismatch():
    with pytest.raises(DataError, match="3 values and 2 baseline"):
        stats.paired_difference([1.0, 2.0, 3.0], [1.0, 2.0])


# holm


def test_holm_matches_a_hand_worked_example():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.04*1, 0.06) = 0.06.
    adjusted = stats.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_is_monotone_in_p_order():
    p_values = [0.5, 0.2, 0.9, 0.01, 0.3]
    adjusted = stats.holm(p_values)
    assert max(adjusted) == 1.0
    order = np.argsort(p_values)
    assert np.all(np.diff(np.asarray(adjusted)[order]) >= 0)
    assert all(a >= p for a, p in zip(adjusted, p_values))


def test_holm_passes_none_through_without_counting_it():
    adjusted = stats.holm([0.01, None, 0.04, float("nan")])
    assert adjusted[1] is None and adjusted[3] is None
    assert adjusted[0] == pytest.approx(0.02)  # m = 2, not 4
    assert adjusted[2] == pytest.approx(0.04)
    assert stats.holm([]) == []
    assert stats.holm([None]) == [None]


def test_holm_rejects_values_outside_zero_one():
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        stats.holm([0.01, 1.5])


# verdict


@pytest.mark.parametrize(
    "mean, p_value, expected",
    [
        (0.02, 0.01, "positive"),
        (-0.02, 0.01, "negative"),
        (0.02, 0.05, "inconclusive"),
        (0.02, 0.2, "inconclusive"),
        (0.02, None, "inconclusive"),
        (0.0, 0.0, "inconclusive"),
    ],
)
def test_verdict(mean, p_value, expected):
    assert stats.verdict(mean, p_value) == expected


def test_verdict_uses_alpha():
    assert stats.verdict(0.1, 0.07, alpha=0.1) == "positive"
    with pytest.raises(ConfigError, match="alpha"):
        stats.verdict(0.1, 0.01, alpha=5)


# rank_agreement


def test_rank_agreement_matches_scipy():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=9)
    realised = scores + rng.normal(scale=0.5, size=9)
    result = stats.rank_agreement(scores, realised)
    assert result["n"] == 9
    assert result["kendall_tau"] == pytest.approx(
        scipy_stats.kendalltau(scores, realised)[0]
    )
    assert result["weighted_tau"] == pytest.approx(
        scipy_stats.weightedtau(scores, realised)[0]
    )
    assert result["pearson"] == pytest.approx(scipy_stats.pearsonr(scores, realised)[0])


def test_rank_agreement_hand_computed_kendall_tau():
    # Five concordant pairs, one discordant: tau = (5 - 1) / 6.
    result = stats.rank_agreement([0.1, 0.4, 0.3, 0.9], [1.0, 2.0, 3.0, 4.0])
    assert result["kendall_tau"] == pytest.approx(4 / 6)
    perfect = stats.rank_agreement([1, 2, 3, 4], [10, 20, 30, 40])
    assert perfect["kendall_tau"] == pytest.approx(1.0)
    assert perfect["weighted_tau"] == pytest.approx(1.0)
    assert perfect["pearson"] == pytest.approx(1.0)


def test_rank_agreement_is_undefined_for_few_pairs_or_a_constant_side():
    undefined = {"kendall_tau": None, "weighted_tau": None, "pearson": None}
    assert stats.rank_agreement([1, 2], [3, 4]) == {**undefined, "n": 2}
    assert stats.rank_agreement([1, 2, 3], [5, 5, 5]) == {**undefined, "n": 3}
    assert stats.rank_agreement([1, 1, 1], [1, 2, 3]) == {**undefined, "n": 3}


def test_rank_agreement_drops_undefined_pairs():
    result = stats.rank_agreement([1, None, 2, 3, 4], [1, 5, 2, float("nan"), 3])
    assert result["n"] == 3
    assert result["kendall_tau"] == pytest.approx(1.0)


def test_rank_agreement_treats_round_off_as_ties():
    # 3.0, 3.0000000000000004 and 2.999999999999999 are one value: pairs among the
    # first three candidates are tied on the realised side, and each of them is
    # discordant with the fourth. C = 0, D = 3, n0 = 6 pairs, 3 tied in y, none
    # in x: tau_b = (0 - 3) / sqrt(6 * (6 - 3)).
    realised = [3.0, 3.0000000000000004, 2.999999999999999, 1.0]
    result = stats.rank_agreement([1.0, 2.0, 3.0, 4.0], realised)
    assert result["kendall_tau"] == pytest.approx(-3 / math.sqrt(18), abs=1e-12)
    # Read as three different values they would give (1 - 5) / 6 instead.
    assert result["kendall_tau"] != pytest.approx(-4 / 6)
    # The same three values alone are a constant side: nothing to correlate.
    alone = stats.rank_agreement([1.0, 2.0, 3.0], realised[:3])
    assert alone == {"kendall_tau": None, "weighted_tau": None, "pearson": None, "n": 3}


def test_rank_agreement_snaps_ties_on_both_sides_and_near_zero():
    # Scores 1.0 and 1.0000000000000002 tie: 5 concordant pairs, 1 tied in x:
    # tau_b = 5 / sqrt(6 * 5).
    result = stats.rank_agreement([1.0, 1.0000000000000002, 2.0, 3.0], [1, 2, 3, 4])
    assert result["kendall_tau"] == pytest.approx(5 / math.sqrt(30), abs=1e-12)
    # A gain of 0.3 - 0.2 - 0.1 (= -2.8e-17) is a gain of 0 when gains go to 0.1.
    gains = [0.0, 0.3 - 0.2 - 0.1, 0.05, 0.1]
    assert gains[1] != 0.0
    result = stats.rank_agreement([1.0, 2.0, 3.0, 4.0], gains)
    assert result["kendall_tau"] == pytest.approx(5 / math.sqrt(30), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(-3, 3)), min_size=3, max_size=9),
    st.integers(0, 2**32 - 1),
)
def test_rank_agreement_ignores_round_off_perturbations(pairs, seed):
    x = np.array([float(a) + 1.0 for a, _ in pairs])
    y = np.array([float(b) / 10.0 for _, b in pairs])
    rng = np.random.default_rng(seed)
    x_noisy = x * (1.0 + rng.integers(-4, 5, x.size) * 2.0**-52)
    y_noisy = y * (1.0 + rng.integers(-4, 5, y.size) * 2.0**-52) + rng.integers(
        -1, 2, y.size
    ) * 1e-17
    result = stats.rank_agreement(x_noisy, y_noisy)
    if np.all(x == x[0]) or np.all(y == y[0]):
        assert result["kendall_tau"] is None
    else:
        assert result["kendall_tau"] == pytest.approx(scipy_stats.kendalltau(x, y)[0])


def test_rank_agreement_rejects_a_length_mismatch():
    with pytest.raises(DataError, match="3 scores and 2 realised"):
        stats.rank_agreement([1, 2, 3], [1, 2])


# matching_size


def test_matching_size_interpolates_on_the_crossing_segment():
    sizes = [100, 200, 400, 800]
    means = [0.50, 0.60, 0.70, 0.72]
    # 0.65 lies half way between 0.60 (200) and 0.70 (400).
    result = stats.matching_size(sizes, means, 0.65)
    assert result["size"] == pytest.approx(300.0)
    assert result["bound"] == "="
    # 0.71 lies half way between 0.70 (400) and 0.72 (800).
    result = stats.matching_size(sizes, means, 0.71)
    assert result["size"] == pytest.approx(600.0)
    assert result["bound"] == "="
    assert stats.matching_size(sizes, means, 0.70) == {"size": 400.0, "bound": "="}


def test_matching_size_reports_bounds_outside_the_curve():
    sizes, means = [100, 200, 400], [0.5, 0.6, 0.7]
    assert stats.matching_size(sizes, means, 0.4) == {"size": 100.0, "bound": "<="}
    assert stats.matching_size(sizes, means, 0.5) == {"size": 100.0, "bound": "<="}
    assert stats.matching_size(sizes, means, 0.9) == {"size": 400.0, "bound": ">"}


def test_matching_size_uses_the_first_crossing_of_a_non_monotone_curve():
    sizes, means = [100, 200, 300, 400], [0.5, 0.7, 0.6, 0.8]
    result = stats.matching_size(sizes, means, 0.65)
    assert result["size"] == pytest.approx(175.0)
    assert result["bound"] == "="


def test_matching_size_for_a_lower_is_better_metric():
    sizes, losses = [100, 200, 400], [0.9, 0.6, 0.5]
    # Loss 0.7 is reached between 100 (0.9) and 200 (0.6): 100 + 2/3 * 100.
    result = stats.matching_size(sizes, losses, 0.7, higher_is_better=False)
    assert result["size"] == pytest.approx(100 + 200 / 3)
    assert result["bound"] == "="
    assert stats.matching_size(sizes, losses, 0.95, higher_is_better=False) == {
        "size": 100.0, "bound": "<=",
    }
    assert stats.matching_size(sizes, losses, 0.4, higher_is_better=False) == {
        "size": 400.0, "bound": ">",
    }


def test_matching_size_of_an_undefined_value_is_none():
    result = stats.matching_size([1, 2], [0.5, 0.6], None)
    assert result == {"size": None, "bound": None}
    result = stats.matching_size([1, 2], [None, float("nan")], 0.5)
    assert result == {"size": None, "bound": None}


def test_matching_size_skips_sizes_whose_mean_is_undefined():
    result = stats.matching_size([100, 200, 400], [0.5, None, 0.7], 0.6)
    assert result["size"] == pytest.approx(250.0)
    assert result["bound"] == "="


def test_matching_size_rejects_unsorted_sizes_and_length_mismatch():
    with pytest.raises(DataError, match="strictly increasing"):
        stats.matching_size([200, 100], [0.5, 0.6], 0.55)
    with pytest.raises(DataError, match="same length"):
        stats.matching_size([100, 200], [0.5], 0.55)


def test_results_contain_no_nan():
    result = stats.paired_difference([0.5, 0.5], [0.5, 0.5])
    for value in result.values():
        assert value is None or not (isinstance(value, float) and math.isnan(value))
    json.dumps(result, allow_nan=False)
