"""Multi-task performance relative to single-task baselines (delta_m).

A fused (multi-task) model is worth having when it is at least as good as one model
per task. `delta_m` condenses that comparison into one signed fraction: positive
means better than the single-task baselines on average.

References:
    Maninis, Radosavovic and Kokkinos (2019), "Attentive Single-Tasking of Multiple
        Tasks", CVPR 2019 (the metric-balanced form).
    Lin and Zhang (2023), "LibMTL: A Python Library for Multi-Task Learning", JMLR
        24(209) (the task-balanced form).
"""

import math

from keras_tl.errors import ConfigError, DataError

__all__ = ["delta_m", "FORMS", "DIRECTIONS"]

FORMS = ("metric_balanced", "task_balanced")
DIRECTIONS = ("higher", "lower")


def _relative_terms(results, baselines, directions):
    """Returns {task: [signed relative difference per metric]} in baseline order."""
    for name, mapping in (("results", results), ("baselines", baselines)):
        if not isinstance(mapping, dict) or not mapping:
            raise DataError(
                f"{name} must be a non-empty dict {{task: {{metric: value}}}}. "
                f"Received: {name}={mapping!r}. Pass one metric dict per task."
            )
    if not isinstance(directions, dict):
        raise ConfigError(
            f"directions must be a dict {{metric: 'higher' | 'lower'}}. "
            f"Received: directions={directions!r}. Declare every metric's direction."
        )
    missing = [task for task in baselines if task not in results]
    extra = [task for task in results if task not in baselines]
    if missing or extra:
        raise DataError(
            f"results and baselines must cover the same tasks. Received: tasks "
            f"{missing} only in baselines and {extra} only in results. "
            "Evaluate the fused model on every task that has a single-task baseline."
        )

    terms = {}
    for task, baseline_metrics in baselines.items():
        task_results = results[task]
        if not isinstance(baseline_metrics, dict) or not baseline_metrics:
            raise DataError(
                f"baselines[{task!r}] must be a non-empty dict {{metric: value}}. "
                f"Received: {baseline_metrics!r}. Pass the single-task metrics."
            )
        if not isinstance(task_results, dict):
            raise DataError(
                f"results[{task!r}] must be a dict {{metric: value}}. "
                f"Received: {task_results!r}. Pass the fused model's metrics."
            )
        missing = [metric for metric in baseline_metrics if metric not in task_results]
        extra = [metric for metric in task_results if metric not in baseline_metrics]
        if missing or extra:
            raise DataError(
                f"Task {task!r} must have the same metrics in results and baselines. "
                f"Received: metrics {missing} only in baselines and {extra} only in "
                "results. Report the same metrics for the fused and single-task models."
            )
        terms[task] = []
        for metric, baseline_value in baseline_metrics.items():
            direction = directions.get(metric)
            if direction not in DIRECTIONS:
                raise ConfigError(
                    f"directions[{metric!r}] must be one of {list(DIRECTIONS)}. "
                    f"Received: {direction!r}. Declare e.g. "
                    f"directions={{{metric!r}: 'higher'}} (or 'lower' for losses)."
                )
            value = _finite(task_results[metric], f"results[{task!r}][{metric!r}]")
            baseline_value = _finite(
                baseline_value, f"baselines[{task!r}][{metric!r}]"
            )
            if baseline_value == 0.0:
                raise DataError(
                    f"baselines[{task!r}][{metric!r}] is 0, so the relative "
                    "difference is undefined. Expected a non-zero baseline metric; "
                    "drop this metric or use one that is never exactly 0."
                )
            sign = 1.0 if direction == "higher" else -1.0
            terms[task].append(sign * (value - baseline_value) / baseline_value)
    return terms


def _finite(value, name):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise DataError(
            f"{name} must be a finite number. Received: {value!r}. "
            "Check that the trial finished and reported this metric."
        )
    return number


def delta_m(results, baselines, directions, form="metric_balanced"):
    """Relative multi-task gain over single-task baselines (delta_m).

    For each task `t` and metric `k`, the relative difference of the multi-task
    metric `M` against the single-task baseline `B` is
    `(-1)^l (M - B) / B` with `l = 1` when lower is better, so that every term is
    positive when the multi-task model is better. The `"metric_balanced"` form
    (Maninis et al., 2019) averages these terms over all (task, metric) pairs; the
    `"task_balanced"` form (as in LibMTL, Lin and Zhang, 2023) first averages over
    each task's metrics and then over tasks, so a task with many metrics does not
    dominate. The two agree when every task has the same number of metrics.

    Metrics are assumed positive (accuracies, errors, losses); a zero baseline is
    rejected because the relative difference is undefined.

    Args:
        results: dict. `{task: {metric: value}}` of the multi-task (fused) model.
        baselines: dict. `{task: {metric: value}}` of the single-task models; must
            have the same tasks and metrics as `results`.
        directions: dict. `{metric: "higher" | "lower"}`; metric names are shared
            across tasks.
        form: str. `"metric_balanced"` (default) or `"task_balanced"`.

    Returns:
        The gain as a float fraction (`0.05` means +5%); positive means the
        multi-task model is better than the baselines.

    Example:

    >>> from keras_tl.scores.multitask import delta_m
    >>> gain = delta_m(
    ...     results={"a": {"accuracy": 0.88, "loss": 0.45}},
    ...     baselines={"a": {"accuracy": 0.80, "loss": 0.50}},
    ...     directions={"accuracy": "higher", "loss": "lower"},
    ... )
    >>> round(gain, 6)
    0.1
    """
    if form not in FORMS:
        raise ConfigError(
            f"Unknown delta_m form. Expected one of {list(FORMS)}. "
            f"Received: form={form!r}."
        )
    terms = _relative_terms(results, baselines, directions)
    if form == "metric_balanced":
        flat = [term for task_terms in terms.values() for term in task_terms]
        return float(sum(flat) / len(flat))
    task_means = [sum(task_terms) / len(task_terms) for task_terms in terms.values()]
    return float(sum(task_means) / len(task_means))
