"""The paired comparison of two arms: the exact sign-flip test and its summary.

Arms are paired by seed; `paired_difference` reports the mean gain, its Student t
interval, the exact sign-flip p-value (one test for every number of seeds) and the
Wilcoxon p-value as a second opinion. Re-exported by `keras_tl.scores.stats`; why
this test, and why three seeds can never be significant: docs/statistics-tests.md.
"""

import warnings

import numpy as np

from keras_tl.errors import DataError
from keras_tl.scores._checks import (
    as_vector,
    check_bounds,
    check_fraction,
    check_whole_number,
    check_within,
)
from keras_tl.scores.intervals import (
    OUTSIDE_BOUNDS,
    RELATIVE_TOLERANCE,
    TIE_TOLERANCE,
    describe,
    float_or_none,
)

# The sign-flip test enumerates all 2**n sign patterns up to this many non-zero
# differences (2**19 sums, a few MB) and draws random patterns beyond.
MAX_EXACT_PAIRS = 20
MONTE_CARLO_SAMPLES = 100_000
MONTE_CARLO_SEED = 0


def sign_flip_test(
    differences,
    max_exact=MAX_EXACT_PAIRS,
    num_samples=MONTE_CARLO_SAMPLES,
    seed=MONTE_CARLO_SEED,
):
    """The exact two-sided sign-flip permutation test of paired differences.

    Under the null hypothesis each difference `d_i` is symmetric about zero, so
    all `2**n` sign patterns `s` are equally likely (Fisher, 1935; Pitman, 1937).
    The p-value is the fraction of patterns with `|sum(s * d)| >= |sum(d)|` (sums
    within `1e-9 * sum(|d|)` of each other count as equal). Zero differences are
    dropped first, which leaves the p-value unchanged. With at most `max_exact`
    non-zero differences every pattern is enumerated; beyond, `num_samples` random
    patterns are drawn from a generator seeded with `seed` and
    `p = (1 + count) / (1 + num_samples)` (Phipson and Smyth, 2010), never 0.

    The smallest p-value `n` non-zero differences can reach is `2 / 2**n`: 0.25
    for 3, 0.0625 for 5, 0.03125 for 6. Why this test, and why it never rewards
    noise: docs/statistics-tests.md ("The paired test").

    Args:
        differences: sequence of float. One paired difference per seed.
        max_exact: int. Enumerate exactly up to this many non-zero differences.
            Defaults to `20`.
        num_samples: int. Random sign patterns drawn beyond `max_exact`.
            Defaults to `100_000` (Monte-Carlo standard error below 0.0016).
        seed: int. Seed of the Monte-Carlo draws. Defaults to `0`.

    Returns:
        A dict with keys `p_value` (float in `(0, 1]`), `method` (`"exact"` or
        `"monte_carlo"`), `num_patterns` (int: `2**m` sign patterns of the `m`
        non-zero differences when exact, `num_samples` when Monte-Carlo) and
        `min_p_value` (float: the smallest p-value this test could have given
        these `n` pairs: `2 / 2**m`, or `1 / (1 + num_samples)`).

    Example:

    >>> from keras_tl.scores import stats
    >>> stats.sign_flip_test([1.0, 2.0, 3.0])["p_value"]
    0.25
    """
    differences = as_vector(differences, "differences")
    if differences.size == 0:
        raise DataError(
            "differences is empty. Expected at least one paired difference. "
            "Check that at least one seed finished in both arms."
        )
    for name, value, least in (
        ("max_exact", max_exact, 0),
        ("num_samples", num_samples, 1),
    ):
        check_whole_number(value, name, f"Use the default, or e.g. {name}=20.", least)
    nonzero = differences[differences != 0.0]
    num_nonzero = int(nonzero.size)
    if num_nonzero == 0:
        return {
            "p_value": 1.0, "method": "exact", "num_patterns": 1, "min_p_value": 1.0,
        }
    # A sum within the tie tolerance of the observed one counts as reaching it.
    tolerance = TIE_TOLERANCE * float(np.sum(np.abs(nonzero)))
    threshold = abs(float(np.sum(nonzero))) - tolerance
    if num_nonzero <= max_exact:
        # All sums with the first sign fixed to +1; |sum| is symmetric in the sign
        # flip of the whole pattern, so this half gives the same fraction.
        sums = nonzero[:1]
        for value in nonzero[1:]:
            sums = np.concatenate((sums + value, sums - value))
        count = int(np.count_nonzero(np.abs(sums) >= threshold))
        return {
            "p_value": count / sums.size,
            "method": "exact",
            "num_patterns": 2**num_nonzero,
            "min_p_value": 1.0 / sums.size,
        }
    rng = np.random.default_rng(seed)
    n = int(differences.size)
    chunk = max(1, min(int(num_samples), (1 << 22) // n))
    count, drawn = 0, 0
    while drawn < num_samples:
        size = min(chunk, int(num_samples) - drawn)
        signs = rng.integers(0, 2, size=(size, n), dtype=np.int8).astype(np.float64)
        sums = (2.0 * signs - 1.0) @ differences
        count += int(np.count_nonzero(np.abs(sums) >= threshold))
        drawn += size
    return {
        "p_value": (1.0 + count) / (1.0 + num_samples),
        "method": "monte_carlo",
        "num_patterns": int(num_samples),
        "min_p_value": 1.0 / (1.0 + num_samples),
    }


def min_pairs_for_significance(alpha=0.05):
    """The fewest seeds with which the sign-flip test can reach `p < alpha`.

    The smallest p-value of the exact sign-flip test with `n` pairs is `2 / 2**n`
    (all differences of one sign and equal size), so this is the smallest `n` with
    `2 / 2**n < alpha`: 6 at `alpha = 0.05`, 8 at `0.01`. With fewer seeds no
    result, however large, can be called significant. For a gain that Holm adjusts
    within a family of `m` comparisons, the smallest p-value is multiplied by up
    to `m`: pass `alpha / m` for the worst case.

    Args:
        alpha: float. Significance level, strictly between 0 and 1. Defaults to
            `0.05`.

    Returns:
        An int.

    Example:

    >>> from keras_tl.scores import stats
    >>> stats.min_pairs_for_significance(0.05)
    6
    """
    alpha = check_fraction(alpha, "alpha", "0.05")
    n = 1
    while 2.0 ** (1 - n) >= alpha:
        n += 1
    return n


def paired_difference(
    values, baseline, higher_is_better=True, confidence=0.95, bounds=None
):
    """Compares two arms paired by seed: mean gain, interval and the exact test.

    The per-pair difference is direction-adjusted so that a positive gain always
    means an improvement: `d = values - baseline` when higher is better and
    `d = baseline - values` when lower is better. Reported are the `summarize`
    statistics of `d`, the p-value of the exact sign-flip test (`sign_flip_test`),
    the two-sided Wilcoxon signed-rank p-value as a second opinion (Wilcoxon, 1945;
    only with `n >= 6` pairs) and the effect size `mean(d) / std(d)` (Cohen's d_z).
    A difference within float round-off of zero (`1e-12` relative to the larger of
    the pair) counts as zero for both tests.

    The t interval and the exact test can disagree at few seeds (+2, +2, +3 test
    images: an interval above zero, but p = 0.25); the verdict follows the test.

    With `bounds=(low, high)`, the bounds of the metric itself, every value and
    baseline must lie inside them, and the interval of the gain is intersected
    with `[-(high - low), high - low]`.

    Args:
        values: sequence of float. The metric of the arm under test, one per seed.
        baseline: sequence of float. The metric of the baseline arm (e.g. scratch)
            for the same seeds, in the same order.
        higher_is_better: bool. Direction of the metric (`True` for accuracy,
            `False` for a loss or an error). Defaults to `True`.
        confidence: float. Coverage of the interval. Defaults to `0.95`.
        bounds: pair of float `(low, high)`, or None. Bounds of the metric (not of
            the difference). Defaults to `None` (unbounded).

    Returns:
        A dict with keys `mean`, `std`, `sem`, `n`, `ci_low`, `ci_high`,
        `p_value`, `p_value_method`, `min_p_value`, `wilcoxon_p_value` and
        `effect_size`. `p_value_method` is `"sign_flip_exact"` or
        `"sign_flip_monte_carlo"`; `min_p_value` is the smallest p-value the test
        could have given these pairs (`2 / 2**m` for `m` non-zero differences).
        Undefined entries are `None`: `std`, the interval, the p-value entries
        and `effect_size` when `n < 2`; the interval and `effect_size` when the
        differences have no spread; `wilcoxon_p_value` when `n < 6`.

    Example:

    >>> from keras_tl.scores import stats
    >>> gain = stats.paired_difference([0.81, 0.84, 0.80], [0.78, 0.80, 0.79])
    >>> round(gain["mean"], 3), gain["p_value"]
    (0.027, 0.25)
    >>> stats.verdict(gain["mean"], gain["p_value"])
    'inconclusive'
    """
    from scipy import stats as scipy_stats

    check_fraction(confidence, "confidence", "0.95")
    bounds = check_bounds(bounds)
    values = as_vector(values, "values")
    baseline = as_vector(baseline, "baseline")
    if values.size != baseline.size:
        raise DataError(
            f"values and baseline must pair up one to one. Received: "
            f"{values.size} values and {baseline.size} baseline values. "
            "Pass the two arms for the same seeds, in the same order."
        )
    if values.size == 0:
        raise DataError(
            "values and baseline are empty. Expected at least one pair. "
            "Check that at least one seed finished in both arms."
        )
    difference_bounds = None
    if bounds is not None:
        check_within(values, bounds, "values", OUTSIDE_BOUNDS)
        check_within(baseline, bounds, "baseline", OUTSIDE_BOUNDS)
        width = bounds[1] - bounds[0]
        difference_bounds = (-width, width)
    differences = values - baseline if higher_is_better else baseline - values
    result = describe(differences, confidence, difference_bounds)
    n, mean, std = result["n"], result["mean"], result["std"]

    # A difference within float round-off of 0 (0.30000000000000004 - 0.3) is 0
    # for the tests, so six seeds of round-off cannot make a significant gain.
    magnitude = np.maximum(1.0, np.maximum(np.abs(values), np.abs(baseline)))
    tested = np.where(
        np.abs(differences) <= RELATIVE_TOLERANCE * magnitude, 0.0, differences
    )
    p_value = p_value_method = min_p_value = None
    effect_size = wilcoxon_p_value = None
    if n >= 2:
        test = sign_flip_test(tested)
        p_value, min_p_value = test["p_value"], test["min_p_value"]
        p_value_method = f"sign_flip_{test['method']}"
        if std > 0.0:
            effect_size = mean / std
    if n >= 6:
        if np.all(tested == 0.0):
            wilcoxon_p_value = 1.0
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wilcoxon_p_value = float_or_none(scipy_stats.wilcoxon(tested).pvalue)
    result.update(
        p_value=p_value,
        p_value_method=p_value_method,
        min_p_value=min_p_value,
        wilcoxon_p_value=wilcoxon_p_value,
        effect_size=effect_size,
    )
    return result
