"""Results: the trial table and its summary, as plain data; JSON and CSV.

Everything a report shows is computed here, once, from the trial records; reports
only format it. Gains are paired by seed against `scratch` at the same train size
and signed by the metric's declared direction (positive = transfer helped).
"""

import csv
import dataclasses
import datetime
import io
import json
import os
import platform
import subprocess
import sys

from keras_tl.metrics import higher_is_better
from keras_tl.scores import stats
from keras_tl.store import TrialStore, write_atomic

SCHEMA_VERSION = 1
# Gains are not reported for arms with fewer finished seeds than this.
MIN_SEEDS_FOR_GAIN = 2


@dataclasses.dataclass
class Results:
    """The outcome of an evaluation: config, provenance, trials and summary.

    Args:
        config: dict. The resolved experiment.
        context: dict. Facts about the run found while planning: primary metric,
            transferred layers, task descriptions.
        provenance: dict. Versions, backend, seeds, git sha, timestamp, command.
        trials: list of dict. One record per trial.
        summary: dict. Per-condition statistics, gains, curves, data efficiency,
            source retention.

    Example:

    >>> results = keras_tl.Results.from_folder("runs/parity")
    >>> results.summary["best"]["verdict"]
    """

    config: dict
    context: dict
    provenance: dict
    trials: list
    summary: dict

    def to_dict(self):
        return {
            "schema_version": SCHEMA_VERSION,
            "config": self.config,
            "context": self.context,
            "provenance": self.provenance,
            "summary": self.summary,
            "trials": self.trials,
        }

    @classmethod
    def from_dict(cls, data):
        return cls(**{field.name: data[field.name] for field in dataclasses.fields(cls)})

    @classmethod
    def from_folder(cls, folder):
        with open(os.path.join(folder, "results.json")) as file:
            return cls.from_dict(json.load(file))

    def trials_csv(self):
        """The trial table as CSV text: one row per trial, metrics flattened."""
        rows = [_flatten_trial(trial) for trial in self.trials]
        columns = []
        for row in rows:
            columns += [column for column in row if column not in columns]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()

    def write(self, folder):
        """Writes `results.json` and `trials.csv` atomically into `folder`."""
        write_atomic(
            os.path.join(folder, "results.json"),
            json.dumps(self.to_dict(), indent=2, sort_keys=False, allow_nan=False),
        )
        write_atomic(os.path.join(folder, "trials.csv"), self.trials_csv())


def _flatten_trial(trial):
    row = {}
    for key, value in trial.items():
        if key in ("val", "test") and value:
            for metric, number in value.items():
                row[f"{key}_{metric}"] = number
        elif key == "source" and value:
            for moment in ("before", "after"):
                for metric, number in (value.get(moment) or {}).items():
                    row[f"source_{moment}_{metric}"] = number
        elif key in ("transfer", "validation_by_learning_rate"):
            row[key] = json.dumps(value) if value else ""
        else:
            row[key] = value
    return row


def _git_sha():
    folder = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(os.path.join(folder, ".git")):
        return None
    try:
        output = subprocess.run(
            ["git", "-C", folder, "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return output.stdout.strip() or None


def provenance(experiment, command=None):
    """Versions, backend, seeds, git sha, timestamp and command line of a run."""
    import keras
    import numpy

    from keras_tl import __version__
    from keras_tl.backend import installed_version

    backend = keras.config.backend()
    return {
        "keras_tl_version": __version__,
        "git_sha": _git_sha(),
        "keras_version": keras.__version__,
        "backend": backend,
        "backend_version": installed_version(backend),
        "numpy_version": numpy.__version__,
        "python_version": sys.version.split()[0],
        "platform": platform.platform(),
        "seeds": experiment.seeds,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
    }


def _condition_key(trial):
    return (trial["arm"], trial["freeze_depth"], trial["requested_train_size"])


def _label(arm, depth, num_transferable):
    if arm in ("scratch", "linear_probe") or num_transferable is None:
        return arm
    return f"{arm}@{depth}"


def build_results(experiment, context, records, provenance_record):
    """Summarises trial records into `Results` (pure: no training, no I/O).

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
    order = {arm: index for index, arm in enumerate(config["arms"])}
    records = sorted(
        records,
        key=lambda r: (
            config["target"]["train_sizes"].index(r["requested_train_size"]),
            order[r["arm"]], r["freeze_depth"], r["seed"],
        ),
    )
    groups = {}
    for record in records:
        groups.setdefault(_condition_key(record), []).append(record)

    conditions = []
    for (arm, depth, size), trials in groups.items():
        finished = [t for t in trials if t["status"] == "ok"]
        entry = {
            "label": _label(arm, depth, len(context["transferable"])),
            "arm": arm,
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
        }
        if finished:
            for split in ("test", "val"):
                for name in finished[0][split]:
                    values = [t[split][name] for t in finished]
                    if all(value is not None for value in values):
                        entry[split][name] = stats.summarize(values)
        conditions.append(entry)

    gains = _gains(conditions, groups, metric, higher)
    summary = {
        "primary_metric": metric,
        "higher_is_better": higher,
        "conditions": conditions,
        "gains": gains,
        "best": _best(conditions, gains, metric),
        "best_freeze_depth": _best_freeze_depths(conditions, metric, higher),
        "curves": _curves(conditions, metric),
        "data_efficiency": _data_efficiency(conditions, metric, higher),
        "retention": _retention(groups, context),
        "num_trials": len(records),
        "num_failed": sum(1 for r in records if r["status"] != "ok"),
    }
    return Results(
        config=config, context=context, provenance=provenance_record,
        trials=records, summary=summary,
    )


def _gains(conditions, groups, metric, higher):
    gains = []
    for entry in conditions:
        if entry["arm"] == "scratch":
            continue
        arm_values = {
            t["seed"]: t["test"][metric]
            for t in groups[(entry["arm"], entry["freeze_depth"], entry["train_size"])]
            if t["status"] == "ok"
        }
        scratch_values = {
            t["seed"]: t["test"][metric]
            for t in groups.get(("scratch", 0, entry["train_size"]), [])
            if t["status"] == "ok"
        }
        seeds = sorted(set(arm_values) & set(scratch_values))
        gain = {
            "label": entry["label"],
            "arm": entry["arm"],
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
    """The transfer condition with the best mean val metric, and its test gain."""
    candidates = [
        c for c in conditions if c["arm"] != "scratch" and metric in c["val"]
    ]
    if not candidates:
        return None
    higher = higher_is_better(metric)
    chosen = (max if higher else min)(candidates, key=lambda c: c["val"][metric]["mean"])
    for gain in gains:
        if (gain["arm"], gain["freeze_depth"], gain["train_size"]) == (
            chosen["arm"], chosen["freeze_depth"], chosen["train_size"],
        ):
            return {**gain, "selected_by": f"val_{metric}"}
    return None


def _best_freeze_depths(conditions, metric, higher):
    best = []
    by_arm = {}
    for c in conditions:
        if c["arm"] not in ("scratch", "linear_probe") and metric in c["val"]:
            by_arm.setdefault((c["arm"], c["train_size"]), []).append(c)
    for (arm, size), entries in by_arm.items():
        chosen = (max if higher else min)(entries, key=lambda c: c["val"][metric]["mean"])
        best.append(
            {"arm": arm, "train_size": size, "num_samples": chosen["num_samples"],
             "freeze_depth": chosen["freeze_depth"], "selected_by": f"val_{metric}"}
        )
    return best


def _point(entry, metric, x):
    summary = entry["test"].get(metric)
    if summary is None:
        return None
    return {x: entry["freeze_depth"] if x == "freeze_depth" else entry["num_samples"],
            **{k: summary[k] for k in ("mean", "ci_low", "ci_high", "n")}}


def _curves(conditions, metric):
    by_depth, by_size = {}, {}
    for entry in conditions:
        depth_point = _point(entry, metric, "freeze_depth")
        if depth_point and entry["arm"] not in ("scratch", "linear_probe"):
            by_depth.setdefault(entry["arm"], {}).setdefault(str(entry["train_size"]), []).append(depth_point)
        size_point = _point(entry, metric, "train_size")
        if size_point:
            by_size.setdefault(entry["label"], []).append(size_point)
    for curves in by_size.values():
        curves.sort(key=lambda p: p["train_size"])
    return {"metric": metric, "freeze_depth": by_depth, "train_size": by_size}


def _data_efficiency(conditions, metric, higher):
    scratch = sorted(
        (c["num_samples"], c["test"][metric]["mean"])
        for c in conditions
        if c["arm"] == "scratch" and metric in c["test"]
    )
    if len(scratch) < 2:
        return []
    sizes = [size for size, _ in scratch]
    means = [mean for _, mean in scratch]
    rows = []
    for c in conditions:
        if c["arm"] == "scratch" or metric not in c["test"]:
            continue
        match = stats.matching_size(sizes, means, c["test"][metric]["mean"], higher)
        rows.append(
            {
                "label": c["label"],
                "arm": c["arm"],
                "freeze_depth": c["freeze_depth"],
                "train_size": c["num_samples"],
                "scratch_size": match["size"],
                "bound": match["bound"],
                "data_ratio": match["size"] / c["num_samples"],
            }
        )
    return rows


def _retention(groups, context):
    rows = []
    for (arm, depth, size), trials in groups.items():
        pairs = [
            t["source"] for t in trials
            if t["status"] == "ok" and t.get("source") and t["source"]["after"]
        ]
        if not pairs:
            continue
        metric = context["source_metric"]
        higher = higher_is_better(metric)
        before = [p["before"][metric] for p in pairs]
        after = [p["after"][metric] for p in pairs]
        forgetting = [(b - a) if higher else (a - b) for b, a in zip(before, after)]
        rows.append(
            {
                "label": _label(arm, depth, len(context["transferable"])),
                "arm": arm,
                "freeze_depth": depth,
                "train_size": size,
                "metric": metric,
                "before": stats.summarize(before),
                "after": stats.summarize(after),
                "forgetting": stats.summarize(forgetting),
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
        config = store.get_meta("experiment")
        context = store.get_meta("context")
        provenance_record = store.get_meta("provenance") or {}
        records = store.records()
    finally:
        store.close()
    results = build_results(config, context, records, provenance_record)
    results.write(folder)
    return results
