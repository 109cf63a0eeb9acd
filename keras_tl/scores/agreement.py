"""Cheap numbers against realised ones: rank agreement and the matching data size.

`rank_agreement` says how well a transferability score ranked candidates by their
realised gains; `matching_size` finds the scratch train size a transfer result
matches (the "x times the data" ratio). Re-exported by `keras_tl.scores.stats`.
"""

import warnings

import numpy as np

from keras_tl.errors import DataError
from keras_tl.scores._checks import as_vector
from keras_tl.scores.intervals import (
    TIE_TOLERANCE,
    float_or_none,
    is_undefined,
)


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
    labels = np.concatenate(([0], np.cumsum(np.diff(ordered) > TIE_TOLERANCE * scale)))
    means = np.bincount(labels, weights=ordered) / np.bincount(labels)
    snapped = np.empty_like(array)
    snapped[order] = means[labels]
    return snapped


def rank_agreement(scores, realised):
    """Measures how well a cheap score ranks candidates by their realised gains.

    Reports Kendall's tau-b (Kendall, 1938; tie-corrected, Kendall, 1945), the
    weighted tau of Vigna (2015) that weighs agreement among the top-ranked
    candidates more, and Pearson's linear correlation, all from `scipy.stats`.
    Pairs in which either side is `None` or NaN are dropped first. Then, on each
    side separately, values equal up to float round-off (`1e-9` of that side's
    largest magnitude) are snapped to one value, so round-off makes ties, not an
    order (docs/statistics-tests.md, "Rank agreement and round-off"). With fewer
    than three pairs, or when one side is constant, the correlations are `None`.

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
        if not is_undefined(score) and not is_undefined(gain)
    ]
    x = _snap_ties(as_vector([pair[0] for pair in pairs], "scores"))
    y = _snap_ties(as_vector([pair[1] for pair in pairs], "realised"))
    result = {"kendall_tau": None, "weighted_tau": None, "pearson": None, "n": len(x)}
    if len(x) < 3 or np.all(x == x[0]) or np.all(y == y[0]):
        return result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result["kendall_tau"] = float_or_none(scipy_stats.kendalltau(x, y)[0])
        result["weighted_tau"] = float_or_none(scipy_stats.weightedtau(x, y)[0])
        result["pearson"] = float_or_none(scipy_stats.pearsonr(x, y)[0])
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
    kept = [(s, m) for s, m in zip(sizes, metric_means) if not is_undefined(m)]
    curve_sizes = as_vector([pair[0] for pair in kept], "sizes")
    curve = as_vector([pair[1] for pair in kept], "metric_means")
    if curve_sizes.size > 1 and np.any(np.diff(curve_sizes) <= 0):
        raise DataError(
            f"sizes must be strictly increasing. Received: sizes={sizes}. "
            "Sort the learning curve by train size and merge duplicate sizes."
        )
    if is_undefined(value) or curve.size == 0:
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
