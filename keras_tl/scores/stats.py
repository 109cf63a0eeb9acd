"""Statistics for repeated trials: confidence intervals, paired tests, rank agreement.

Every function takes plain numbers or NumPy arrays and returns Python floats, strings
or plain dicts, so results serialise to JSON as they are. A value that is undefined
(a standard deviation from one trial, a correlation with a constant side) is `None`,
never NaN.

References:
    Student (1908), "The probable error of a mean", Biometrika 6(1).
    Wilcoxon (1945), "Individual comparisons by ranking methods", Biometrics
        Bulletin 1(6).
    Holm (1979), "A simple sequentially rejective multiple test procedure",
        Scandinavian Journal of Statistics 6(2).
    Kendall (1938), "A new measure of rank correlation", Biometrika 30(1/2).
    Vigna (2015), "A weighted correlation index for rankings with ties", WWW 2015.
"""

import math
import warnings

import numpy as np

from keras_tl.errors import ConfigError, DataError

__all__ = [
    "summarize",
    "paired_difference",
    "holm",
    "verdict",
    "rank_agreement",
    "matching_size",
]

# Differences whose spread is below this fraction of their magnitude are treated as
# identical, so float round-off (0.3 - 0.2 != 0.5 - 0.4) cannot fake a variance.
_RELATIVE_TOLERANCE = 1e-12


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
    if not isinstance(confidence, (int, float)) or not 0.0 < confidence < 1.0:
        raise ConfigError(
            f"confidence must be a number strictly between 0 and 1. "
            f"Received: confidence={confidence!r}. Use e.g. confidence=0.95."
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


def _describe(array, confidence):
    """Mean, spread and Student t interval of a finite 1-D array (n >= 1)."""
    from scipy import stats as scipy_stats

    n = int(array.size)
    mean = float(np.mean(array))
    if n < 2:
        return {
            "mean": mean,
            "std": None,
            "sem": None,
            "n": n,
            "ci_low": None,
            "ci_high": None,
        }
    spread = float(np.max(np.abs(array - mean)))
    if spread <= _RELATIVE_TOLERANCE * max(1.0, float(np.max(np.abs(array)))):
        std = 0.0
    else:
        std = float(np.std(array, ddof=1))
    sem = std / math.sqrt(n)
    half_width = float(scipy_stats.t.ppf(0.5 + confidence / 2.0, df=n - 1)) * sem
    return {
        "mean": mean,
        "std": std,
        "sem": sem,
        "n": n,
        "ci_low": mean - half_width,
        "ci_high": mean + half_width,
    }


def summarize(values, confidence=0.95):
    """Summarises repeated measurements: mean, spread and a Student t interval.

    The standard deviation uses `ddof=1` (the unbiased sample variance), the
    standard error is `std / sqrt(n)`, and the interval is
    `mean -+ t_{(1 + confidence) / 2, n - 1} * sem` (Student, 1908). With a single
    value the spread and the interval are undefined and reported as `None`.

    Args:
        values: sequence of float. One finite measurement per trial (e.g. the test
            accuracy of each seed).
        confidence: float. Coverage of the interval, strictly between 0 and 1.
            Defaults to `0.95`.

    Returns:
        A dict with keys `mean`, `std`, `sem`, `n`, `ci_low` and `ci_high`
        (floats, `n` an int; `std`, `sem` and the interval are `None` when
        `n == 1`).

    Example:

    >>> from keras_tl.scores import stats
    >>> summary = stats.summarize([1.0, 2.0, 3.0, 4.0])
    >>> round(summary["mean"], 2), round(summary["ci_low"], 3)
    (2.5, 0.446)
    """
    _check_confidence(confidence)
    array = _as_vector(values, "values")
    if array.size == 0:
        raise DataError(
            "values is empty. Expected at least one measurement. "
            "Check that at least one trial finished before summarising."
        )
    return _describe(array, confidence)


def paired_difference(values, baseline, higher_is_better=True, confidence=0.95):
    """Compares two arms paired by seed: mean gain, interval and paired tests.

    The per-pair difference is direction-adjusted so that a positive gain always
    means an improvement: `d = values - baseline` when higher is better and
    `d = baseline - values` when lower is better. Reported are the `summarize`
    statistics of `d`, the two-sided paired Student t-test p-value, the two-sided
    Wilcoxon signed-rank p-value (Wilcoxon, 1945; only with `n >= 6` pairs, where
    it can reach the usual significance levels) and the standardised effect size
    `mean(d) / std(d)` (Cohen's d_z).

    When all differences are identical (zero standard deviation, up to float
    round-off; common with accuracies on a small test split) the t statistic is
    infinite or undefined. `p_value` is then the exact two-sided sign-flip
    (permutation) p-value, `2 / 2**n` if the mean difference is non-zero (of the
    `2**n` equally likely sign patterns under the null, only all-positive and
    all-negative reach it: 0.25 for 3 pairs, 0.0625 for 5) and `1.0` if it is
    zero; `effect_size` is None. The Wilcoxon p-value is `1.0` when every
    difference is zero.

    Args:
        values: sequence of float. The metric of the arm under test, one per seed.
        baseline: sequence of float. The metric of the baseline arm (e.g. scratch)
            for the same seeds, in the same order.
        higher_is_better: bool. Direction of the metric (`True` for accuracy,
            `False` for a loss or an error). Defaults to `True`.
        confidence: float. Coverage of the interval. Defaults to `0.95`.

    Returns:
        A dict with keys `mean`, `std`, `sem`, `n`, `ci_low`, `ci_high`,
        `p_value`, `wilcoxon_p_value` and `effect_size`; undefined entries are
        `None` (`p_value` and `effect_size` when `n < 2`, `wilcoxon_p_value` when
        `n < 6`).

    Example:

    >>> from keras_tl.scores import stats
    >>> gain = stats.paired_difference([0.81, 0.84, 0.80], [0.78, 0.80, 0.79])
    >>> round(gain["mean"], 3), stats.verdict(gain["mean"], gain["p_value"])
    (0.027, 'inconclusive')
    """
    from scipy import stats as scipy_stats

    _check_confidence(confidence)
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
    differences = values - baseline if higher_is_better else baseline - values
    result = _describe(differences, confidence)
    n, mean, std = result["n"], result["mean"], result["std"]

    p_value = effect_size = wilcoxon_p_value = None
    if n >= 2:
        if std == 0.0:
            p_value = 2.0 ** (1 - n) if mean != 0.0 else 1.0
        else:
            p_value = _float_or_none(scipy_stats.ttest_1samp(differences, 0.0).pvalue)
            effect_size = mean / std
    if n >= 6:
        if np.all(differences == 0.0):
            wilcoxon_p_value = 1.0
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wilcoxon_p_value = _float_or_none(
                    scipy_stats.wilcoxon(differences).pvalue
                )
    result.update(
        p_value=p_value, wilcoxon_p_value=wilcoxon_p_value, effect_size=effect_size
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
    `"inconclusive"` otherwise (including an undefined p-value). With a Student t
    test and `alpha = 1 - confidence` this is the same as the interval lying
    entirely above or below zero.

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


def rank_agreement(scores, realised):
    """Measures how well a cheap score ranks candidates by their realised gains.

    Reports Kendall's tau-b (Kendall, 1938), the weighted tau of Vigna (2015) that
    weighs agreement among the top-ranked candidates more (the ones a user would
    pick), and Pearson's linear correlation, all from `scipy.stats`. Pairs in which
    either side is `None` or NaN are dropped first. With fewer than three pairs, or
    when one side is constant, the correlations are undefined and `None`.

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
    >>> stats.rank_agreement([0.1, 0.4, 0.3, 0.9], [1.0, 2.0, 3.0, 4.0])["kendall_tau"]
    0.6666666666666669
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
    x = _as_vector([pair[0] for pair in pairs], "scores")
    y = _as_vector([pair[1] for pair in pairs], "realised")
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
