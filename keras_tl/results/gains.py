"""Paired gains of transfer conditions, their verdicts, and the best condition.

Every transfer condition is compared with scratch (same train size) and, when the
`random_transfer` control ran, with that control at the same source, freeze depth
and train size: the second comparison tells what the source *learned* from what
its architecture and initialisation scale alone give. Both comparisons form one
Holm family (or, with `seeds: {min, max}`, one group-sequential family), so every
verdict in a run keeps the family-wise error rate at 5%. docs/statistics.md has
the formulas.
"""

from keras_tl.config.arms import BASELINE, rules_of
from keras_tl.scores import sequential, stats
from keras_tl.scores.task_metrics import bounds_of, higher_is_better

# Gains are not reported for arms with fewer finished seeds than this.
MIN_SEEDS_FOR_GAIN = 2
CONTROL = "random_transfer"
ALPHA = 0.05
# Resolution an inconclusive gain's "seeds needed" is computed for, per metric
# unit: 2 points of accuracy or AUC.
RESOLUTION = 0.02


def seed_values(trials, metric):
    """`{seed: test metric}` of the finished trials."""
    return {t["seed"]: t["test"][metric] for t in trials if t["status"] == "ok"}


def _comparisons(conditions, groups):
    """`(entry, comparator, comparator_key)` for every gain to compute."""
    keys = {(c["arm"], c["source"], c["freeze_depth"], c["train_size"]) for c in conditions}
    pairs = []
    for entry in conditions:
        rules = rules_of(entry["arm"])
        if rules.is_baseline:
            continue
        pairs.append((entry, BASELINE, (BASELINE, None, 0, entry["train_size"])))
    for entry in conditions:
        rules = rules_of(entry["arm"])
        if rules.is_baseline or rules.is_control or not rules.uses_source:
            continue
        control = (CONTROL, entry["source"], entry["freeze_depth"], entry["train_size"])
        if control in keys:
            pairs.append((entry, CONTROL, control))
    return pairs


def _difference_bounds(metric):
    """Bounds of a difference of `metric`, for the sequential rule (finite)."""
    low_high = bounds_of(metric)
    if low_high is None:
        return (-1e12, 1e12)
    width = low_high[1] - low_high[0]
    return (-width, width)


def _in_points(metric):
    """Whether gains of `metric` read as points (x100): a metric in [0, 1]."""
    return bounds_of(metric) == (0.0, 1.0)


def _explain(gain, metric, family_size, comparator_mean):
    """What an inconclusive gain rules out and the seeds that would resolve it to
    2 points (a [0, 1] metric) or to 2% of the comparator's mean (any other)."""
    if _in_points(metric):
        scale, unit, resolution = 100.0, "points", RESOLUTION
    else:
        scale, unit = 1.0, ""
        resolution = RESOLUTION * max(abs(comparator_mean), 1e-12)
    return stats.explain_inconclusive(
        gain, resolution=resolution, alpha=ALPHA / max(family_size, 1), scale=scale, unit=unit
    )["text"]


def paired_gains(conditions, groups, metric, seed_range=None):
    """The paired gain of every transfer condition over scratch and the control.

    Args:
        conditions: list of condition entries (see `build_results`).
        groups: dict mapping a condition key to its trial records.
        metric: str. The primary metric.
        seed_range: `(min, max)` for seeds added in rounds, or None.

    Returns:
        A list of gain dicts, the scratch comparisons first; each has
        `comparator` (`"scratch"` or `"random_transfer"`), `verdict` and, when
        inconclusive, `explanation`.
    """
    higher = higher_is_better(metric)
    bounds = bounds_of(metric)
    pairs = _comparisons(conditions, groups)
    gains, differences, gain_base_means = [], {}, []
    for entry, comparator, comparator_key in pairs:
        arm_values = seed_values(groups[(entry["arm"], entry["source"], entry["freeze_depth"],
                                         entry["train_size"])], metric)
        base_values = seed_values(groups.get(comparator_key, []), metric)
        seeds = sorted(set(arm_values) & set(base_values))
        gain = {
            "label": entry["label"],
            "arm": entry["arm"],
            "source": entry["source"],
            "freeze_depth": entry["freeze_depth"],
            "train_size": entry["train_size"],
            "num_samples": entry["num_samples"],
            "metric": metric,
            "comparator": comparator,
            "seeds": seeds,
        }
        if len(seeds) < MIN_SEEDS_FOR_GAIN:
            gain.update(
                n=len(seeds), mean=None, p_value=None, verdict="insufficient",
                note=f"fewer than {MIN_SEEDS_FOR_GAIN} seeds finished for both this arm "
                     f"and {comparator}",
            )
        else:
            gain.update(stats.paired_difference(
                [arm_values[s] for s in seeds], [base_values[s] for s in seeds],
                higher_is_better=higher, bounds=bounds,
            ))
            sign = 1.0 if higher else -1.0
            differences[len(gains)] = {
                s: sign * (arm_values[s] - base_values[s]) for s in seeds
            }
        gain_base_means.append(
            sum(base_values.values()) / len(base_values) if base_values else 0.0)
        gains.append(gain)
    adjusted = stats.holm([gain["p_value"] for gain in gains])
    for gain, p_adjusted in zip(gains, adjusted):
        gain["p_value_adjusted"] = p_adjusted
        if gain.get("verdict") != "insufficient":
            gain["verdict"] = stats.verdict(gain["mean"], p_adjusted, ALPHA)
    if seed_range and differences:
        _sequential_verdicts(gains, differences, metric, seed_range, groups)
    family = sum(1 for gain in gains if gain["verdict"] != "insufficient")
    for gain, base_mean in zip(gains, gain_base_means):
        if gain["verdict"] == "inconclusive" and gain.get("sequential") is None:
            gain["explanation"] = _explain(gain, metric, family, base_mean)
    return gains


def _sequential_verdicts(gains, differences, metric, seed_range, groups):
    """Verdicts from the group-sequential rule (`keras_tl.scores.sequential`).

    The family is every gain with at least two seeds; it is decided on the seeds
    every member finished, in seed order. A condition the rule leaves at
    `continue` once the run's last round has been run is `inconclusive`.
    """
    low, high = seed_range
    common = sorted(set.intersection(*(set(d) for d in differences.values())))
    decisions = sequential.decide(
        {index: [d[s] for s in common] for index, d in differences.items()},
        low, high, alpha=ALPHA, bounds=_difference_bounds(metric),
    )
    scratch_seeds = {t["seed"] for key, trials in groups.items() if key[0] == BASELINE
                     for t in trials}
    last_round_run = bool(scratch_seeds) and max(scratch_seeds) >= high - 1
    for index, decision in decisions.items():
        gain = gains[index]
        status = decision["status"]
        if status == "continue" and last_round_run:
            status = "inconclusive"
        gain["verdict"] = status
        gain["sequential"] = {
            "status": decision["status"], "n": decision["n"], "interval": decision["interval"],
            "alpha": decision["alpha"], "mean": decision["mean"],
            "seeds_seen": decision["seeds_seen"], "min_seeds": low, "max_seeds": high,
        }
        if status == "inconclusive":
            interval = decision["interval"]
            scale, unit = (100.0, " points") if _in_points(metric) else (1.0, "")
            if interval is None:
                gain["explanation"] = (
                    f"inconclusive: {decision['seeds_seen']} paired seeds finished, too few "
                    f"for the first look at {low} seeds")
            else:
                gain["explanation"] = (
                    f"inconclusive after {decision['seeds_seen']} seeds (the most planned: "
                    f"{high}): gains above {scale * interval[1]:+.3g}{unit} and below "
                    f"{scale * interval[0]:+.3g}{unit} are ruled out (repeated "
                    f"{100 * (1 - decision['alpha']):.3g}% confidence interval)")


def undecided(gains):
    """Whether a round of seeds more could still decide some gain."""
    return any(gain["verdict"] == "continue" for gain in gains)


def best_condition(conditions, gains, metric):
    """The transfer condition with the best mean val metric, and its test gains.

    Controls (`random_transfer`) are never the best arm: they exist to be beaten.
    The result is the gain over scratch, with `vs_control` holding the gain over
    `random_transfer` at the same depth (None when the control did not run) and
    `control_ran` saying whether the control was part of the experiment.
    """
    candidates = [
        c for c in conditions
        if not (rules_of(c["arm"]).is_baseline or rules_of(c["arm"]).is_control)
        and metric in c["val"]
    ]
    if not candidates:
        return None
    higher = higher_is_better(metric)
    chosen = (max if higher else min)(candidates, key=lambda c: c["val"][metric]["mean"])
    matching = [gain for gain in gains if _same_condition(gain, chosen)]
    over_scratch = [g for g in matching if g["comparator"] == BASELINE]
    if not over_scratch:
        return None
    over_control = [g for g in matching if g["comparator"] == CONTROL]
    control_ran = any(c["arm"] == CONTROL for c in conditions)
    return {**over_scratch[0], "selected_by": f"val_{metric}",
            "control_ran": control_ran,
            "vs_control": over_control[0] if over_control else None}


def _same_condition(entry, other):
    return all(entry[k] == other[k] for k in ("arm", "source", "freeze_depth", "train_size"))
