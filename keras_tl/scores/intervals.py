"""Summaries of repeated trials: mean, spread and a Student t interval.

Also the tolerances and small helpers the other statistics modules share. Public
names are re-exported by `keras_tl.scores.stats`; use them from there. Undefined
values (a standard deviation of one trial, an interval of zero width) are `None`,
never NaN; docs/statistics-tests.md ("Intervals") explains each choice.
"""

import math

import numpy as np

from keras_tl.errors import DataError
from keras_tl.scores._checks import (
    as_vector,
    check_bounds,
    check_fraction,
    check_within,
)

# Values whose spread is below this fraction of their magnitude are treated as
# identical, so float round-off (0.3 - 0.2 != 0.5 - 0.4) cannot fake a variance.
RELATIVE_TOLERANCE = 1e-12

# Two sums of sign-flipped differences, or two values being ranked, that differ by
# less than this fraction of their scale are ties: round-off must not decide a
# p-value or a ranking.
TIE_TOLERANCE = 1e-9

# How to fix a metric outside its bounds.
OUTSIDE_BOUNDS = (
    "Pass the metric on the scale of its bounds (a percentage needs bounds=(0, 100)), "
    "or pass bounds=None."
)


def is_undefined(value):
    if value is None:
        return True
    return isinstance(value, (float, np.floating)) and bool(np.isnan(value))


def float_or_none(value):
    """Converts to a Python float, mapping NaN (and None) to None."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def t_quantile(confidence, df):
    from scipy import stats as scipy_stats

    return float(scipy_stats.t.ppf(0.5 + confidence / 2.0, df=df))


def describe(array, confidence, bounds=None):
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
    if spread <= RELATIVE_TOLERANCE * max(1.0, float(np.max(np.abs(array)))):
        result.update(std=0.0, sem=0.0)
        return result
    std = float(np.std(array, ddof=1))
    sem = std / math.sqrt(n)
    half_width = t_quantile(confidence, n - 1) * sem
    low, high = mean - half_width, mean + half_width
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    result.update(std=std, sem=sem, ci_low=float(low), ci_high=float(high))
    return result


def summarize(values, confidence=0.95, bounds=None):
    """Summarises repeated measurements: mean, spread and a Student t interval.

    The standard deviation uses `ddof=1`, the standard error is `std / sqrt(n)`,
    and the interval is `mean -+ t_{(1 + confidence) / 2, n - 1} * sem`
    (Student, 1908). When the interval would have no width (a single value, or
    values identical up to float round-off) `ci_low` / `ci_high` are `None`; `std`
    and `sem` are then `None` for a single value and `0.0` for identical values.

    A bounded metric (accuracy, AUC: `bounds=(0, 1)`) gets the Student t interval
    intersected with its bounds, so `0.952 [0.889, 1.014]` becomes
    `0.952 [0.889, 1.0]`; this keeps the t interval's coverage. Why clipping rather
    than a logit interval or a bootstrap: docs/statistics-tests.md ("Intervals").

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
    check_fraction(confidence, "confidence", "0.95")
    bounds = check_bounds(bounds)
    array = as_vector(values, "values")
    if array.size == 0:
        raise DataError(
            "values is empty. Expected at least one measurement. "
            "Check that at least one trial finished before summarising."
        )
    if bounds is not None:
        check_within(array, bounds, "values", OUTSIDE_BOUNDS)
    return describe(array, confidence, bounds)
