"""Trial records -> the summary: per-arm statistics, paired gains, verdicts, curves."""

import numpy as np

from keras_tl.config.arms import BASELINE, rules_of
from keras_tl.results.results import Results
from keras_tl.scores import continual, multitask, stats
from keras_tl.scores.task_metrics import higher_is_better
from keras_tl.store import TrialStore

# Gains are not reported for arms with fewer finished seeds than this.
MIN_SEEDS_FOR_GAIN = 2


def _condition_key(trial):
    return (trial["arm"], trial.get("source"), trial["freeze_depth"], trial["requested_train_size"])


def _label(arm, source, depth, num_sources):
    label = f"{arm}@{depth}" if rules_of(arm).sweeps_depth else arm
    if source is not None and num_sources > 1:
        label += f" from {source}"
    return label


def _same_condition(entry, other):
    return all(entry[k] == other[k] for k in ("arm", "source", "freeze_depth", "train_size"))


def build_results(experiment, context, records, provenance_record):
    """Summarises trial records into `Results` (pure: no training, no I/O).

    A condition is one arm from one source at one freeze depth and train size;
    its trials are its seeds.

    Args:
        experiment: an `Experiment` (or its resolved config dict).
        context: dict. From `keras_tl.evaluator.plan_context`.
        records: list of trial records.
        provenance_record: dict.

    Returns:
        `Results`.
    """
    config = experiment if isinstance(experiment, dict) else experiment.to_dict()
    metric = context["primary_metric"]
    higher = higher_is_better(metric)
    arm_order = {arm: index for index, arm in enumerate(config["arms"])}
    source_order = {s["name"]: index for index, s in enumerate(config["sources"])}
    num_sources = len(config["sources"])
    records = sorted(
        records,
        key=lambda r: (
            config["target"]["train_sizes"].index(r["requested_train_size"]),
            arm_order[r["arm"]], source_order.get(r.get("source"), -1),
            r["freeze_depth"], r["seed"],
        ),
    )
    groups = {}
    for record in records:
        groups.setdefault(_condition_key(record), []).append(record)

    conditions = []
    for (arm, source, depth, size), trials in groups.items():
        finished = [t for t in trials if t["status"] == "ok"]
        entry = {
            "label": _label(arm, source, depth, num_sources),
            "arm": arm,
            "source": source,
            "recipe": trials[0]["recipe"],
            "freeze_depth": depth,
            "train_size": size,
            "num_samples": finished[0]["train_size"] if finished else None,
            "n": len(finished),
            "num_failed": len(trials) - len(finished),
            "failures": [
                {"seed": t["seed"], "error": t["error"]} for t in trials if t["status"] != "ok"
            ],
            "test": {},
            "val": {},
            "scores": {},
        }
        for split in ("test", "val", "scores"):
            names = [name for t in finished for name in (t.get(split) or {})]
            for name in dict.fromkeys(names):
                values = [(t.get(split) or {}).get(name) for t in finished]
                if values and all(value is not None for value in values):
                    entry[split][name] = stats.summarize(values)
        conditions.append(entry)

    gains = _gains(conditions, groups, metric, higher)
    curves = _curves(conditions, metric)
    # With `freeze: {layers: REGEX}` no depth was swept: no best depth, no curve.
    swept = not config.get("freeze")
    if not swept:
        curves["freeze_depth"] = []
    summary = {
        "primary_metric": metric,
        "higher_is_better": higher,
        "conditions": conditions,
        "gains": gains,
        "best": _best(conditions, gains, metric),
        "best_freeze_depth": _best_freeze_depths(conditions, metric, higher) if swept else [],
        "curves": curves,
        "data_efficiency": _data_efficiency(conditions, metric, higher),
        "retention": _retention(groups, context, num_sources),
        "rank_agreement": _rank_agreement(conditions, metric, higher, context.get("scores") or []),
        "fusion": _fusion(groups, context),
        "stream": _stream(groups, context, num_sources),
        "cka": _cka(groups, num_sources),
        "num_trials": len(records),
        "num_failed": sum(1 for r in records if r["status"] != "ok"),
    }
    return Results(
        config=config, context=context, provenance=provenance_record,
        trials=records, summary=summary,
    )


def _seed_values(trials, metric):
    return {t["seed"]: t["test"][metric] for t in trials if t["status"] == "ok"}


def _gains(conditions, groups, metric, higher):
    gains = []
    for entry in conditions:
        if entry["arm"] == BASELINE:
            continue
        key = (entry["arm"], entry["source"], entry["freeze_depth"], entry["train_size"])
        arm_values = _seed_values(groups[key], metric)
        scratch_values = _seed_values(groups.get((BASELINE, None, 0, entry["train_size"]), []), metric)
        seeds = sorted(set(arm_values) & set(scratch_values))
        gain = {
            "label": entry["label"],
            "arm": entry["arm"],
            "source": entry["source"],
            "freeze_depth": entry["freeze_depth"],
            "train_size": entry["train_size"],
            "num_samples": entry["num_samples"],
            "metric": metric,
            "seeds": seeds,
        }
        if len(seeds) < MIN_SEEDS_FOR_GAIN:
            gain.update(
                n=len(seeds), mean=None, p_value=None, verdict="insufficient",
                note=f"fewer than {MIN_SEEDS_FOR_GAIN} seeds finished for both this arm and scratch",
            )
        else:
            gain.update(
                stats.paired_difference(
                    [arm_values[s] for s in seeds],
                    [scratch_values[s] for s in seeds],
                    higher_is_better=higher,
                )
            )
        gains.append(gain)
    adjusted = stats.holm([gain["p_value"] for gain in gains])
    for gain, p_adjusted in zip(gains, adjusted):
        gain["p_value_adjusted"] = p_adjusted
        if gain.get("verdict") != "insufficient":
            gain["verdict"] = stats.verdict(gain["mean"], p_adjusted)
    return gains


def _best(conditions, gains, metric):
    """The transfer condition with the best mean val metric, and its test gain.

    Controls (`random_transfer`) are never the best arm: they exist to be beaten.
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
    for gain in gains:
        if _same_condition(gain, chosen):
            return {**gain, "selected_by": f"val_{metric}"}
    return None


def _best_freeze_depths(conditions, metric, higher):
    best = []
    by_arm = {}
    for c in conditions:
        if rules_of(c["arm"]).sweeps_depth and metric in c["val"]:
            by_arm.setdefault((c["arm"], c["source"], c["train_size"]), []).append(c)
    for (arm, source, size), entries in by_arm.items():
        chosen = (max if higher else min)(entries, key=lambda c: c["val"][metric]["mean"])
        best.append(
            {"arm": arm, "source": source, "train_size": size,
             "num_samples": chosen["num_samples"], "freeze_depth": chosen["freeze_depth"],
             "selected_by": f"val_{metric}"}
        )
    return best


def _point(entry, metric, x):
    summary = entry["test"].get(metric)
    if summary is None:
        return None
    return {x: entry["freeze_depth"] if x == "freeze_depth" else entry["num_samples"],
            **{k: summary[k] for k in ("mean", "ci_low", "ci_high", "n")}}


def _curves(conditions, metric):
    """Metric vs freeze depth (per arm and source, per train size) and vs train size."""
    by_depth, by_size = [], {}
    depth_curves = {}
    for entry in conditions:
        depth_point = _point(entry, metric, "freeze_depth")
        if depth_point and rules_of(entry["arm"]).sweeps_depth:
            key = (entry["arm"], entry["source"], entry["train_size"])
            depth_curves.setdefault(key, []).append(depth_point)
        size_point = _point(entry, metric, "train_size")
        if size_point:
            by_size.setdefault(entry["label"], []).append(size_point)
    for (arm, source, size), points in depth_curves.items():
        by_depth.append({"arm": arm, "source": source, "train_size": size, "points": points})
    for points in by_size.values():
        points.sort(key=lambda p: p["train_size"])
    return {"metric": metric, "freeze_depth": by_depth, "train_size": by_size}


def _data_efficiency(conditions, metric, higher):
    scratch = sorted(
        (c["num_samples"], c["test"][metric]["mean"])
        for c in conditions
        if c["arm"] == BASELINE and metric in c["test"]
    )
    if len(scratch) < 2:
        return []
    sizes = [size for size, _ in scratch]
    means = [mean for _, mean in scratch]
    rows = []
    for c in conditions:
        if c["arm"] == BASELINE or metric not in c["test"]:
            continue
        match = stats.matching_size(sizes, means, c["test"][metric]["mean"], higher)
        rows.append(
            {
                "label": c["label"],
                "arm": c["arm"],
                "source": c["source"],
                "freeze_depth": c["freeze_depth"],
                "train_size": c["num_samples"],
                "scratch_size": match["size"],
                "bound": match["bound"],
                "data_ratio": None if match["size"] is None else match["size"] / c["num_samples"],
            }
        )
    return rows


def _retention(groups, context, num_sources):
    rows = []
    metric = context["source_metric"]
    if metric is None:  # No source has a task: retention does not apply.
        return rows
    higher = higher_is_better(metric)
    for (arm, source, depth, size), trials in groups.items():
        pairs = [
            t["source_metrics"] for t in trials
            if t["status"] == "ok" and t.get("source_metrics") and t["source_metrics"]["after"]
        ]
        if not pairs:
            continue
        before = [p["before"][metric] for p in pairs]
        after = [p["after"][metric] for p in pairs]
        forgetting = [(b - a) if higher else (a - b) for b, a in zip(before, after)]
        rows.append(
            {
                "label": _label(arm, source, depth, num_sources),
                "arm": arm,
                "source": source,
                "freeze_depth": depth,
                "train_size": size,
                "metric": metric,
                "before": stats.summarize(before),
                "after": stats.summarize(after),
                "forgetting": stats.summarize(forgetting),
            }
        )
    return rows


def _fusion(groups, context):
    """Per fused condition: each task's metrics and delta_m (both forms) vs the
    single-task baselines of the same seed (scratch for the target, the trained
    source model for a source task), with CIs over seeds."""
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
        per_task, forms = {}, {form: [] for form in multitask.FORMS}
        for trial in finished:
            results = trial["fused"]["test"]
            baselines = {**trial["fused"]["source_baselines"], target: scratch[trial["seed"]]}
            metrics = {
                task: {m: v for m, v in results[task].items() if v is not None}
                for task in tasks
            }
            base = {task: {m: baselines[task][m] for m in metrics[task]} for task in tasks}
            directions = {
                m: "higher" if higher_is_better(m) else "lower"
                for task in tasks for m in metrics[task]
            }
            for form in multitask.FORMS:
                forms[form].append(multitask.delta_m(metrics, base, directions, form=form))
        for task in tasks:
            per_task[task] = {
                metric: stats.summarize([t["fused"]["test"][task][metric] for t in finished])
                for metric in finished[0]["fused"]["test"][task]
                if all(t["fused"]["test"][task][metric] is not None for t in finished)
            }
        # Per task, the stream view of joint training: random init -> fused, and the
        # fused model's shortfall against its single-task baseline (positive = the
        # fused model is worse on that task, like forgetting).
        per_task_stream = {}
        for task in tasks:
            metric = context["primary_metric"] if task == target else context["source_metric"]
            higher = higher_is_better(metric)
            baselines = [
                scratch[t["seed"]][metric] if task == target
                else t["fused"]["source_baselines"][task][metric]
                for t in finished
            ]
            fused_values = [t["fused"]["test"][task][metric] for t in finished]
            per_task_stream[task] = {
                "metric": metric,
                "random_init": stats.summarize(
                    [t["fused"]["random_init"][task][metric] for t in finished]),
                "single_task": stats.summarize(baselines),
                "fused": stats.summarize(fused_values),
                "shortfall": stats.summarize(
                    [continual.forgetting(b, f, higher) for b, f in zip(baselines, fused_values)]),
            }
        rows.append(
            {
                "label": "fused",
                "train_size": size,
                "tasks": tasks,
                "test": per_task,
                "delta_m": {form: stats.summarize(values) for form, values in forms.items()},
                "per_task": per_task_stream,
                "baselines": {"target": "scratch (same seed and train size)",
                              "sources": "the trained source model (same seed)"},
            }
        )
    return rows


def _stream(groups, context, num_sources):
    """Sequential transfer as a two-task stream (Lopez-Paz & Ranzato 2017).

    R[i][j] is the metric on task j (0: source, 1: target) after training on task
    i; the random-init row gives FWT's baseline. Per condition: ACC, BWT, FWT and
    forgetting of the source task, each with a CI over seeds.
    """
    rows = []
    if context["source_metric"] is None:  # No source has a task.
        return rows
    higher = higher_is_better(context["source_metric"])
    target_metric = context["primary_metric"]
    for (arm, source, depth, size), trials in groups.items():
        matrices, random_rows = [], []
        for t in trials:
            stream, retained = t.get("stream"), t.get("source_metrics")
            if t["status"] != "ok" or not stream or not retained or not retained["after"]:
                continue
            source_metric = context["source_metric"]
            matrices.append([
                [retained["before"][source_metric],
                 stream["before_target_training"][target_metric]],
                [retained["after"][source_metric], t["test"][target_metric]],
            ])
            random_rows.append([stream["random_init"][0][source_metric],
                                stream["random_init"][1][target_metric]])
        if not matrices:
            continue
        rows.append(
            {
                "label": _label(arm, source, depth, num_sources),
                "arm": arm, "source": source, "freeze_depth": depth, "train_size": size,
                "metrics": [context["source_metric"], target_metric],
                "accuracy_matrix": np.mean(matrices, axis=0).tolist(),
                "random_init": np.mean(random_rows, axis=0).tolist(),
                "acc": stats.summarize([continual.average_accuracy(R) for R in matrices]),
                "bwt": stats.summarize(
                    [continual.backward_transfer(R, higher) for R in matrices]),
                "fwt": stats.summarize(
                    [continual.forward_transfer(R, b, higher)
                     for R, b in zip(matrices, random_rows)]),
                "forgetting": stats.summarize(
                    [continual.forgetting(R[0][0], R[1][0], higher) for R in matrices]),
            }
        )
    return rows


def _cka(groups, num_sources):
    """Mean linear CKA (source vs trained target) per transferred unit and condition."""
    rows = []
    for (arm, source, depth, size), trials in groups.items():
        maps = [t["cka"] for t in trials if t["status"] == "ok" and t.get("cka")]
        if not maps:
            continue
        layers = list(maps[0])
        rows.append(
            {
                "label": _label(arm, source, depth, num_sources),
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


def _rank_agreement(conditions, metric, higher, score_names):
    """How well each score's ranking of the transfer conditions matched reality.

    For every score: Kendall tau, weighted tau and Pearson between the mean score of
    each transfer condition and its realised mean test metric (sign-flipped for a
    lower-is-better metric), over all transfer conditions of a train size, and over
    the sources of each (arm, freeze depth) when there are several sources.
    """
    rows = []
    transfer = [c for c in conditions if c["scores"] and metric in c["test"]]
    groups = {}
    for c in transfer:
        groups.setdefault(("all conditions", c["train_size"]), []).append(c)
        groups.setdefault((f"sources of {c['arm']}@{c['freeze_depth']}", c["train_size"]), []).append(c)
    for (scope, size), members in groups.items():
        if scope != "all conditions" and len({c["source"] for c in members}) < 2:
            continue
        for name in score_names:
            pairs = [
                (c["scores"][name]["mean"], c["test"][metric]["mean"] * (1 if higher else -1))
                for c in members if name in c["scores"]
            ]
            if len(pairs) < 3:  # A ranking of fewer than 3 conditions says nothing.
                continue
            agreement = stats.rank_agreement([p[0] for p in pairs], [p[1] for p in pairs])
            rows.append(
                {
                    "score": name,
                    "scope": scope,
                    "train_size": size,
                    "labels": [c["label"] for c in members if name in c["scores"]],
                    **agreement,
                }
            )
    return rows


def rebuild(folder):
    """Rebuilds `results.json` and `trials.csv` of a run folder from its store alone.

    Args:
        folder: str. A run folder written by `keras_tl.evaluate(..., out=folder)`.

    Returns:
        `Results`.
    """
    store = TrialStore.open_existing(folder)
    try:
        results = results_from_store(store)
    finally:
        store.close()
    results.write(folder)
    return results


def results_from_store(store, keys=None):
    """`Results` from what a run's store holds: the experiment, data context and
    provenance it recorded, and its trial records (those in `keys`, if given)."""
    config, context, provenance_record = (
        store.get_meta(name) for name in ("experiment", "context", "provenance")
    )
    records = store.records()
    if keys is not None:
        records = [record for record in records if record["key"] in keys]
    return build_results(config, context, records, provenance_record or {})
