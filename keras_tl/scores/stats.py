"""Statistics for repeated trials: intervals, the paired test, Holm, rank agreement.

Every function takes plain numbers or NumPy arrays and returns Python floats, ints,
strings or plain dicts, so results serialise to JSON as they are. A value that is
undefined (a standard deviation from one trial, a correlation with a constant side,
an interval of zero width) is `None`, never NaN.

**The paired test.** Arms are paired by seed, and a gain is tested with one test for
every number of seeds: the exact two-sided sign-flip permutation test on the paired
differences `d` (Fisher, 1935, section 21; Pitman, 1937). Under the null hypothesis
"the arm makes no difference" each `d_i` is as likely to have come out as `-d_i`,
so all `2**n` sign patterns are equally likely; the p-value is the fraction of them
whose `|sum(s * d)|` reaches the observed `|sum(d)|`. It is enumerated exactly up to
20 non-zero differences (zero differences are dropped, which leaves the p-value
unchanged) and estimated beyond from 100,000 random sign patterns drawn with a fixed
seed, as `(1 + count) / (1 + B)` so that it is never 0 (Phipson and Smyth, 2010).
The test assumes only that the differences are symmetric about 0 under the null, and
its p-value never rewards noise: when the mean gain is at or above 0, making any
difference larger (or a negative one positive) never makes the p-value larger, and
identical differences get the smallest p-value any data can get, `2 / 2**n`.
That floor matters: **with 3 seeds p >= 0.25, with 5 seeds p >= 0.0625, and only
from 6 seeds (p >= 0.03125) can a gain be significant at 0.05** (more when Holm
adjusts for several comparisons; see `min_pairs_for_significance`). A Student t test
can give p = 0.02 from 3 seeds, but only by trusting a normal model that 3 values
cannot check, and it rewards a little noise over none (+2, +2, +3 test images gave
p = 0.02, +5, +5, +5 gave no t statistic at all).

**Intervals.** Means get the Student t interval (Student, 1908). When the values
have no spread (one value, or all identical up to float round-off) there is no
interval, and `ci_low` / `ci_high` are `None` rather than a zero-width interval that
would claim certainty. For a metric with known bounds (accuracy, AUC: `[0, 1]`)
pass `bounds=` and the interval is intersected with the bounds; see `summarize` for
why clipping, rather than a logit transform or a bootstrap.

**Multiplicity, verdicts, rank agreement.** Holm (1979) adjusts the p-values of a
family of comparisons; `verdict` turns a mean and an adjusted p-value into
`positive` / `negative` / `inconclusive`, and `explain_inconclusive` says which gains
an inconclusive result still rules out and how many seeds would decide.
`rank_agreement` compares a cheap score's ranking with realised gains by Kendall's
tau-b, Vigna's weighted tau and Pearson's r, after snapping values equal up to float
round-off to ties. docs/statistics-tests.md explains each choice with examples.

References:
    Fisher (1935), "The Design of Experiments", Oliver and Boyd, section 21.
    Pitman (1937), "Significance tests which may be applied to samples from any
        populations", Supplement to the Journal of the Royal Statistical Society
        4(1).
    Phipson and Smyth (2010), "Permutation p-values should never be zero",
        Statistical Applications in Genetics and Molecular Biology 9(1).
    Student (1908), "The probable error of a mean", Biometrika 6(1).
    Mandelkern (2002), "Setting confidence intervals for bounded parameters",
        Statistical Science 17(2).
    Wilcoxon (1945), "Individual comparisons by ranking methods", Biometrics
        Bulletin 1(6).
    Holm (1979), "A simple sequentially rejective multiple test procedure",
        Scandinavian Journal of Statistics 6(2).
    Kendall (1938), "A new measure of rank correlation", Biometrika 30(1/2);
        Kendall (1945), "The treatment of ties in ranking problems", Biometrika
        33(3).
    Vigna (2015), "A weighted correlation index for rankings with ties", WWW 2015.
"""

import math
import warnings

import numpy as np

from keras_tl.errors import ConfigError, DataError

__all__ = [
    "summarize",
    "paired_difference",
    "sign_flip_test",
    "min_pairs_for_significance",
    "holm",
    "verdict",
    "explain_inconclusive",
    "rank_agreement",
    "matching_size",
]

# Values whose spread is below this fraction of their magnitude are treated as
# identical, so float round-off (0.3 - 0.2 != 0.5 - 0.4) cannot fake a variance.
_RELATIVE_TOLERANCE = 1e-12

# Two sums of sign-flipped differences, or two values being ranked, that differ by
# less than this fraction of their scale are ties: round-off must not decide a
# p-value or a ranking.
_TIE_TOLERANCE = 1e-9

# The sign-flip test enumerates all 2**n sign patterns up to this many non-zero
# differences (2**19 sums, a few MB) and draws random patterns beyond.
MAX_EXACT_PAIRS = 20
MONTE_CARLO_SAMPLES = 100_000
MONTE_CARLO_SEED = 0


def _as_vector(values, name):
    """Returns `values` as a finite 1-D float64 array, or raises `DataError`."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(
            f"{name} must be a sequence of numbers. Received: {name}={values!r}. "
            "Pass a list or 1-D NumPy array of floats (drop failed trials first)."
        ) from None
    if array.ndim != 1:
        raise DataError(
            f"{name} must be 1-D. Received: an array of shape {array.shape}. "
            "Pass one number per trial, e.g. a list of floats."
        )
    if not np.all(np.isfinite(array)):
        raise DataError(
            f"{name} must be finite numbers. Received: {name}={array.tolist()}. "
            "Drop failed trials (None / NaN / inf) before summarising."
        )
    return array


def _check_confidence(confidence):
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, (int, float))
        or not 0.0 < confidence < 1.0
    ):
        raise ConfigError(
            f"confidence must be a number strictly between 0 and 1. "
            f"Received: confidence={confidence!r}. Use e.g. confidence=0.95."
        )


def _check_bounds(bounds):
    """Returns `bounds` as a `(low, high)` pair of floats, or None."""
    if bounds is None:
        return None
    try:
        low, high = (float(bound) for bound in bounds)
    except (TypeError, ValueError):
        raise ConfigError(
            f"bounds must be a pair (low, high) of numbers or None. Received: "
            f"bounds={bounds!r}. Use e.g. bounds=(0, 1) for accuracy or AUC."
        ) from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(
            f"bounds must be two finite numbers with low < high. Received: "
            f"bounds={bounds!r}. Use e.g. bounds=(0, 1) for accuracy or AUC."
        )
    return low, high


def _check_within(array, bounds, name):
    low, high = bounds
    outside = array[(array < low) | (array > high)]
    if outside.size:
        raise DataError(
            f"{name} must lie within bounds=({low:g}, {high:g}). Received: "
            f"{outside.tolist()}. Pass the metric on the scale of its bounds (a "
            f"percentage needs bounds=(0, 100)), or pass bounds=None."
        )


def _is_undefined(value):
    if value is None:
        return True
    return isinstance(value, (float, np.floating)) and bool(np.isnan(value))


def _float_or_none(value):
    """Converts to a Python float, mapping NaN (and None) to None."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _t_quantile(confidence, df):
    from scipy import stats as scipy_stats

    return float(scipy_stats.t.ppf(0.5 + confidence / 2.0, df=df))


def _describe(array, confidence, bounds=None):
    """Mean, spread and Student t interval of a finite 1-D array (n >= 1).

    The interval is None when it would have no width (n < 2 or no spread) and is
    intersected with `bounds` (a `(low, high)` pair) when given.
    """
    n = int(array.size)
    mean = float(np.mean(array))
    result = {
        "mean": mean,
        "std": None,
        "sem": None,
        "n": n,
        "ci_low": None,
        "ci_high": None,
    }
    if n < 2:
        return result
    spread = float(np.max(np.abs(array - mean)))
    if spread <= _RELATIVE_TOLERANCE * max(1.0, float(np.max(np.abs(array)))):
        result.update(std=0.0, sem=0.0)
        return result
    std = float(np.std(array, ddof=1))
    sem = std / math.sqrt(n)
    half_width = _t_quantile(confidence, n - 1) * sem
    low, high = mean - half_width, mean + half_width
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    result.update(std=std, sem=sem, ci_low=float(low), ci_high=float(high))
    return result


def summarize(values, confidence=0.95, bounds=None):
    """Summarises repeated measurements: mean, spread and a Student t interval.

    The standard deviation uses `ddof=1` (the unbiased sample variance), the
    standard error is `std / sqrt(n)`, and the interval is
    `mean -+ t_{(1 + confidence) / 2, n - 1} * sem` (Student, 1908). When the
    interval would have no width (a single value, or values identical up to float
    round-off) it is undefined and `ci_low` / `ci_high` are `None`; `std` and `sem`
    are then `None` for a single value and `0.0` for identical values.

    A bounded metric (accuracy, AUC: `bounds=(0, 1)`) gets the Student t interval
    intersected with its bounds, so `0.952 [0.889, 1.014]` becomes
    `0.952 [0.889, 1.0]`. Why clipping: the true mean of a bounded metric lies
    inside its bounds, so removing the impossible part of an interval never changes
    whether it covers the truth, and the clipped interval keeps exactly the Student
    t coverage (Mandelkern, 2002, discusses this and subtler constructions); it is
    unchanged wherever the t interval already fits, and it keeps a positive width
    because the mean lies inside the bounds. The alternatives are worse at the 3 to
    10 seeds experiments run: a t interval on the logit scale of the mean (delta
    method) explodes near a bound (values 1.0, 1.0, 0.9 give `[0.25, 0.9996]`
    because `t_{0.975, 2} = 4.3` multiplies a logit-scale error of about 1), it
    is undefined when a value sits on the bound, and a percentile bootstrap has
    only 10 distinct resampled means at n = 3 and under-covers badly.

    Args:
        values: sequence of float. One finite measurement per trial (e.g. the test
            accuracy of each seed).
        confidence: float. Coverage of the interval, strictly between 0 and 1.
            Defaults to `0.95`.
        bounds: pair of float `(low, high)`, or None. The range the metric cannot
            leave, e.g. `(0, 1)` for accuracy or AUC; every value must lie inside
            it. Defaults to `None` (unbounded, the plain Student t interval).

    Returns:
        A dict with keys `mean`, `std`, `sem`, `n`, `ci_low` and `ci_high`
        (floats, `n` an int; `std` and `sem` are `None` when `n == 1`; `ci_low`
        and `ci_high` are `None` when `n == 1` or the values have no spread).

    Example:

    >>> from keras_tl.scores import stats
    >>> summary = stats.summarize([1.0, 2.0, 3.0, 4.0])
    >>> round(summary["mean"], 2), round(summary["ci_low"], 3)
    (2.5, 0.446)
    >>> summary = stats.summarize([1.0, 1.0, 0.9], bounds=(0, 1))
    >>> round(summary["ci_low"], 4), summary["ci_high"]
    (0.8232, 1.0)
    """
    _check_confidence(confidence)
    bounds = _check_bounds(bounds)
    array = _as_vector(values, "values")
    if array.size == 0:
        raise DataError(
            "values is empty. Expected at least one measurement. "
            "Check that at least one trial finished before summarising."
        )
    if bounds is not None:
        _check_within(array, bounds, "values")
    return _describe(array, confidence, bounds)


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
    within `1e-9 * sum(|d|)` of each other count as equal, so float round-off
    cannot decide). Zero differences are dropped first: flipping them changes
    nothing, so the p-value is the same with or without them. With at most
    `max_exact` non-zero differences every pattern is enumerated (one sign fixed,
    by symmetry: `2**(n - 1)` sums); beyond, `num_samples` random patterns over all
    `n` differences are drawn from a generator seeded with `seed` and
    `p = (1 + count) / (1 + num_samples)` (Phipson and Smyth, 2010), never 0.

    With the mean difference at or above zero, making any difference larger never
    raises the p-value (every pattern that reaches the new sum reached the old
    one); this holds in the Monte-Carlo branch too, because a fixed seed draws the
    same patterns for the same `n`. The smallest p-value `n` non-zero differences
    can reach is `2 / 2**n`, by identical differences: 0.25 for 3, 0.0625 for 5,
    0.03125 for 6.

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
    differences = _as_vector(differences, "differences")
    if differences.size == 0:
        raise DataError(
            "differences is empty. Expected at least one paired difference. "
            "Check that at least one seed finished in both arms."
        )
    for name, value, least in (
        ("max_exact", max_exact, 0),
        ("num_samples", num_samples, 1),
    ):
        integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        if not integer or value < least:
            raise ConfigError(
                f"{name} must be an integer >= {least}. Received: {name}={value!r}. "
                f"Use the default, or e.g. {name}=20."
            )
    nonzero = differences[differences != 0.0]
    num_nonzero = int(nonzero.size)
    if num_nonzero == 0:
        return {
            "p_value": 1.0, "method": "exact", "num_patterns": 1, "min_p_value": 1.0,
        }
    # A sum within the tie tolerance of the observed one counts as reaching it.
    tolerance = _TIE_TOLERANCE * float(np.sum(np.abs(nonzero)))
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
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, (int, float))
        or not 0.0 < alpha < 1.0
    ):
        raise ConfigError(
            f"alpha must be a number strictly between 0 and 1. "
            f"Received: alpha={alpha!r}. Use e.g. alpha=0.05."
        )
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
    statistics of `d` (a Student t interval, `None` when every difference is the
    same up to float round-off), the p-value of the exact two-sided sign-flip
    permutation test (`sign_flip_test`: one test for every number of seeds,
    enumerated up to 20 pairs, Monte-Carlo beyond; with 3 seeds it is at least
    0.25, and only from 6 seeds can it fall below 0.05), the two-sided Wilcoxon
    signed-rank p-value as a second opinion (Wilcoxon, 1945; only with `n >= 6`
    pairs, where it can reach the usual significance levels) and the standardised
    effect size `mean(d) / std(d)` (Cohen's d_z, `None` with no spread).

    A difference within float round-off of zero (`1e-12` relative to the larger
    of the pair, at least `1e-12`) counts as zero for both tests.

    The t interval and the exact test can disagree at few seeds: differences of
    +2, +2 and +3 test images have a t interval above zero but p = 0.25 (the
    smallest p-value 3 seeds allow); the verdict follows the test.

    With `bounds=(low, high)`, the bounds of the metric itself (e.g. `(0, 1)` for
    accuracy), every value and baseline must lie inside them, and the interval of
    the gain is intersected with `[-(high - low), high - low]`, the range a
    difference of two means of such a metric can take (see `summarize` for why
    intersecting keeps the coverage).

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

    _check_confidence(confidence)
    bounds = _check_bounds(bounds)
    values = _as_vector(values, "values")
    baseline = _as_vector(baseline, "baseline")
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
        _check_within(values, bounds, "values")
        _check_within(baseline, bounds, "baseline")
        width = bounds[1] - bounds[0]
        difference_bounds = (-width, width)
    differences = values - baseline if higher_is_better else baseline - values
    result = _describe(differences, confidence, difference_bounds)
    n, mean, std = result["n"], result["mean"], result["std"]

    # A difference within float round-off of 0 (0.30000000000000004 - 0.3) is 0
    # for the tests, so six seeds of round-off cannot make a significant gain.
    magnitude = np.maximum(1.0, np.maximum(np.abs(values), np.abs(baseline)))
    tested = np.where(
        np.abs(differences) <= _RELATIVE_TOLERANCE * magnitude, 0.0, differences
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
                wilcoxon_p_value = _float_or_none(scipy_stats.wilcoxon(tested).pvalue)
    result.update(
        p_value=p_value,
        p_value_method=p_value_method,
        min_p_value=min_p_value,
        wilcoxon_p_value=wilcoxon_p_value,
        effect_size=effect_size,
    )
    return result


def holm(p_values):
    """Adjusts p-values for multiple comparisons by Holm's step-down method.

    Holm (1979) controls the family-wise error rate without assuming independence.
    With the `m` defined p-values sorted ascending, `p_(1) <= ... <= p_(m)`, the
    adjusted value of the `i`-th is `max_{j <= i} min(1, (m - j + 1) p_(j))`, which
    is monotone in the sort order and capped at 1. Entries that are `None` (or
    NaN) are undefined: they are returned as `None` and not counted in `m`.

    Args:
        p_values: sequence of float or None. Raw p-values in `[0, 1]`.

    Returns:
        A list of adjusted p-values (float or None) in the input order.

    Example:

    >>> from keras_tl.scores import stats
    >>> [round(p, 4) for p in stats.holm([0.01, 0.04, 0.03, 0.005])]
    [0.03, 0.06, 0.06, 0.02]
    """
    p_values = list(p_values)
    defined = []
    for index, p_value in enumerate(p_values):
        if _is_undefined(p_value):
            continue
        try:
            p_value = float(p_value)
        except (TypeError, ValueError):
            raise DataError(
                f"p_values must be numbers or None. Received: {p_value!r} at "
                f"index {index}. Pass floats in [0, 1], or None for untested ones."
            ) from None
        if not 0.0 <= p_value <= 1.0:
            raise DataError(
                f"p-values must lie in [0, 1]. Received: {p_value!r} at index "
                f"{index}. Pass raw p-values, not test statistics or log p-values."
            )
        defined.append((p_value, index))

    adjusted = [None] * len(p_values)
    num_tests = len(defined)
    running_max = 0.0
    for rank, (p_value, index) in enumerate(sorted(defined, key=lambda pair: pair[0])):
        running_max = max(running_max, min(1.0, (num_tests - rank) * p_value))
        adjusted[index] = running_max
    return adjusted


def verdict(mean, p_value, alpha=0.05):
    """Turns a mean gain and its p-value into `"positive"`, `"negative"` or not.

    A gain is `"positive"` when it is significant (`p_value < alpha`) and its mean
    is above zero, `"negative"` when significant and below zero, and
    `"inconclusive"` otherwise (including an undefined p-value). The p-value is the
    exact sign-flip test's (optionally Holm-adjusted), so with fewer than
    `min_pairs_for_significance(alpha)` seeds (6 at 0.05) the verdict is never
    positive or negative, whatever the gains; the Student t interval of the gain
    may then exclude zero while the verdict stays `"inconclusive"`.

    Args:
        mean: float or None. Mean direction-adjusted gain (positive = better).
        p_value: float or None. The (optionally Holm-adjusted) p-value.
        alpha: float. Significance level, strictly between 0 and 1. Defaults to
            `0.05`.

    Returns:
        One of `"positive"`, `"negative"` or `"inconclusive"`.

    Example:

    >>> from keras_tl.scores import stats
    >>> stats.verdict(0.03, 0.01)
    'positive'
    """
    if not isinstance(alpha, (int, float)) or not 0.0 < alpha < 1.0:
        raise ConfigError(
            f"alpha must be a number strictly between 0 and 1. "
            f"Received: alpha={alpha!r}. Use e.g. alpha=0.05."
        )
    if _is_undefined(mean) or _is_undefined(p_value) or not p_value < alpha:
        return "inconclusive"
    if mean > 0:
        return "positive"
    if mean < 0:
        return "negative"
    return "inconclusive"


def _seeds_to_resolve(std, resolution, confidence):
    """Smallest n >= 2 with `t_{(1 + c) / 2, n - 1} * std / sqrt(n) <= resolution`."""
    from scipy import stats as scipy_stats

    ratio = std / resolution
    # t_{n-1} > z, so no n below (z * std / resolution)**2 can qualify; start there.
    z = float(scipy_stats.norm.ppf(0.5 + confidence / 2.0))
    n = max(2, math.ceil((z * ratio) ** 2))
    while _t_quantile(confidence, n - 1) * ratio > math.sqrt(n):
        n += 1
    return n


def explain_inconclusive(
    gain, resolution=0.02, confidence=0.95, alpha=0.05, scale=100.0, unit="points"
):
    """Says what an inconclusive gain rules out and how many seeds would decide.

    An inconclusive verdict is not "no effect": its interval still rules out the
    gains above `ci_high` and below `ci_low`. The seeds that would resolve the
    gain to `+- resolution` are the smallest `n` with
    `t_{(1 + confidence) / 2, n - 1} * std / sqrt(n) <= resolution`, taking the
    observed standard deviation of the differences as the truth (a planning
    estimate, itself uncertain at few seeds); undefined (`None`) when that
    standard deviation is 0 or undefined. Independently, the exact sign-flip test
    cannot reach `p < alpha` with fewer than `min_pairs_for_significance(alpha)`
    seeds (6 at 0.05); the text says so when the gain has fewer. When the gain
    already has `seeds_needed` seeds or more, the text says they already resolve
    it (an interval that narrow and still inconclusive puts the gain near zero,
    or the Holm adjustment kept it from significance).

    Args:
        gain: dict. A result of `paired_difference` (at least `mean`, `std`, `n`,
            `ci_low`, `ci_high`; missing entries count as undefined).
        resolution: float > 0. The half-width of interval wanted, in the metric's
            units (0.02 = 2 accuracy points). Defaults to `0.02`.
        confidence: float. The coverage the gain's interval was computed with.
            Defaults to `0.95`.
        alpha: float. Significance level of the verdict; pass `alpha / m` for the
            worst case of a Holm family of `m` comparisons. Defaults to `0.05`.
        scale: float. Multiplies metric values in the text (100 turns an accuracy
            gain of 0.082 into "+8.2 points"). Defaults to `100.0`.
        unit: str. Unit word in the text, `""` for none. Defaults to `"points"`.

    Returns:
        A dict with keys `ruled_out_above` and `ruled_out_below` (float or None:
        the interval's ends in metric units; gains above the first and below the
        second are ruled out), `seeds_needed` (int or None), `min_seeds_for_test`
        (int), `resolution` and `confidence` (floats, as given) and `text` (str,
        e.g. `"inconclusive: gains above +7.97 points and below -1.97 points are
        ruled out (95% interval); about 7 seeds would resolve +-2 points; the exact
        test cannot reach p < 0.05 with fewer than 6 seeds"`).

    Example:

    >>> from keras_tl.scores import stats
    >>> gain = stats.paired_difference([0.81, 0.83, 0.85], [0.80, 0.80, 0.80])
    >>> stats.explain_inconclusive(gain)["seeds_needed"]
    7
    """
    _check_confidence(confidence)
    if (
        isinstance(resolution, bool)
        or not isinstance(resolution, (int, float))
        or not (math.isfinite(resolution) and resolution > 0)
    ):
        raise ConfigError(
            f"resolution must be a positive number. Received: "
            f"resolution={resolution!r}. Use e.g. resolution=0.02 (2 accuracy points)."
        )
    min_seeds = min_pairs_for_significance(alpha)
    if not hasattr(gain, "get"):
        raise DataError(
            f"gain must be a dict such as paired_difference returns. Received: "
            f"{type(gain).__name__}. Pass stats.paired_difference(values, baseline)."
        )
    mean, std, n = gain.get("mean"), gain.get("std"), gain.get("n")
    low, high = gain.get("ci_low"), gain.get("ci_high")
    low = None if _is_undefined(low) else float(low)
    high = None if _is_undefined(high) else float(high)
    n = 0 if _is_undefined(n) else int(n)
    std = None if _is_undefined(std) else float(std)

    seeds_needed = None
    if std is not None and std > 0.0:
        seeds_needed = _seeds_to_resolve(std, float(resolution), confidence)

    def number(value):
        return f"{value * scale:+.3g}" + (f" {unit}" if unit else "")

    if low is not None and high is not None:
        parts = [
            f"gains above {number(high)} and below {number(low)} are ruled out "
            f"({confidence * 100:g}% interval)"
        ]
    elif n >= 2 and std == 0.0 and not _is_undefined(mean):
        parts = [
            f"all {n} differences equal {number(float(mean))}, so there is no "
            "interval and nothing is ruled out"
        ]
    else:
        parts = [f"{n} pair{'' if n == 1 else 's'}: no interval, nothing is ruled out"]
    if seeds_needed is not None:
        spread = f"{resolution * scale:.3g}" + (f" {unit}" if unit else "")
        if seeds_needed <= n:
            parts.append(f"{n} seeds already resolve +-{spread}")
        else:
            parts.append(f"about {seeds_needed} seeds would resolve +-{spread}")
    if n < min_seeds:
        parts.append(
            f"the exact test cannot reach p < {alpha:g} with fewer than "
            f"{min_seeds} seeds"
        )
    return {
        "ruled_out_above": high,
        "ruled_out_below": low,
        "seeds_needed": seeds_needed,
        "min_seeds_for_test": min_seeds,
        "resolution": float(resolution),
        "confidence": float(confidence),
        "text": "inconclusive: " + "; ".join(parts),
    }


def _snap_ties(array):
    """Replaces values equal within `1e-9 * max(max|array|, 1e-3)` by one value.

    Sorted values closer than the tolerance to their neighbour join its group
    (single linkage) and every member takes the group's mean, so ranks computed
    afterwards see exact ties where only float round-off separated the values.
    """
    if array.size == 0:
        return array
    # Below a magnitude of 1e-3 the tolerance stays at 1e-12 (as for a zero
    # spread in `summarize`): values that all sit within round-off of 0 are ties.
    scale = max(float(np.max(np.abs(array))), 1e-3)
    order = np.argsort(array, kind="stable")
    ordered = array[order]
    labels = np.concatenate(([0], np.cumsum(np.diff(ordered) > _TIE_TOLERANCE * scale)))
    means = np.bincount(labels, weights=ordered) / np.bincount(labels)
    snapped = np.empty_like(array)
    snapped[order] = means[labels]
    return snapped


def rank_agreement(scores, realised):
    """Measures how well a cheap score ranks candidates by their realised gains.

    Reports Kendall's tau-b (Kendall, 1938; tie-corrected, Kendall, 1945), the
    weighted tau of Vigna (2015) that weighs agreement among the top-ranked
    candidates more (the ones a user would pick), and Pearson's linear
    correlation, all from `scipy.stats`. Pairs in which either side is `None` or
    NaN are dropped first. Then, on each side separately, values equal within a
    relative tolerance of `1e-9` of that side's largest magnitude (at least
    `1e-12` in absolute terms) are snapped to one value, so that float round-off
    (3.0, 3.0000000000000004, 2.999999999999999; or gains of 0 and
    0.3 - 0.2 - 0.1 = -2.8e-17) makes ties, not an order. With fewer than three
    pairs, or when one side is constant after snapping, the correlations are
    undefined and `None`.

    Args:
        scores: sequence of float or None. Transferability score per candidate
            (higher = predicted better).
        realised: sequence of float or None. Realised gain per candidate, in the
            same order (positive = better).

    Returns:
        A dict with keys `kendall_tau`, `weighted_tau`, `pearson` (float or None)
        and `n` (int, the number of pairs used).

    Example:

    >>> from keras_tl.scores import stats
    >>> agreement = stats.rank_agreement([0.1, 0.4, 0.3, 0.9], [1.0, 2.0, 3.0, 4.0])
    >>> round(agreement["kendall_tau"], 4)
    0.6667
    """
    from scipy import stats as scipy_stats

    scores, realised = list(scores), list(realised)
    if len(scores) != len(realised):
        raise DataError(
            f"scores and realised must pair up one to one. Received: "
            f"{len(scores)} scores and {len(realised)} realised values. "
            "Pass one score and one realised gain per candidate, in the same order."
        )
    pairs = [
        (score, gain)
        for score, gain in zip(scores, realised)
        if not _is_undefined(score) and not _is_undefined(gain)
    ]
    x = _snap_ties(_as_vector([pair[0] for pair in pairs], "scores"))
    y = _snap_ties(_as_vector([pair[1] for pair in pairs], "realised"))
    result = {"kendall_tau": None, "weighted_tau": None, "pearson": None, "n": len(x)}
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result["kendall_tau"] = _float_or_none(scipy_stats.kendalltau(x, y)[0])
        result["weighted_tau"] = _float_or_none(scipy_stats.weightedtau(x, y)[0])
        result["pearson"] = _float_or_none(scipy_stats.pearsonr(x, y)[0])
    return result


def matching_size(sizes, metric_means, value, higher_is_better=True):
    """Finds the scratch train size whose learning curve reaches a given metric.

    The scratch learning curve is the piecewise-linear interpolation of
    `metric_means` over `sizes` (ascending). The matching size is the smallest
    size at which the curve reaches `value` (`>=` when higher is better, `<=` when
    lower is better): linearly interpolated on the first segment that crosses it
    (`bound="="`). When the first point already reaches it the answer is only an
    upper bound, `size=sizes[0]` with `bound="<="`; when no point reaches it, only
    a lower bound, `size=sizes[-1]` with `bound=">"`. Divided by the transfer
    arm's own train size this is the "x times the data" data-efficiency ratio.

    Points whose mean is `None` or NaN (every trial at that size failed) are
    skipped. When `value` is undefined or no point is left, both `size` and
    `bound` are `None`.

    Args:
        sizes: sequence of int or float. Target train sizes, strictly increasing.
        metric_means: sequence of float or None. Mean scratch metric at each size.
        value: float or None. The metric to match (e.g. the transfer arm's mean).
        higher_is_better: bool. Direction of the metric. Defaults to `True`.

    Returns:
        A dict with keys `size` (float or None) and `bound` (`"="`, `"<="`, `">"`
        or None).

    Example:

    >>> from keras_tl.scores import stats
    >>> stats.matching_size([100, 200, 400], [0.6, 0.7, 0.8], 0.75)
    {'size': 300.0, 'bound': '='}
    """
    sizes, metric_means = list(sizes), list(metric_means)
    if len(sizes) != len(metric_means):
        raise DataError(
            f"sizes and metric_means must have the same length. Received: "
            f"{len(sizes)} sizes and {len(metric_means)} means. "
            "Pass one mean scratch metric per train size."
        )
    kept = [(s, m) for s, m in zip(sizes, metric_means) if not _is_undefined(m)]
    curve_sizes = _as_vector([pair[0] for pair in kept], "sizes")
    curve = _as_vector([pair[1] for pair in kept], "metric_means")
    if curve_sizes.size > 1 and np.any(np.diff(curve_sizes) <= 0):
        raise DataError(
            f"sizes must be strictly increasing. Received: sizes={sizes}. "
            "Sort the learning curve by train size and merge duplicate sizes."
        )
    if _is_undefined(value) or curve.size == 0:
        return {"size": None, "bound": None}
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise DataError(
            f"value must be a number. Received: value={value!r}. "
            "Pass the metric to match, e.g. the transfer arm's mean test accuracy."
        ) from None

    # Flip lower-is-better metrics so "reached" always means ">=".
    sign = 1.0 if higher_is_better else -1.0
    curve, target = sign * curve, sign * value
    reached = np.flatnonzero(curve >= target)
    if reached.size == 0:
        return {"size": float(curve_sizes[-1]), "bound": ">"}
    first = int(reached[0])
    if first == 0:
        return {"size": float(curve_sizes[0]), "bound": "<="}
    size_low, size_high = curve_sizes[first - 1], curve_sizes[first]
    metric_low, metric_high = curve[first - 1], curve[first]
    fraction = (target - metric_low) / (metric_high - metric_low)
    return {"size": float(size_low + fraction * (size_high - size_low)), "bound": "="}
