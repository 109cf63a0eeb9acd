"""Trial records -> the summary: per-arm statistics, paired gains, verdicts, curves."""

from keras_tl.config.arms import BASELINE, rules_of
from keras_tl.results.streams import cka, fusion, label, retention, stream
from keras_tl.results.gains import CONTROL, best_condition, paired_gains, undecided
from keras_tl.results.results import Results
from keras_tl.scores import stats
from keras_tl.scores.task_metrics import bounds_of, higher_is_better
from keras_tl.store import TrialStore


def _condition_key(trial):
    return (trial["arm"], trial.get("source"), trial["freeze_depth"], trial["requested_train_size"])


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
            "label": label(arm, source, depth, num_sources),
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
                    bounds = bounds_of(name) if split != "scores" else None
                    entry[split][name] = stats.summarize(values, bounds=bounds)
        conditions.append(entry)

    seed_range = _seed_range(config)
    all_gains = paired_gains(conditions, groups, metric, seed_range)
    gains = [gain for gain in all_gains if gain["comparator"] == BASELINE]
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
        "gains_vs_control": [g for g in all_gains if g["comparator"] == CONTROL],
        "best": best_condition(conditions, all_gains, metric),
        "best_freeze_depth": _best_freeze_depths(conditions, metric, higher) if swept else [],
        "curves": curves,
        "data_efficiency": _data_efficiency(conditions, metric, higher),
        "retention": retention(groups, context, num_sources),
        "rank_agreement": _rank_agreement(conditions, metric, higher, context.get("scores") or []),
        "fusion": fusion(groups, context, config.get("metrics")),
        "stream": stream(groups, context, num_sources),
        "cka": cka(groups, num_sources),
        "search": _search(groups, config, num_sources),
        "num_trials": len(records),
        "num_failed": sum(1 for r in records if r["status"] != "ok"),
    }
    if seed_range:
        summary["seeds"] = {
            "min": seed_range[0], "max": seed_range[1],
            "run": len({r["seed"] for r in records}),
            "undecided": undecided(all_gains),
        }
    return Results(
        config=config, context=context, provenance=provenance_record,
        trials=records, summary=summary,
    )


def _trial_settings(trial, config):
    """`[(learning_rate, batch_size, val metric or None), ...]` a trial compared on
    val: its `validation_by_setting` (`search:`), else its
    `validation_by_learning_rate` (`learning_rates:`, at the target batch size);
    empty when it trained one setting."""
    if trial.get("validation_by_setting"):
        return [(row["learning_rate"], row["batch_size"], row["val"])
                for row in trial["validation_by_setting"]]
    by_rate = trial.get("validation_by_learning_rate") or {}
    batch_size = (config.get("target") or {}).get("batch_size")
    return [(float(rate), batch_size, value) for rate, value in by_rate.items()]


def _search(groups, config, num_sources):
    """How sensitive each condition was to its target settings: per condition and
    setting of the grid (`search:` or `learning_rates:`), the mean val metric over
    the seeds where that setting trained, and how many seeds kept it."""
    rows = []
    for (arm, source, depth, size), trials in groups.items():
        finished = [t for t in trials if t["status"] == "ok"]
        by_setting = {}
        for trial in finished:
            settings = _trial_settings(trial, config)
            if not settings:  # One setting trained: nothing to compare.
                continue
            chosen = (trial.get("learning_rate"),
                      trial.get("batch_size", (config.get("target") or {}).get("batch_size")))
            for rate, batch_size, value in settings:
                entry = by_setting.setdefault((rate, batch_size), {"values": [], "chosen": 0})
                if value is not None:
                    entry["values"].append(value)
                entry["chosen"] += (rate, batch_size) == chosen
        for (rate, batch_size), entry in by_setting.items():
            values = entry["values"]
            rows.append({
                "label": label(arm, source, depth, num_sources),
                "arm": arm,
                "source": source,
                "freeze_depth": depth,
                "train_size": size,
                "num_samples": finished[0]["train_size"],
                "learning_rate": rate,
                "batch_size": batch_size,
                "n": len(values),
                "mean": sum(values) / len(values) if values else None,
                "chosen": entry["chosen"],
            })
    return rows


def _seed_range(config):
    seeds = config["seeds"]
    return (seeds["min"], seeds["max"]) if isinstance(seeds, dict) else None


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
