"""The report's closing sections: other summary keys, notes, failures, trials, provenance.

Summary sections the report has no dedicated renderer for (added by later
versions of `results.py`) are still shown, as generic tables, so no result goes
unreported. Formatting only: every number comes from `Results`.
"""

import json

from keras_tl.report.blocks import (
    Section,
    Table,
    format_interval,
    format_number,
    has_several,
    samples_text,
    source_names,
)

# Summary keys with a dedicated section (`keras_tl.report.tables`, the verdict, or
# the counts in the subtitle); any other key gets a generic table.
_KNOWN_SUMMARY_KEYS = (
    "primary_metric", "higher_is_better", "conditions", "gains", "best",
    "best_freeze_depth", "curves", "data_efficiency", "retention", "rank_agreement",
    "fusion", "stream", "cka", "num_trials", "num_failed", "gains_vs_control", "seeds",
    "search",
)



def _cell(value):
    """A generic cell: a stored summary as `mean [low, high]`, numbers rounded."""
    if isinstance(value, dict) and "mean" in value:
        return format_interval(value)
    if isinstance(value, float):
        return format_number(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return format_number(value) if value is not None else "-"


def _generic_tables(name, value):
    """Tables for a summary section without a dedicated renderer."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        header = list(dict.fromkeys(k for v in value for k in v))
        return [Table(name, header, [[_cell(v.get(k)) for k in header] for v in value])]
    if isinstance(value, dict):
        if value and all(isinstance(v, list) for v in value.values()):
            tables = []
            for key, items in value.items():
                tables += _generic_tables(f"{name}.{key}", items)
            return tables
        return [Table(name, ["key", "value"], [[k, _cell(v)] for k, v in value.items()])]
    return [Table(name, ["value"], [[_cell(value)]])]


def extra_sections(summary):
    """A generic section per summary key without a dedicated one."""
    sections = []
    for key, value in summary.items():
        if key in _KNOWN_SUMMARY_KEYS or value in (None, [], {}):
            continue
        blocks = [f"The `{key}` section of `results.json`."]
        for table in _generic_tables(key, value):
            if table.name != key:
                blocks.append(f"`{table.name}`:")
            blocks.append(table)
        sections.append(Section(key.replace("_", " ").capitalize(), key, blocks))
    return sections


def notes_section(context):
    """What the run could not measure or speed up, and why (from the plan)."""
    notes = context.get("notes") or []
    if not notes:
        return None
    return Section("Notes", "notes", list(notes))


def failures_section(summary):
    """The failed trials and why, or that none failed."""
    rows = [
        [c["label"], samples_text(c), format_number(failure.get("seed")),
         failure.get("error") or "-"]
        for c in summary.get("conditions") or []
        for failure in c.get("failures") or []
    ]
    total, failed = summary.get("num_trials"), summary.get("num_failed") or 0
    if not rows:
        return Section("Failures", "failures", [
            f"No trial failed ({format_number(total)} of {format_number(total)} finished)."])
    return Section("Failures", "failures", [
        f"{format_number(failed)} of {format_number(total)} trials failed; gains are only "
        "reported for conditions with at least two seeds finished for both the "
        "condition and scratch.",
        Table("failures", ["condition", "train samples", "seed", "reason"], rows),
    ])


def trials_section(summary, trials):
    """Every trial, one row each (the HTML report shows it)."""
    metric = summary.get("primary_metric", "metric")
    test_metrics = list(dict.fromkeys(m for t in trials for m in t.get("test") or {}))
    test_metrics.sort(key=lambda m: m != metric)
    source_metric = next(
        (row.get("metric") for row in summary.get("retention") or []), None)
    header = ["arm", "source", "frozen layers", "train samples", "seed", "status", "epochs",
              "learning rate"] + [f"test {m}" for m in test_metrics] + [f"val {metric}"]
    if source_metric:
        header.append(f"source {source_metric} after")
    header += ["fit time (s)", "error"]
    rows = []
    for t in trials:
        source_metrics = t.get("source_metrics")
        if source_metrics is None and isinstance(t.get("source"), dict):
            source_metrics = t["source"]
        source_name = t.get("source") if isinstance(t.get("source"), str) else None
        row = [t.get("arm", "-"), source_name or "-", format_number(t.get("freeze_depth")),
               format_number(t.get("train_size", t.get("requested_train_size"))),
               format_number(t.get("seed")), t.get("status", "-"), format_number(t.get("epochs")),
               "-" if t.get("learning_rate") is None else f"{t['learning_rate']:g}"]
        row += [format_number((t.get("test") or {}).get(m)) for m in test_metrics]
        row.append(format_number((t.get("val") or {}).get(metric)))
        if source_metric:
            after = (source_metrics or {}).get("after") or {}
            row.append(format_number(after.get(source_metric)))
        row += [format_number(t.get("fit_time"), digits=1), t.get("error") or ""]
        rows.append(row)
    keep = [
        index for index, column in enumerate(header)
        if not (column == "source"
                and not has_several(row[index] for row in rows if row[index] != "-"))
        and not (column == "error" and not any(row[index] for row in rows))
    ]
    return Section("Trials", "trials", [
        f"Every trial of the run ({len(trials)}), one row per arm, freeze depth, train "
        "size and seed.",
        Table("trials", [header[i] for i in keep], [[row[i] for i in keep] for row in rows]),
    ])


def provenance_section(config, context, provenance, summary, schema_version):
    """What ran, where and with what: versions, seeds, git sha, the resolved config."""
    metric = summary.get("primary_metric", "metric")
    direction = "higher" if summary.get("higher_is_better", True) else "lower"
    target = config.get("target") or {}
    items = [
        ("experiment", config.get("name")),
        ("sources", ", ".join(str(n) for n in source_names(config))),
        ("target task", target.get("task")),
        ("primary metric", f"{metric} ({direction} is better)"),
        ("transferred layers", ", ".join(context.get("transferable") or []) or "-"),
        ("seeds", ", ".join(str(s) for s in provenance.get("seeds") or config.get("seeds") or [])),
        ("trials", f"{format_number(summary.get('num_trials'))} "
                   f"({format_number(summary.get('num_failed'))} failed)"),
        ("backend",
         f"{provenance.get('backend')} {provenance.get('backend_version') or ''}".strip()),
        ("keras", provenance.get("keras_version")),
        ("keras-tl", provenance.get("keras_tl_version")),
        ("numpy", provenance.get("numpy_version")),
        ("python", provenance.get("python_version")),
        ("platform", provenance.get("platform")),
        ("git sha", provenance.get("git_sha") or "- (not run from a git checkout)"),
        ("timestamp", provenance.get("timestamp")),
        ("command", provenance.get("command") or "- (called from Python)"),
        ("results schema version", format_number(schema_version)),
    ]
    return Section("Provenance", "provenance", [
        Table("provenance", ["item", "value"],
              [[k, "-" if v is None else str(v)] for k, v in items]),
        ("details", "Resolved experiment config (re-creates the run)",
         json.dumps(config, indent=2, sort_keys=False)),
    ])

