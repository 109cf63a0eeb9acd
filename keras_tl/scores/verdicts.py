"""From p-values to verdicts: Holm's adjustment, the verdict, and what it rules out.

Re-exported by `keras_tl.scores.stats`; docs/statistics-tests.md ("Inconclusive
verdicts", "In results.json") shows how a run uses them.
"""

import math

from keras_tl.errors import DataError
from keras_tl.scores._checks import (
    check_finite_number,
    check_fraction,
)
from keras_tl.scores.intervals import (
    is_undefined,
    t_quantile,
)
from keras_tl.scores.paired import min_pairs_for_significance


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
        if is_undefined(p_value):
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
    alpha = check_fraction(alpha, "alpha", "0.05")
    if is_undefined(mean) or is_undefined(p_value) or not p_value < alpha:
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
    while t_quantile(confidence, n - 1) * ratio > math.sqrt(n):
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
    estimate); `None` when that standard deviation is 0 or undefined. The text
    also says when the gain has fewer than `min_pairs_for_significance(alpha)`
    seeds, or already enough to resolve it. Worked example:
    docs/statistics-tests.md ("Inconclusive verdicts").

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
        the interval's ends in metric units), `seeds_needed` (int or None),
        `min_seeds_for_test` (int), `resolution` and `confidence` (floats, as
        given) and `text` (str, e.g. `"inconclusive: gains above +7.97 points and
        below -1.97 points are ruled out (95% interval); about 7 seeds would
        resolve +-2 points; the exact test cannot reach p < 0.05 with fewer than
        6 seeds"`).

    Example:

    >>> from keras_tl.scores import stats
    >>> gain = stats.paired_difference([0.81, 0.83, 0.85], [0.80, 0.80, 0.80])
    >>> stats.explain_inconclusive(gain)["seeds_needed"]
    7
    """
    check_fraction(confidence, "confidence", "0.95")
    check_finite_number(
        resolution, "resolution", "Use e.g. resolution=0.02 (2 accuracy points).",
        positive=True,
    )
    min_seeds = min_pairs_for_significance(alpha)
    if not hasattr(gain, "get"):
        raise DataError(
            f"gain must be a dict such as paired_difference returns. Received: "
            f"{type(gain).__name__}. Pass stats.paired_difference(values, baseline)."
        )
    mean, std, n = gain.get("mean"), gain.get("std"), gain.get("n")
    low, high = gain.get("ci_low"), gain.get("ci_high")
    low = None if is_undefined(low) else float(low)
    high = None if is_undefined(high) else float(high)
    n = 0 if is_undefined(n) else int(n)
    std = None if is_undefined(std) else float(std)

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
    elif n >= 2 and std == 0.0 and not is_undefined(mean):
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
