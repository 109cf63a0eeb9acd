"""Input checks shared by the statistics (`stats`) and the stopping rule (`sequential`).

A bad setting (alpha, confidence, bounds, a count) raises `ConfigError`; bad
measurements raise `DataError`. Every message is one line that says what was
expected, what was received and how to fix it. Each check returns the value in
the form its caller computes with (a float, a `(low, high)` pair, an array).
"""

import math
import numbers

import numpy as np

from keras_tl.errors import ConfigError, DataError


def check_fraction(value, name, example):
    """Returns `value` as a float strictly between 0 and 1, or raises `ConfigError`.

    Args:
        value: the argument received (alpha, confidence).
        name: str. The argument's name, for the message.
        example: str. A good value, for the message (e.g. `"0.05"`).
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 < float(value) < 1.0
    ):
        raise ConfigError(
            f"{name} must be a number strictly between 0 and 1. "
            f"Received: {name}={value!r}. Use e.g. {name}={example}."
        )
    return float(value)


def check_whole_number(value, name, fix, least=None):
    """Returns `value` as an int (at least `least`, if given), or raises `ConfigError`.

    Booleans are not whole numbers here; NumPy integers are.

    Args:
        value: the argument received.
        name: str. The argument's name, for the message.
        fix: str. How to fix it, for the message (a sentence).
        least: int or None. The smallest value allowed.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or (least is not None and value < least)
    ):
        bound = "" if least is None else f" of at least {least}"
        raise ConfigError(
            f"{name} must be a whole number{bound}. Received: {name}={value!r}. {fix}"
        )
    return int(value)


def check_finite_number(value, name, fix, positive=False):
    """Returns `value` as a finite float >= 0 (> 0 if `positive`), or raises `ConfigError`.

    Args:
        value: the argument received (a standard deviation, a resolution).
        name: str. The argument's name, for the message.
        fix: str. How to fix it, for the message (a sentence).
        positive: bool. Whether 0 is refused too.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or not (value > 0 if positive else value >= 0)
    ):
        raise ConfigError(
            f"{name} must be a finite number {'>' if positive else '>='} 0. "
            f"Received: {name}={value!r}. {fix}"
        )
    return float(value)


def check_bounds(bounds, difference=False):
    """Returns `bounds` as a `(low, high)` pair of finite floats, or raises `ConfigError`.

    Bounds of a metric need `low < high`, and `None` (no bounds) passes through as
    `None`. Bounds of a paired difference (`difference=True`) need
    `low < 0 < high`, since a difference can be zero, and are required.
    """
    if bounds is None and not difference:
        return None
    if difference:
        expected = "a pair (low, high) of numbers"
        example = "Use bounds=(-1, 1) for differences of accuracies."
        order = "low < 0 < high (they bound a difference, which can be zero)"
        fix = "Use bounds=(-1, 1) for differences of metrics in [0, 1]."
    else:
        expected = "a pair (low, high) of numbers or None"
        example = fix = "Use e.g. bounds=(0, 1) for accuracy or AUC."
        order = "low < high"
    try:
        low, high = (float(bound) for bound in bounds)
    except (TypeError, ValueError):
        raise ConfigError(
            f"bounds must be {expected}. Received: bounds={bounds!r}. {example}"
        ) from None
    in_order = low < 0.0 < high if difference else low < high
    if not (math.isfinite(low) and math.isfinite(high) and in_order):
        raise ConfigError(
            f"bounds must be two finite numbers with {order}. "
            f"Received: bounds={bounds!r}. {fix}"
        )
    return low, high


def as_vector(values, name, one_per="trial", drop_failed="Drop failed trials "
              "(None / NaN / inf) before summarising."):
    """Returns `values` as a finite 1-D float64 array, or raises `DataError`.

    Args:
        values: the measurements received.
        name: str. What they are, for the message (`"values"`, `"differences of
            condition 'fine_tune'"`).
        one_per: str. What each number stands for (`"trial"`, `"seed"`).
        drop_failed: str. How to fix non-finite values (a sentence).
    """
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(
            f"{name} must be a list of numbers, one per {one_per}. Received: "
            f"{values!r}. Pass a list or 1-D NumPy array of floats (drop failed "
            f"{one_per}s first)."
        ) from None
    if array.ndim != 1:
        raise DataError(
            f"{name} must be 1-D: a list of numbers, one per {one_per}. Received: an "
            f"array of shape {array.shape}. Pass a flat list of floats."
        )
    if not np.all(np.isfinite(array)):
        raise DataError(
            f"{name} must be finite numbers. Received: {array.tolist()}. {drop_failed}"
        )
    return array


def check_within(array, bounds, name, fix, tolerance=0.0):
    """Raises `DataError` if a value of `array` lies outside `bounds`.

    Args:
        array: NumPy array of float. The values to check.
        bounds: `(low, high)`.
        name: str. What the values are, for the message.
        fix: str. How to fix it, for the message (a sentence).
        tolerance: float. Values this fraction of `high - low` outside the bounds
            are float round-off, not an error.
    """
    low, high = bounds
    margin = tolerance * (high - low)
    outside = array[(array < low - margin) | (array > high + margin)]
    if outside.size:
        shown = outside.tolist()[:5]
        count = "" if outside.size <= 5 else f" (the first 5 of {outside.size})"
        raise DataError(
            f"{name} must lie within bounds=({low:g}, {high:g}). Received: "
            f"{shown}{count}. {fix}"
        )
