"""What transfer does to the source task and to several tasks at once.

Retention (source metric before and after target training), the fused
multi-task model against single-task baselines (delta_m), the two-task stream
(ACC, BWT, FWT), and layer-wise CKA. Each source task is measured with its own
primary metric and direction, which may differ from the target's.
"""

import numpy as np

from keras_tl.config.arms import BASELINE, rules_of
from keras_tl.errors import DataError
from keras_tl.scores import continual, multitask, stats
from keras_tl.scores.task_metrics import METRICS_BY_KIND, PRIMARY_METRIC, higher_is_better


def label(arm, source, depth, num_sources):
    """The condition's label: `arm@depth` for swept arms, `from SOURCE` with several."""
    text = f"{arm}@{depth}" if rules_of(arm).sweeps_depth else arm
    if source is not None and num_sources > 1:
        text += f" from {source}"
    return text


def source_metrics(context):
    """`{source name: its task's primary metric}` (None for a source without a task).

    Read from the stored context's task kinds, so run folders written before
    sources had metrics of their own summarise the same way.
    """
    return {
        source["name"]: PRIMARY_METRIC[source["task"]["kind"]] if source.get("task") else None
        for source in context["sources"]
    }


def _task_kind(context, task):
    """The kind of a task named in a fused model (the target or a source's), or None."""
    if task == context["target_task"]["name"]:
        return context["target_task"]["kind"]
    for source in context["sources"]:
        if source.get("task") and source["task"]["name"] == task:
            return source["task"]["kind"]
    return None


def _task_metric(context, task):
    """The primary metric of a task named in a fused model (target or a source)."""
    if task == context["target_task"]["name"]:
        return context["primary_metric"]
    kind = _task_kind(context, task)
    return PRIMARY_METRIC[kind] if kind else context["source_metric"]


def delta_m_metrics(context, task, available, named):
    """The metrics of `task` that delta_m averages: the task metrics the experiment
    names (`metrics:`, or every metric of the task's kind when it names none), never
    the training loss, each once; the task's primary metric when none is left."""
    kind = _task_kind(context, task)
    wanted = named if named else (METRICS_BY_KIND[kind] if kind else available)
    chosen = [m for m in dict.fromkeys(wanted) if m != "loss" and m in available]
    return chosen or [_task_metric(context, task)]


def retention(groups, context, num_sources):
    """Per condition: each source's metric before and after target training."""
    rows = []
    metric_of = source_metrics(context)
    for (arm, source, depth, size), trials in groups.items():
        metric = metric_of.get(source) if source is not None else None
        if metric is None:
            continue
        pairs = [
            t["source_metrics"] for t in trials
            if t["status"] == "ok" and t.get("source_metrics") and t["source_metrics"]["after"]
        ]
        if not pairs:
            continue
        higher = higher_is_better(metric)
        before = [p["before"][metric] for p in pairs]
        after = [p["after"][metric] for p in pairs]
        rows.append(
            {
                "label": label(arm, source, depth, num_sources),
                "arm": arm,
                "source": source,
                "freeze_depth": depth,
                "train_size": size,
                "metric": metric,
                "before": stats.summarize(before),
                "after": stats.summarize(after),
                "forgetting": stats.summarize(
                    [continual.forgetting(b, a, higher) for b, a in zip(before, after)]),
            }
        )
    return rows


def fusion(groups, context, named_metrics=None):
    """Per fused condition: each task's metrics and delta_m (both forms) vs the
    single-task baselines of the same seed (scratch for the target, the trained
    source model for a source task), with CIs over seeds.

    delta_m averages the named task metrics only (see `delta_m_metrics`); the row's
    `delta_m_metrics` says which.
    """
    target = context["target_task"]["name"]
    rows = []
    for (arm, source, depth, size), trials in groups.items():
        if not rules_of(arm).is_fused:
            continue
        scratch = {
            t["seed"]: t["test"] for t in groups.get((BASELINE, None, 0, size), [])
            if t["status"] == "ok"
        }
        finished = [t for t in trials if t["status"] == "ok" and t["seed"] in scratch]
        if not finished:
            continue
        tasks = list(finished[0]["fused"]["test"])
        used = {
            task: delta_m_metrics(
                context, task,
                [m for m, v in finished[0]["fused"]["test"][task].items() if v is not None],
                named_metrics,
            )
            for task in tasks
        }
        directions = {m: "higher" if higher_is_better(m) else "lower"
                      for metrics in used.values() for m in metrics}
        forms = {form: [] for form in multitask.FORMS}
        undefined = None
        for trial in finished:
            results = trial["fused"]["test"]
            baselines = {**trial["fused"]["source_baselines"], target: scratch[trial["seed"]]}
            metrics = {task: {m: results[task][m] for m in used[task]} for task in tasks}
            base = {task: {m: baselines[task][m] for m in used[task]} for task in tasks}
            try:
                for form in multitask.FORMS:
                    forms[form].append(multitask.delta_m(metrics, base, directions, form=form))
            except DataError as error:  # e.g. a baseline of exactly 0: no relative change.
                undefined = f"seed {trial['seed']}: {error}".splitlines()[0]
                break
        per_task = {
            task: {
                metric: stats.summarize([t["fused"]["test"][task][metric] for t in finished])
                for metric in finished[0]["fused"]["test"][task]
                if all(t["fused"]["test"][task][metric] is not None for t in finished)
            }
            for task in tasks
        }
        rows.append(
            {
                "label": "fused",
                "train_size": size,
                "tasks": tasks,
                "test": per_task,
                "delta_m": None if undefined else {
                    form: stats.summarize(values) for form, values in forms.items()},
                "delta_m_metrics": used,
                "delta_m_note": undefined,
                "per_task": _fused_stream(context, tasks, finished, scratch),
                "baselines": {"target": "scratch (same seed and train size)",
                              "sources": "the trained source model (same seed)"},
            }
        )
    return rows


def _fused_stream(context, tasks, finished, scratch):
    """Per task, the stream view of joint training: random init -> fused, and the
    fused model's shortfall against its single-task baseline (positive = the fused
    model is worse on that task, like forgetting)."""
    target = context["target_task"]["name"]
    per_task = {}
    for task in tasks:
        metric = _task_metric(context, task)
        higher = higher_is_better(metric)
        baselines = [
            scratch[t["seed"]][metric] if task == target
            else t["fused"]["source_baselines"][task][metric]
            for t in finished
        ]
        fused_values = [t["fused"]["test"][task][metric] for t in finished]
        per_task[task] = {
            "metric": metric,
            "random_init": stats.summarize(
                [t["fused"]["random_init"][task][metric] for t in finished]),
            "single_task": stats.summarize(baselines),
            "fused": stats.summarize(fused_values),
            "shortfall": stats.summarize(
                [continual.forgetting(b, f, higher) for b, f in zip(baselines, fused_values)]),
        }
    return per_task


def stream(groups, context, num_sources):
    """Sequential transfer as a two-task stream (Lopez-Paz & Ranzato 2017).

    R[i][j] is the metric on task j (0: source, 1: target) after training on task
    i; the random-init row gives FWT's baseline. Per condition: ACC, BWT, FWT and
    forgetting of the source task, each with a CI over seeds. Each column keeps its
    own metric's direction: BWT and forgetting the source metric's, FWT the target
    metric's. ACC averages the two columns, so it is given (not None) only when
    both tasks use the same metric.
    """
    rows = []
    metric_of = source_metrics(context)
    target_metric = context["primary_metric"]
    for (arm, source, depth, size), trials in groups.items():
        source_metric = metric_of.get(source) if source is not None else None
        if source_metric is None:
            continue
        matrices, random_rows = [], []
        for t in trials:
            record_stream, retained = t.get("stream"), t.get("source_metrics")
            if t["status"] != "ok" or not record_stream or not retained or not retained["after"]:
                continue
            matrices.append([
                [retained["before"][source_metric],
                 record_stream["before_target_training"][target_metric]],
                [retained["after"][source_metric], t["test"][target_metric]],
            ])
            random_rows.append([record_stream["random_init"][0][source_metric],
                                record_stream["random_init"][1][target_metric]])
        if not matrices:
            continue
        source_higher = higher_is_better(source_metric)
        target_higher = higher_is_better(target_metric)
        same_metric = source_metric == target_metric
        rows.append(
            {
                "label": label(arm, source, depth, num_sources),
                "arm": arm, "source": source, "freeze_depth": depth, "train_size": size,
                "metrics": [source_metric, target_metric],
                "accuracy_matrix": np.mean(matrices, axis=0).tolist(),
                "random_init": np.mean(random_rows, axis=0).tolist(),
                "acc": stats.summarize([continual.average_accuracy(R) for R in matrices])
                if same_metric else None,
                "bwt": stats.summarize(
                    [continual.backward_transfer(R, source_higher) for R in matrices]),
                "fwt": stats.summarize(
                    [continual.forward_transfer(R, b, target_higher)
                     for R, b in zip(matrices, random_rows)]),
                "forgetting": stats.summarize(
                    [continual.forgetting(R[0][0], R[1][0], source_higher) for R in matrices]),
            }
        )
    return rows


def cka(groups, num_sources):
    """Mean linear CKA (source vs trained target) per transferred unit and condition."""
    rows = []
    for (arm, source, depth, size), trials in groups.items():
        maps = [t["cka"] for t in trials if t["status"] == "ok" and t.get("cka")]
        if not maps:
            continue
        layers = list(maps[0])
        rows.append(
            {
                "label": label(arm, source, depth, num_sources),
                "arm": arm, "source": source, "freeze_depth": depth, "train_size": size,
                "layers": layers,
                "cka": {
                    layer: stats.summarize([m[layer] for m in maps])
                    if all(m.get(layer) is not None for m in maps) else None
                    for layer in layers
                },
            }
        )
    return rows
