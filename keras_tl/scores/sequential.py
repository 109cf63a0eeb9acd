"""Adaptive seeds: a group-sequential stopping rule for paired transfer gains.

An experiment with `seeds: {min: 5, max: 30}` runs its seeds in rounds. After each
round every condition (an arm at one freeze depth, say) has one paired difference
per seed, `d_s = metric(arm, seed s) - metric(scratch, seed s)`, signed so that
positive means better. This module decides, after each planned round, which
conditions are `positive`, `negative`, still `continue`, or (at `max`)
`inconclusive`, while keeping the family-wise error rate over all conditions at
`alpha` however many rounds the experiment ends up running.

The rule is a two-sided group-sequential paired t-test per condition:

* **Looks.** The rule looks only at the planned cumulative seed counts
  `round_sizes(min_seeds, max_seeds)`, which grow by about 1.5x per round from `min`
  to `max` (5, 7, 10, 15, 21, 30). The looks are fixed before any data is seen;
  that is what makes stopping early valid. Seeds run past a planned look are
  used at the next planned look, never at an unplanned one.
* **Error spending.** Each condition spends its error rate over the looks by the
  power function `a(f) = a * f**2` (Kim and DeMets, 1987), with `f = n / max_seeds`
  the fraction of the planned seeds, in the Lan-DeMets error-spending framework
  (Lan and DeMets, 1983). It spends little at the first, noisy looks, so the last
  look is almost as strong as a fixed test at `max` seeds; measured against the
  O'Brien-Fleming-type function (O'Brien and Fleming, 1979) it decides a
  6-point gain with a quarter fewer seeds for 2% less power on the hardest cases
  (docs/sequential.md).
* **Critical values.** At look k a condition is decided when its paired t
  statistic `|t_k| = |mean| / (std / sqrt(n_k))` reaches `c_k`, where `c_k` makes the
  probability, under a zero mean with normal seed noise, of first crossing at look k
  equal to the error spent there. The joint law of `(t_1, ..., t_K)` does not depend
  on the noise level, so the `c_k` are computed once per design by simulating
  `CALIBRATION_PATHS` null paths from a fixed seed (the simulation approach to
  sequential t-tests: Jennison and Turnbull, 2000, sections 3.8 and 19). Each look
  keeps `CALIBRATION_MARGIN` (2) binomial standard errors of that simulation in
  reserve, so its error lands on the safe side; looks that spend too little to
  simulate use the exact Student t quantile of the amount spent, which can only
  over-protect; the first look is always that exact quantile. The usual shortcut
  (normal boundaries converted to t quantiles at the same nominal level) lets the
  error rate creep to up to 1.11 times alpha (1.02-1.05 for looks from 5 seeds).
* **Assumption.** Like every Student t interval keras-tl reports, the rule is exact
  when seed-to-seed noise is normal (any spread). Heavy tails make it conservative;
  strong skew, or rare catastrophic seeds, inflate its error as they inflate a
  fixed-size t-test's (numbers in docs/sequential.md): look at failed or diverged
  trials before trusting a verdict.
* **Several conditions: Holm across conditions.** With `m` conditions of which `r`
  are still undecided, an undecided condition is tested at level `alpha / r`, and a
  decision at a look frees its share for the others at that same look (Holm, 1979,
  applied to group-sequential tests: Ye, Li, Maurer and Bretz, 2013; Maurer and
  Bretz, 2013). This is a shortcut of a closed test whose intersection tests are
  Bonferroni combinations of group-sequential tests, so the family-wise error rate
  is at most `alpha` for any dependence between conditions (they share the
  scratch baseline) and any stopping. With one condition it is the plain
  group-sequential t-test at `alpha`.
* **Decisions are final.** A status depends only on the seeds up to the look that
  set it, so later seeds never flip a decided condition; its `n`, `interval` and
  `alpha` stay those of the deciding look. The experiment stops when every
  condition is decided, or at `max_seeds`, where the undecided ones are
  `inconclusive`.
* **Intervals.** The interval at a look is the repeated confidence interval
  `mean -+ c_k * std / sqrt(n_k)` at the condition's level (Jennison and
  Turnbull, 1989): over all looks together it covers the true mean gain with
  probability at least `1 - alpha_condition`, and it excludes zero exactly when the
  condition is decided. It is intersected with `bounds`.

Why not an anytime-valid confidence sequence for bounded differences
(Waudby-Smith and Ramdas, 2023)? It assumes only that differences lie in
`[-1, 1]`, and no test that assumes only that can decide a 3-point gain within 30
seeds: 30 differences all equal to +0.03 are also likely (probability > 0.4) under
a mean-zero law that puts 3% of its mass on -1. In simulation (docs/sequential.md)
the betting confidence sequence decided none of 4000 experiments with a 3-point
gain, or a 10-point gain, by seed 30. The t-test instead assumes roughly normal seed
noise, the premise of the Student t intervals keras-tl reports for every arm.

Every function takes plain Python or NumPy values and returns plain Python values,
so results serialise to JSON as they are.

References:
    O'Brien and Fleming (1979), "A multiple testing procedure for clinical
        trials", Biometrics 35(3).
    Kim and DeMets (1987), "Design and analysis of group sequential tests based
        on the type I error spending rate function", Biometrika 74(1).
    Lan and DeMets (1983), "Discrete sequential boundaries for clinical trials",
        Biometrika 70(3).
    Holm (1979), "A simple sequentially rejective multiple test procedure",
        Scandinavian Journal of Statistics 6(2).
    Jennison and Turnbull (1989), "Interim analyses: the repeated confidence
        interval approach", Journal of the Royal Statistical Society B 51(3).
    Jennison and Turnbull (2000), "Group Sequential Methods with Applications to
        Clinical Trials", Chapman & Hall/CRC.
    Maurer and Bretz (2013), "Multiple testing in group sequential trials using
        graphical approaches", Statistics in Biopharmaceutical Research 5(4).
    Ye, Li, Maurer and Bretz (2013), "Group sequential Holm and Hochberg
        procedures", Statistics in Medicine 32(7).
    Waudby-Smith and Ramdas (2023), "Estimating means of bounded random variables
        by betting", Journal of the Royal Statistical Society B 86(1).
"""

import functools
import math
import numbers
from collections.abc import Mapping

import numpy as np

from keras_tl.errors import ConfigError, DataError
from keras_tl.scores._checks import (
    as_vector,
    check_bounds,
    check_finite_number,
    check_fraction,
    check_whole_number,
    check_within,
)

__all__ = [
    "round_sizes",
    "critical_values",
    "decide",
    "seeds_needed",
    "simulate",
]

# Each planned look has about this many times the seeds of the one before.
GROWTH = 1.5
# At most this many looks, however wide the range from min to max.
MAX_LOOKS = 10
# Error spent by a fraction f of the planned seeds: alpha * f**SPENDING_POWER (Kim and
# DeMets, 1987). 3 is close to O'Brien-Fleming, 1 to Pocock; 2 saved the most seeds
# for the least power in the simulations of docs/sequential.md.
SPENDING_POWER = 2.0
# Null paths simulated to calibrate the critical values (fixed seed: the same
# design always gets the same critical values).
CALIBRATION_PATHS = 2**19
CALIBRATION_SEED = 20230501
# Standard errors of the simulated error rate kept in reserve at each look.
CALIBRATION_MARGIN = 2.0
# A look that may add fewer simulated first crossings than this uses the exact
# Student t quantile of the amount spent (over-protective) instead of the simulation.
_MIN_SIMULATED_CROSSINGS = 100
# Differences whose spread is below this fraction of their scale are identical.
_RELATIVE_TOLERANCE = 1e-12
# Differences this far outside `bounds` are float round-off, not an error.
_BOUNDS_TOLERANCE = 1e-9

STATUSES = ("positive", "negative", "continue", "inconclusive")
_CODES = {1: "positive", -1: "negative", 0: "continue", 2: "inconclusive"}


# Validation


def _check_seeds(min_seeds, max_seeds):
    fix = "Use e.g. seeds: {min: 5, max: 30}."
    min_seeds = check_whole_number(min_seeds, "min_seeds", fix)
    max_seeds = check_whole_number(max_seeds, "max_seeds", fix)
    if min_seeds < 2:
        raise ConfigError(
            f"seeds min must be at least 2 (a paired t statistic needs two seeds). "
            f"Received: min={min_seeds}. Use e.g. seeds: {{min: 5, max: 30}}."
        )
    if max_seeds < min_seeds:
        raise ConfigError(
            f"seeds max must be at least min. Received: min={min_seeds}, "
            f"max={max_seeds}. Raise max or lower min, e.g. seeds: {{min: 5, max: 30}}."
        )
    return min_seeds, max_seeds


def _check_differences(differences_by_condition, max_seeds, bounds):
    """Returns (names, array of shape (conditions, seeds)) or raises DataError."""
    if not isinstance(differences_by_condition, Mapping) or not len(
        differences_by_condition
    ):
        raise DataError(
            f"differences_by_condition must be a non-empty dict mapping each "
            f"condition to its list of paired differences. Received: "
            f"{differences_by_condition!r}. Pass e.g. "
            f"{{'fine_tune/k=0': [0.02, 0.01]}}."
        )
    names, rows = [], []
    for name, values in differences_by_condition.items():
        names.append(name)
        rows.append(as_vector(
            values, f"differences of condition {name!r}", one_per="seed",
            drop_failed="Rerun or drop the failed seed, from every condition, before "
            "deciding.",
        ))
    lengths = {name: int(row.size) for name, row in zip(names, rows)}
    if len(set(lengths.values())) > 1:
        raise DataError(
            f"every condition must have one difference per seed for the same seeds. "
            f"Received these counts: {lengths}. Rerun the missing seeds, or drop a "
            f"failed seed from every condition."
        )
    seen = rows[0].size
    if seen > max_seeds:
        raise DataError(
            f"received {seen} differences per condition but max_seeds={max_seeds}. "
            f"Pass only the first {max_seeds} seeds, or raise seeds max."
        )
    array = np.stack(rows) if seen else np.zeros((len(rows), 0))
    check_within(
        array, bounds, "paired differences",
        "Pass differences on the scale of the metric (accuracy in [0, 1] gives "
        "differences in [-1, 1]) or widen bounds.",
        tolerance=_BOUNDS_TOLERANCE,
    )
    return names, np.clip(array, *bounds)


# The design


def round_sizes(min_seeds, max_seeds):
    """The planned cumulative seed counts at which the stopping rule looks.

    The counts grow geometrically from `min_seeds` to `max_seeds`, by a factor of
    about `GROWTH` (1.5) per round and in at most `MAX_LOOKS` (10) looks. The rule
    never looks at any other count: the looks are part of the design, fixed before
    any seed runs, which is what keeps the error rate valid when the experiment
    stops early. `min_seeds == max_seeds` gives one look, a fixed-size test.

    Args:
        min_seeds: int. Seeds run before the first look, at least 2.
        max_seeds: int. Seeds at the last look, at least `min_seeds`.

    Returns:
        A list of int, strictly increasing, from `min_seeds` to `max_seeds`.

    Example:

    >>> from keras_tl.scores import sequential
    >>> sequential.round_sizes(5, 30)
    [5, 7, 10, 15, 21, 30]
    >>> sequential.round_sizes(10, 10)
    [10]
    """
    min_seeds, max_seeds = _check_seeds(min_seeds, max_seeds)
    return list(_round_sizes(min_seeds, max_seeds))


@functools.lru_cache(maxsize=256)
def _round_sizes(min_seeds, max_seeds):
    if min_seeds == max_seeds:
        return (min_seeds,)
    ratio = max_seeds / min_seeds
    steps = math.ceil(math.log(ratio) / math.log(GROWTH) - 1e-9)
    steps = min(MAX_LOOKS - 1, max(1, steps))
    sizes = {min_seeds, max_seeds}
    for step in range(1, steps):
        sizes.add(int(round(min_seeds * ratio ** (step / steps))))
    return tuple(sorted(sizes))


def _spent(alpha, fractions):
    """Error spent by each fraction f of the planned seeds: `alpha * f**power`."""
    spent = alpha * np.asarray(fractions, dtype=np.float64) ** SPENDING_POWER
    spent[-1] = alpha
    return spent


@functools.lru_cache(maxsize=2)
def _null_abs_t(sizes):
    """|t| at each look of `CALIBRATION_PATHS` simulated null paths (normal noise).

    Each round adds a block of `m` seeds: its sum is N(0, m) and its within-block
    sum of squares chi2(m - 1), independent; the pooled sum of squares adds the
    between-block term. Two numbers per path and round instead of `m`.
    """
    rng = np.random.default_rng(CALIBRATION_SEED)
    paths = CALIBRATION_PATHS
    abs_t = np.empty((paths, len(sizes)))
    total = squares = None
    previous = 0
    for look, size in enumerate(sizes):
        block = size - previous
        block_sum = rng.standard_normal(paths) * math.sqrt(block)
        within = rng.chisquare(block - 1, paths) if block > 1 else 0.0
        if previous == 0:
            total, squares = block_sum, within
        else:
            gap = block_sum / block - total / previous
            between = previous * block / size * gap**2
            squares = squares + within + between
            total = total + block_sum
        abs_t[:, look] = np.abs(total) * math.sqrt(size - 1) / np.sqrt(size * squares)
        previous = size
    return abs_t


def _boundaries(sizes, alpha):
    """Two-sided critical values of |t| at each look, spending `alpha` in total."""
    from scipy import stats as scipy_stats

    abs_t = _null_abs_t(sizes)
    paths = abs_t.shape[0]
    spent = _spent(alpha, np.asarray(sizes) / sizes[-1])
    alive = np.ones(paths, dtype=bool)
    crossed = 0
    critical = []
    for look, size in enumerate(sizes):
        # New first crossings allowed here: the cumulative count may reach what the
        # spending allows less 2 binomial standard errors, so the simulation's
        # error lands on the safe side (the first look is exact and needs none).
        target = spent[look] * paths
        if look > 0:
            target -= CALIBRATION_MARGIN * math.sqrt(target * (1.0 - spent[look]))
        allowed = target - crossed
        if allowed <= 0:
            value = math.inf
        elif look == 0 or allowed < _MIN_SIMULATED_CROSSINGS:
            # Exact at the first look; at the others P(first crossing here) is at
            # most P(|t| >= value), so this never spends more than allowed.
            value = float(scipy_stats.t.isf(allowed / paths / 2.0, size - 1))
        else:
            candidates = abs_t[alive, look]
            count = int(allowed)
            if count >= candidates.size:
                value = 0.0
            else:
                position = candidates.size - count
                value = float(np.partition(candidates, position)[position])
        hit = alive & (abs_t[:, look] >= value)
        crossed += int(hit.sum())
        alive &= ~hit
        critical.append(value)
    return critical


@functools.lru_cache(maxsize=64)
def _critical_table(sizes, alpha, num_conditions):
    """Row r: critical |t| per look at level alpha / r (row 0: never decides).

    Holm's shortcut needs a stricter level never to have a lower critical value at
    any look. Simulation noise (or a look switching between the simulated and the
    exact marginal value) can break that by a hair, so each row is raised to at
    least the row above: raising a critical value only lowers that row's error.
    """
    table = np.full((num_conditions + 1, len(sizes)), np.inf)
    for remaining in range(1, num_conditions + 1):
        table[remaining] = _boundaries(sizes, alpha / remaining)
        if remaining > 1:
            table[remaining] = np.maximum(table[remaining], table[remaining - 1])
    table.setflags(write=False)
    return table


def critical_values(min_seeds, max_seeds, alpha=0.05, num_conditions=1):
    """The planned looks and the |t| a condition must reach at each to be decided.

    Args:
        min_seeds: int. Seeds before the first look, at least 2.
        max_seeds: int. Seeds at the last look, at least `min_seeds`.
        alpha: float. Family-wise error rate over all conditions. Defaults to `0.05`.
        num_conditions: int. Conditions still undecided (Holm: each is tested at
            `alpha / num_conditions`). Defaults to `1`.

    Returns:
        A dict with keys `round_sizes` (list of int), `alpha` (float: the level per
        condition), `critical_t` (list of float: the two-sided critical value of the
        paired t statistic at each look; `inf` where the look spends nothing) and
        `spent` (list of float: the cumulative error spent by each look).

    Example:

    >>> from keras_tl.scores import sequential
    >>> design = sequential.critical_values(5, 30, alpha=0.05)
    >>> design["round_sizes"]
    [5, 7, 10, 15, 21, 30]
    >>> [round(value, 1) for value in design["critical_t"]]
    [7.9, 5.6, 4.0, 3.1, 2.6, 2.2]
    """
    min_seeds, max_seeds = _check_seeds(min_seeds, max_seeds)
    alpha = check_fraction(alpha, "alpha", "0.05")
    check_whole_number(
        num_conditions, "num_conditions", "Pass the number of conditions compared.",
        least=1,
    )
    sizes = _round_sizes(min_seeds, max_seeds)
    level = alpha / int(num_conditions)
    table = _critical_table(sizes, alpha, int(num_conditions))
    return {
        "round_sizes": list(sizes),
        "alpha": level,
        "critical_t": [float(value) for value in table[int(num_conditions)]],
        "spent": [
            float(value) for value in _spent(level, np.asarray(sizes) / sizes[-1])
        ],
    }


# The rule


def _t_statistics(differences):
    """Paired t statistics over the last axis; identical values give 0 or +-inf."""
    size = differences.shape[-1]
    mean = differences.mean(axis=-1)
    spread = np.max(np.abs(differences - mean[..., None]), axis=-1)
    scale = _RELATIVE_TOLERANCE * np.maximum(1.0, np.max(np.abs(differences), axis=-1))
    identical = spread <= scale
    std = np.where(identical, 1.0, differences.std(axis=-1, ddof=1))
    t = mean / (std / math.sqrt(size))
    flat = np.where(np.abs(mean) <= scale, 0.0, np.where(mean > 0, np.inf, -np.inf))
    return np.where(identical, flat, t)


def _sequential(differences, sizes, alpha):
    """Runs the rule on differences of shape (experiments, conditions, seeds).

    Returns (status codes, look index, conditions remaining): status 1 positive,
    -1 negative, 0 continue, 2 inconclusive; the look that set the status (the last
    look taken for undecided ones, -1 before the first); and `r` in `alpha / r`.
    """
    experiments, conditions, seen = differences.shape
    table = _critical_table(tuple(sizes), float(alpha), conditions)
    status = np.zeros((experiments, conditions), dtype=np.int8)
    look_of = np.full((experiments, conditions), -1, dtype=np.int64)
    remaining_of = np.full((experiments, conditions), conditions, dtype=np.int64)
    for look, size in enumerate(sizes):
        if size > seen:
            break
        t = _t_statistics(differences[:, :, :size])
        while True:
            undecided = status == 0
            remaining = undecided.sum(axis=1)
            critical = table[remaining, look][:, None]
            # A look that spends nothing (critical value inf) decides nothing, not
            # even identical differences (|t| = inf).
            new = undecided & (np.abs(t) >= critical) & np.isfinite(critical)
            if not new.any():
                break
            status[new] = np.where(t[new] > 0, 1, -1)
            look_of[new] = look
            remaining_of[new] = np.broadcast_to(remaining[:, None], new.shape)[new]
        look_of[undecided] = look
        remaining_of[undecided] = np.broadcast_to(remaining[:, None], undecided.shape)[
            undecided
        ]
    if seen >= sizes[-1]:
        status[status == 0] = 2
    return status, look_of, remaining_of


def decide(
    differences_by_condition, min_seeds, max_seeds, alpha=0.05, bounds=(-1.0, 1.0)
):
    """Decides each condition's paired gain after the seeds run so far.

    Call it after every round with all the differences so far (the same seeds, in
    seed order, for every condition of the family, decided ones included). It looks
    at each planned count of `round_sizes(min_seeds, max_seeds)` reached so far and
    applies the group-sequential paired t-test with error spending
    `alpha * (n / max_seeds)**2`, Holm across conditions (see the module
    docstring). The family-wise error rate stays at most `alpha` however the
    experiment stops. A decided
    condition stays decided: later seeds never change its status, `n`,
    `interval` or `alpha`. Seeds beyond the last planned count reached wait for the
    next planned count.

    Args:
        differences_by_condition: dict mapping a condition name to its list of
            paired differences `metric(arm) - metric(scratch)`, one per seed, signed
            so that positive is better. Every condition has the same seeds.
        min_seeds: int. Seeds before the first look (at least 2).
        max_seeds: int. Seeds at the last look (at least `min_seeds`).
        alpha: float. Family-wise error rate over the conditions. Defaults to `0.05`.
        bounds: pair of float `(low, high)` with `low < 0 < high`. The range of a
            difference; intervals are intersected with it. Defaults to `(-1, 1)`,
            the range of a difference of accuracies.

    Returns:
        A dict mapping each condition name, in the order given, to a dict with keys
        `status` (`"positive"`, `"negative"`, `"continue"` or `"inconclusive"`),
        `n` (int: seeds at the look that set the status; the seeds seen before
        the first look), `interval` (`[low, high]`: the repeated confidence interval
        at that look, or None before the first look), `alpha` (float: the
        two-sided level the condition was tested at, `alpha / r` with `r`
        conditions undecided), `mean` (float: the mean difference at `n`, None
        without seeds) and `seeds_seen` (int: differences received).

    Example:

    >>> from keras_tl.scores import sequential
    >>> decisions = sequential.decide(
    ...     {"fine_tune": [0.5] * 5, "linear_probe": [0.0] * 5},
    ...     min_seeds=5,
    ...     max_seeds=30,
    ... )
    >>> decisions["fine_tune"]["status"], decisions["linear_probe"]["status"]
    ('positive', 'continue')
    >>> sequential.seeds_needed(decisions, min_seeds=5, max_seeds=30)
    2
    """
    min_seeds, max_seeds = _check_seeds(min_seeds, max_seeds)
    alpha = check_fraction(alpha, "alpha", "0.05")
    low, high = check_bounds(bounds, difference=True)
    names, array = _check_differences(differences_by_condition, max_seeds, (low, high))
    sizes = _round_sizes(min_seeds, max_seeds)
    status, look_of, remaining_of = _sequential(array[None], sizes, alpha)
    table = _critical_table(sizes, alpha, len(names))
    seen = int(array.shape[1])
    decisions = {}
    for index, name in enumerate(names):
        look = int(look_of[0, index])
        remaining = int(remaining_of[0, index])
        if look < 0:
            decisions[name] = {
                "status": "continue",
                "n": seen,
                "interval": None,
                "alpha": alpha / remaining,
                "mean": float(array[index].mean()) if seen else None,
                "seeds_seen": seen,
            }
            continue
        size = sizes[look]
        values = array[index, :size]
        mean = float(values.mean())
        critical = float(table[remaining, look])
        if float(np.max(np.abs(values - mean))) <= _RELATIVE_TOLERANCE * max(
            1.0, float(np.max(np.abs(values)))
        ):
            half_width = 0.0
        else:
            half_width = critical * float(values.std(ddof=1)) / math.sqrt(size)
        interval = [max(low, mean - half_width), min(high, mean + half_width)]
        decisions[name] = {
            "status": _CODES[int(status[0, index])],
            "n": size,
            "interval": [float(interval[0]), float(interval[1])],
            "alpha": alpha / remaining,
            "mean": mean,
            "seeds_seen": seen,
        }
    return decisions


def seeds_needed(decisions, min_seeds, max_seeds):
    """How many more seeds to run before calling `decide` again.

    Args:
        decisions: dict. What `decide` returned for the seeds so far.
        min_seeds: int. The same `min_seeds` as given to `decide`.
        max_seeds: int. The same `max_seeds` as given to `decide`.

    Returns:
        An int, the seeds to add to reach the next planned look; or None when every
        condition is decided or `inconclusive` (the experiment is over).

    Example:

    >>> from keras_tl.scores import sequential
    >>> sequential.seeds_needed(
    ...     sequential.decide({"fine_tune": []}, 5, 30), min_seeds=5, max_seeds=30
    ... )
    5
    """
    min_seeds, max_seeds = _check_seeds(min_seeds, max_seeds)
    if not isinstance(decisions, Mapping) or not decisions or not all(
        isinstance(entry, Mapping) and entry.get("status") in STATUSES
        and isinstance(entry.get("seeds_seen"), numbers.Integral)
        for entry in decisions.values()
    ):
        raise ConfigError(
            f"decisions must be the dict that decide() returned. Received: "
            f"{decisions!r}. Pass sequential.decide(...)'s result unchanged."
        )
    if all(entry["status"] != "continue" for entry in decisions.values()):
        return None
    seen = max(int(entry["seeds_seen"]) for entry in decisions.values())
    later = [size for size in _round_sizes(min_seeds, max_seeds) if size > seen]
    if not later:
        return None
    return later[0] - seen


# Planning


def simulate(
    mean_gain,
    std,
    num_conditions=3,
    min_seeds=5,
    max_seeds=30,
    alpha=0.05,
    num_experiments=2000,
    seed=0,
    bounds=(-1.0, 1.0),
):
    """Simulates the stopping rule: error rate, power and seeds it would take.

    Draws `num_experiments` experiments whose conditions have paired differences
    `N(mean_gain, std**2)` per seed, independent, clipped to `bounds`, and runs
    exactly the rule `decide` applies (vectorised over experiments). Use it to
    choose `seeds: {min, max}`: with every gain 0, `any_decided_rate` is the
    family-wise error rate; with a gain, `positive_rate` is the power.

    Args:
        mean_gain: float, or a list of float with one gain per condition.
        std: float. Seed-to-seed standard deviation of a paired difference.
        num_conditions: int. Conditions in the family (ignored when `mean_gain` is
            a list). Defaults to `3`.
        min_seeds: int. Defaults to `5`.
        max_seeds: int. Defaults to `30`.
        alpha: float. Family-wise error rate. Defaults to `0.05`.
        num_experiments: int. Simulated experiments. Defaults to `2000`.
        seed: int. Seed of the simulation. Defaults to `0`.
        bounds: pair of float. Range of a difference. Defaults to `(-1, 1)`.

    Returns:
        A dict with keys `round_sizes` (list of int), `num_experiments` (int),
        `any_decided_rate` (fraction of experiments with at least one condition
        decided: the family-wise error rate when every gain is 0),
        `positive_rate`, `negative_rate` and `inconclusive_rate` (fractions over
        all conditions of all experiments), `all_decided_rate` (fraction of
        experiments in which every condition was decided), `mean_seeds` (mean
        seeds an experiment ran: it stops once every condition is decided, else
        at `max_seeds`) and `mean_seeds_to_decide` (mean `n` of the decided
        conditions, None if none).

    Example:

    >>> from keras_tl.scores import sequential
    >>> result = sequential.simulate(0.03, 0.03, num_experiments=200)
    >>> result["positive_rate"] > 0.9 and result["mean_seeds"] < 30
    True
    """
    min_seeds, max_seeds = _check_seeds(min_seeds, max_seeds)
    alpha = check_fraction(alpha, "alpha", "0.05")
    low, high = check_bounds(bounds, difference=True)
    try:
        gains = np.atleast_1d(np.asarray(mean_gain, dtype=np.float64))
    except (TypeError, ValueError):
        gains = np.array([np.nan])
    if gains.ndim != 1 or gains.size == 0 or not np.all(np.isfinite(gains)):
        raise ConfigError(
            f"mean_gain must be a number or a list of numbers, one per condition. "
            f"Received: mean_gain={mean_gain!r}. Use e.g. mean_gain=0.03."
        )
    if gains.size == 1:
        check_whole_number(
            num_conditions, "num_conditions", "Use e.g. num_conditions=3.", least=1
        )
        gains = np.full(int(num_conditions), gains[0])
    check_finite_number(
        std, "std", "Use e.g. std=0.03 (3 points of accuracy between seeds)."
    )
    check_whole_number(
        num_experiments, "num_experiments", "Use e.g. num_experiments=2000.", least=1
    )
    sizes = _round_sizes(min_seeds, max_seeds)
    size_of = np.asarray(sizes)
    rng = np.random.default_rng(seed)
    counts = dict(positive=0, negative=0, inconclusive=0, any=0, all=0)
    seeds_total, decided_n, decided_count = 0, 0, 0
    chunk = 10_000
    for start in range(0, int(num_experiments), chunk):
        size = min(chunk, int(num_experiments) - start)
        noise = rng.standard_normal((size, gains.size, max_seeds)) * std
        differences = np.clip(noise + gains[None, :, None], low, high)
        status, look_of, _ = _sequential(differences, sizes, alpha)
        decided = (status == 1) | (status == -1)
        counts["positive"] += int((status == 1).sum())
        counts["negative"] += int((status == -1).sum())
        counts["inconclusive"] += int((status == 2).sum())
        counts["any"] += int(decided.any(axis=1).sum())
        counts["all"] += int(decided.all(axis=1).sum())
        stop = np.where(decided.all(axis=1), size_of[look_of].max(axis=1), max_seeds)
        seeds_total += int(stop.sum())
        decided_n += int(size_of[look_of][decided].sum())
        decided_count += int(decided.sum())
    total = int(num_experiments) * gains.size
    return {
        "round_sizes": list(sizes),
        "num_experiments": int(num_experiments),
        "any_decided_rate": counts["any"] / num_experiments,
        "positive_rate": counts["positive"] / total,
        "negative_rate": counts["negative"] / total,
        "inconclusive_rate": counts["inconclusive"] / total,
        "all_decided_rate": counts["all"] / num_experiments,
        "mean_seeds": seeds_total / num_experiments,
        "mean_seeds_to_decide": decided_n / decided_count if decided_count else None,
    }
