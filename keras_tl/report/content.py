"""The report's content, and its GitHub-flavoured Markdown rendering.

`report_sections` turns `Results` into a list of sections (headings, sentences,
tables and plot references); `render_markdown` writes them as Markdown and
`keras_tl.report.html` as HTML, so both show the same numbers. Formatting only:
every number comes from `Results.summary` (or the trial records), rounded for
display, and nothing is computed here.

Summary sections this module does not know (added by later versions of
`results.py`) are still shown, as generic tables, so no result goes unreported.
"""

import dataclasses
import json

from keras_tl.report import plots

__all__ = ["report_sections", "Report", "Section", "Table"]


# Summary keys with a dedicated section below; any other key gets a generic table.
_KNOWN_SUMMARY_KEYS = (
    "primary_metric", "higher_is_better", "conditions", "gains", "best",
    "best_freeze_depth", "curves", "data_efficiency", "retention", "rank_agreement",
    "fusion", "stream", "cka", "num_trials", "num_failed",
)


_BOUNDS = {"=": "", "<=": "≤ ", ">": "> ", None: ""}


DIGITS = 3


@dataclasses.dataclass
class Table:
    """A table of formatted cells; `name` is its stable id (`<table id>` in HTML)."""

    name: str
    header: list
    rows: list


@dataclasses.dataclass
class Section:
    """A titled part of the report: an ordered list of blocks.

    A block is a `Table`, a str (a paragraph with `**bold**` and `` `code` ``
    markup), `("image", plot_name, alt_text)` or `("details", summary, code_text)`.
    """

    title: str
    name: str
    blocks: list


@dataclasses.dataclass
class Report:
    """The whole report: title, subtitle, verdict lines (headline first) and sections."""

    title: str
    subtitle: str
    verdict: list
    verdict_kind: str
    sections: list


def format_number(value, digits=DIGITS, signed=False):
    """Formats a number for the report: `-` for missing, fixed decimals otherwise."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) and not signed:
        return str(value)
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _interval_text(gain):
    """`[95% CI low, high]`, or why a gain has no interval (one seed, or no spread)."""
    if gain.get("ci_low") is None:
        if (gain.get("n") or 0) < 2:
            return "[no 95% CI: one paired seed]"
        return "[no 95% CI: every paired seed gave the same gain]"
    return (f"[95% CI {format_number(gain['ci_low'], signed=True)}, "
            f"{format_number(gain['ci_high'], signed=True)}]")


def format_p(value):
    """Formats a p-value: three decimals, `< 0.001` below that."""
    if value is None:
        return "-"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def format_interval(summary, signed=False):
    """`mean [ci_low, ci_high]` of a stored summary (just the mean when n = 1)."""
    if not summary or summary.get("mean") is None:
        return "-"
    mean = format_number(summary["mean"], signed=signed)
    if summary.get("ci_low") is None or summary.get("ci_high") is None:
        return mean
    low = format_number(summary["ci_low"], signed=signed)
    high = format_number(summary["ci_high"], signed=signed)
    return f"{mean} [{low}, {high}]"


def _size(entry):
    """The number of target samples of a condition (the requested size if unknown)."""
    samples = entry.get("num_samples")
    return str(samples if samples is not None else entry["train_size"])


def _ratio(row):
    if row.get("data_ratio") is None:
        return "-"
    return f"{_BOUNDS.get(row.get('bound'), '')}{row['data_ratio']:.2f}x"


def _scratch_size(row):
    if row.get("scratch_size") is None:
        return "-"
    return f"{_BOUNDS.get(row.get('bound'), '')}{row['scratch_size']:.1f}"


def _parts(results):
    if isinstance(results, dict):
        return (results.get("config") or {}, results.get("context") or {},
                results.get("provenance") or {}, results["summary"],
                results.get("trials") or [], results.get("schema_version"))
    from keras_tl.results.results import SCHEMA_VERSION

    return (results.config, results.context, results.provenance, results.summary,
            results.trials, SCHEMA_VERSION)


def _source_names(config):
    sources = config.get("sources")
    if sources:
        return [s.get("name") or s.get("task") for s in sources]
    source = config.get("source") or {}
    return [source.get("task", "?")]


def _several(values):
    return len(set(values)) > 1


def _verdict(summary):
    metric = summary.get("primary_metric", "metric")
    best = summary.get("best")
    if not best:
        return (["No transfer condition finished with a validation score: no verdict. "
                 "See the failures below."], "none")
    if best.get("mean") is None:
        return ([f"Best transfer condition (on val {metric}): `{best['label']}` at "
                 f"{_size(best)} target samples, but too few seeds finished for both it "
                 f"and scratch to estimate a gain: "
                 f"**{best.get('verdict', 'insufficient')}**."], "none")
    headline = (
        f"**Verdict: {best['verdict']}.** Best transfer condition (chosen on val "
        f"{metric}): **`{best['label']}`** at {_size(best)} target samples, gain in test "
        f"{metric} vs scratch **{format_number(best['mean'], signed=True)}** "
        f"{_interval_text(best)}, p (Holm) = "
        f"{format_p(best.get('p_value_adjusted'))} (raw {format_p(best.get('p_value'))}, "
        f"n = {best.get('n')} paired seeds)."
    )
    parts = []
    depth = [
        row for row in summary.get("best_freeze_depth") or []
        if row["arm"] == best["arm"] and row.get("source") == best.get("source")
        and row["train_size"] == best["train_size"]
    ]
    if depth:
        parts.append(f"Best freeze depth for {best['arm']} (on val): "
                     f"{depth[0]['freeze_depth']}.")
    efficiency = [
        row for row in summary.get("data_efficiency") or []
        if row["label"] == best["label"] and str(row["train_size"]) == _size(best)
    ]
    if efficiency:
        row = efficiency[0]
        parts.append(
            f"Data efficiency: scratch needs {_scratch_size(row)} samples to match it "
            f"({_ratio(row)} the data)."
        )
    elif not summary.get("data_efficiency"):
        parts.append("Data efficiency: not measured (needs two or more target train sizes).")
    lines = [headline, " ".join(parts)]
    if best["arm"] == "random_transfer":
        lines.append(
            "Note: the best condition is the `random_transfer` control (an untrained "
            "source): any gain comes from the architecture or freezing, not from "
            "transferred knowledge."
        )
    return [line for line in lines if line], best["verdict"]


def _conditions_section(summary):
    metric = summary.get("primary_metric", "metric")
    conditions = summary.get("conditions") or []
    test_metrics = list(dict.fromkeys(m for c in conditions for m in c.get("test", {})))
    test_metrics.sort(key=lambda m: m != metric)
    header = ["condition", "recipe", "frozen layers", "train samples", "seeds ok",
              "failed"]
    header += [f"test {m} [95% CI]" for m in test_metrics] + [f"val {metric} [95% CI]"]
    rows = [
        [c["label"], c.get("recipe", "-"), format_number(c.get("freeze_depth")), _size(c),
         format_number(c.get("n")), format_number(c.get("num_failed"))]
        + [format_interval(c.get("test", {}).get(m)) for m in test_metrics]
        + [format_interval(c.get("val", {}).get(metric))]
        for c in conditions
    ]
    return Section("Per-condition metrics", "conditions", [
        "Mean over seeds with the 95% Student t interval. A condition is one arm "
        "(from one source) at one freeze depth and target train size.",
        Table("conditions", header, rows),
    ])


def _gains_section(summary, images):
    gains = summary.get("gains") or []
    if not gains:
        return None
    metric = summary.get("primary_metric", "metric")
    wilcoxon = any(g.get("wilcoxon_p_value") is not None for g in gains)
    header = ["condition", "train samples", "paired seeds", f"gain in test {metric} [95% CI]",
              "effect size", "p", "p (Holm)"] + (["Wilcoxon p"] if wilcoxon else []) + ["verdict"]
    rows = []
    for g in gains:
        row = [g["label"], _size(g), format_number(g.get("n")),
               format_interval(g, signed=True), format_number(g.get("effect_size"), signed=True),
               format_p(g.get("p_value")), format_p(g.get("p_value_adjusted"))]
        if wilcoxon:
            row.append(format_p(g.get("wilcoxon_p_value")))
        rows.append(row + [g.get("verdict", "-")])
    blocks = [
        "Gain = condition - scratch, paired by seed, signed so that > 0 means "
        f"transfer helped ({'higher' if summary.get('higher_is_better', True) else 'lower'} "
        f"{metric} is better). Verdicts use the Holm-adjusted p-values (alpha 0.05); "
        "effect size = mean gain / std of the paired differences.",
        Table("gains", header, rows),
    ]
    notes = [g for g in gains if g.get("note")]
    for g in notes:
        blocks.append(f"`{g['label']}` at {_size(g)} samples: {g['note']}.")
    if "gains" in images:
        blocks.append(("image", "gains", "Forest plot of the gains vs scratch with 95% CIs"))
    return Section("Transfer gain vs scratch", "gains", blocks)


def _freeze_section(summary, context, images):
    rows_in = summary.get("best_freeze_depth") or []
    if not rows_in and "freeze_depth" not in images:
        return None
    metric = summary.get("primary_metric", "metric")
    depths_swept = {}
    for curve in plots.depth_curves(summary):
        key = (curve["arm"], curve.get("source"), str(curve["train_size"]))
        depths_swept[key] = [p["freeze_depth"] for p in curve["points"]]
    by_condition = {
        (c["arm"], c.get("source"), c["freeze_depth"], c["train_size"]): c
        for c in summary.get("conditions") or []
    }
    several_sources = _several(row.get("source") for row in rows_in)
    header = ["arm"] + (["source"] if several_sources else []) + [
        "train samples", "depths swept", "best freeze depth (val)", f"its test {metric} [95% CI]"]
    rows = []
    for row in rows_in:
        swept = depths_swept.get((row["arm"], row.get("source"), str(row["train_size"])), [])
        chosen = by_condition.get(
            (row["arm"], row.get("source"), row["freeze_depth"], row["train_size"]), {})
        rows.append(
            [row["arm"]] + ([row.get("source") or "-"] if several_sources else [])
            + [_size(row), ", ".join(str(d) for d in swept) or "-",
               format_number(row["freeze_depth"]),
               format_interval(chosen.get("test", {}).get(metric))]
        )
    layers = context.get("transferable") or []
    blocks = []
    if layers:
        blocks.append(
            "Freeze depth k = the first k transferred layers are frozen (0 = all "
            f"trainable). Transferred layers, in order: {', '.join(f'`{n}`' for n in layers)}."
        )
    if rows:
        blocks.append(Table("best_freeze_depth", header, rows))
    if "freeze_depth" in images:
        blocks.append(("image", "freeze_depth",
                       "Test metric vs freeze depth per recipe, with 95% CI bands"))
    return Section("Freeze depth", "freeze_depth", blocks)


def _efficiency_section(summary, images):
    rows_in = summary.get("data_efficiency") or []
    if not rows_in and "learning_curves" not in images:
        return None
    blocks = []
    if rows_in:
        blocks.append(
            "For each transfer condition at n samples: the scratch train size that "
            "reaches the same mean test metric, by linear interpolation on the scratch "
            "learning curve, and that size / n (\"x times the data\"). ≤ means scratch "
            "already matches it at its smallest size; > means scratch never does."
        )
        rows = [
            [row["label"], format_number(row["train_size"]), _scratch_size(row), _ratio(row)]
            for row in rows_in
        ]
        blocks.append(Table("data_efficiency",
                            ["condition", "train samples", "scratch samples to match",
                             "data ratio"], rows))
    if "learning_curves" in images:
        blocks.append(("image", "learning_curves",
                       "Learning curves: test metric vs target train size, 95% CI bands"))
    return Section("Learning curves and data efficiency", "data_efficiency", blocks)


def _retention_section(summary, images):
    rows_in = summary.get("retention") or []
    if not rows_in:
        return None
    metric = rows_in[0].get("metric", "metric")
    rows = [
        [row["label"], format_number(row["train_size"]), format_interval(row.get("before")),
         format_interval(row.get("after")), format_interval(row.get("forgetting"), signed=True)]
        for row in rows_in
    ]
    blocks = [
        f"Source test {metric} of the source model (before) and of the transferred "
        "trunk with the source head re-attached after target training (after). "
        "Forgetting = before - after, signed so that > 0 means the source task got worse.",
        Table("retention", ["condition", "train size", f"source {metric} before [95% CI]",
                            f"source {metric} after [95% CI]", "forgetting [95% CI]"], rows),
    ]
    if "retention" in images:
        blocks.append(("image", "retention", "Source retention and forgetting bars"))
    return Section("Source retention and forgetting", "retention", blocks)


def _scores_section(summary, images):
    metric = summary.get("primary_metric", "metric")
    conditions = [c for c in summary.get("conditions") or [] if c.get("scores")]
    agreement = summary.get("rank_agreement") or []
    if not conditions and not agreement:
        return None
    blocks = []
    if conditions:
        names = list(dict.fromkeys(n for c in conditions for n in c["scores"]))
        rows = [
            [c["label"], _size(c), format_interval(c.get("test", {}).get(metric))]
            + [format_interval(c["scores"].get(name)) for name in names]
            for c in conditions
        ]
        blocks.append(
            "Transferability scores of the features each condition started from (mean "
            "over seeds [95% CI]; higher = predicted better), next to what transfer "
            "actually achieved."
        )
        blocks.append(Table("scores", ["condition", "train samples",
                                       f"test {metric} [95% CI]", *names], rows))
    if agreement:
        rows = [
            [row.get("score", "-"), row.get("scope", "-"), format_number(row.get("train_size")),
             format_number(row.get("n")), format_number(row.get("kendall_tau"), signed=True),
             format_number(row.get("weighted_tau"), signed=True),
             format_number(row.get("pearson"), signed=True)]
            for row in agreement
        ]
        blocks.append(
            "Did the scores rank the conditions as they turned out? Kendall tau, "
            "weighted tau and Pearson between mean score and mean realised test metric "
            "(+1 = perfect order, -1 = reversed, - = undefined)."
        )
        blocks.append(Table("rank_agreement", ["score", "over", "train size", "n",
                                               "Kendall tau", "weighted tau", "Pearson"], rows))
    if "scores" in images:
        blocks.append(("image", "scores", "Transferability scores vs realised test metric"))
    return Section("Transferability scores", "scores", blocks)


def _fusion_section(summary):
    rows_in = summary.get("fusion") or []
    if not rows_in:
        return None
    forms = list(dict.fromkeys(form for row in rows_in for form in row.get("delta_m") or {}))
    blocks = [
        "One model with a shared trunk and one head per task, trained jointly. "
        "delta_m (Maninis et al. 2019) is the mean relative change of every task's "
        "metrics against its single-task baseline, signed so that > 0 means the fused "
        "model is better (+0.05 = 5% better on average); metric-balanced averages over "
        "all metrics, task-balanced first within each task.",
        Table("fusion", ["condition", "train size", "tasks"]
              + [f"delta_m {form.replace('_', '-')} [95% CI]" for form in forms],
              [[row["label"], format_number(row.get("train_size")), ", ".join(row["tasks"])]
               + [format_interval((row.get("delta_m") or {}).get(form), signed=True)
                  for form in forms]
               for row in rows_in]),
    ]
    metrics = list(dict.fromkeys(
        metric for row in rows_in for task in row["tasks"]
        for metric in row["test"].get(task, {})
    ))
    blocks.append(Table(
        "fusion_tasks",
        ["condition", "train size", "task"] + [f"test {m} [95% CI]" for m in metrics],
        [[row["label"], format_number(row.get("train_size")), task]
         + [format_interval(row["test"].get(task, {}).get(m)) for m in metrics]
         for row in rows_in for task in row["tasks"]],
    ))
    baselines = rows_in[0].get("baselines") or {}
    if baselines:
        blocks.append("Baselines: " + "; ".join(f"{k}: {v}" for k, v in baselines.items()) + ".")
    return Section("Fused multi-task model", "fusion", blocks)


def _matrix(rows):
    return " / ".join(" ".join(format_number(value) for value in row) for row in rows)


def _stream_section(summary):
    rows_in = summary.get("stream") or []
    if not rows_in:
        return None
    metrics = rows_in[0].get("metrics") or ["source metric", "target metric"]
    header = ["condition", "train size", "ACC [95% CI]", "BWT [95% CI]", "FWT [95% CI]",
              "forgetting [95% CI]", "R (mean)", "random init (mean)"]
    rows = [
        [row["label"], format_number(row.get("train_size")), format_interval(row.get("acc")),
         format_interval(row.get("bwt"), signed=True),
         format_interval(row.get("fwt"), signed=True),
         format_interval(row.get("forgetting"), signed=True),
         _matrix(row.get("accuracy_matrix") or []),
         " ".join(format_number(v) for v in row.get("random_init") or [])]
        for row in rows_in
    ]
    return Section("Transfer as a task stream", "stream", [
        "Source then target as a two-task stream (Lopez-Paz & Ranzato 2017): R[i][j] is "
        f"the metric on task j (source: {metrics[0]}, target: {metrics[-1]}) after "
        "training on task i, written `R00 R01 / R10 R11`. ACC = mean of the last row; "
        "BWT = how training on the target changed the source (< 0 = forgot); FWT = how "
        "the source helped the target before target training, against a random "
        "initialisation.",
        Table("stream", header, rows),
    ])


def _cka_section(summary, images):
    rows_in = summary.get("cka") or []
    if not rows_in:
        return None
    layers = list(dict.fromkeys(layer for row in rows_in for layer in row.get("layers") or []))
    rows = [
        [row["label"], format_number(row.get("train_size"))]
        + [format_interval((row.get("cka") or {}).get(layer)) for layer in layers]
        for row in rows_in
    ]
    blocks = [
        "Linear CKA (Kornblith et al. 2019) between the source model's and the trained "
        "target model's activations at each transferred layer, on the target test "
        "inputs: 1 = the representation did not move; lower = fine-tuning changed it.",
        Table("cka", ["condition", "train size", *layers], rows),
    ]
    if "cka" in images:
        blocks.append(("image", "cka", "Linear CKA per transferred layer and condition"))
    return Section("Representation change (CKA)", "cka", blocks)


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


def _extra_sections(summary):
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


def _notes_section(context):
    """What the run could not measure or speed up, and why (from the plan)."""
    notes = context.get("notes") or []
    if not notes:
        return None
    return Section("Notes", "notes", list(notes))


def _failures_section(summary):
    rows = [
        [c["label"], _size(c), format_number(failure.get("seed")), failure.get("error") or "-"]
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


def _trials_section(summary, trials):
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
                and not _several(row[index] for row in rows if row[index] != "-"))
        and not (column == "error" and not any(row[index] for row in rows))
    ]
    return Section("Trials", "trials", [
        f"Every trial of the run ({len(trials)}), one row per arm, freeze depth, train "
        "size and seed.",
        Table("trials", [header[i] for i in keep], [[row[i] for i in keep] for row in rows]),
    ])


def _provenance_section(config, context, provenance, summary, schema_version):
    metric = summary.get("primary_metric", "metric")
    direction = "higher" if summary.get("higher_is_better", True) else "lower"
    target = config.get("target") or {}
    items = [
        ("experiment", config.get("name")),
        ("sources", ", ".join(str(n) for n in _source_names(config))),
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


def report_sections(results, include_trials=False):
    """Builds the report's content: verdict, tables and plot references.

    Args:
        results: `Results` or its dict (as loaded from `results.json`).
        include_trials: bool. Add the table of every trial (the HTML report does).

    Returns:
        A `Report` (title, subtitle, verdict, sections of tables and images).

    Example:

    >>> report = report_sections(keras_tl.Results.from_folder("runs/parity"))
    >>> [section.name for section in report.sections][:2]
    ['gains', 'conditions']
    """
    config, context, provenance, summary, trials, schema_version = _parts(results)
    images = set(plots.available_plots(results))
    verdict, kind = _verdict(summary)
    target = (config.get("target") or {}).get("task", "?")
    seeds = provenance.get("seeds") or config.get("seeds") or []
    subtitle = (
        f"{', '.join(str(n) for n in _source_names(config))} -> {target} on "
        f"{provenance.get('backend', '?')}, {len(seeds)} seeds, "
        f"{format_number(summary.get('num_trials'))} trials "
        f"({format_number(summary.get('num_failed'))} failed)"
    )
    sections = [
        _gains_section(summary, images),
        _conditions_section(summary),
        _freeze_section(summary, context, images),
        _efficiency_section(summary, images),
        _retention_section(summary, images),
        _scores_section(summary, images),
        _fusion_section(summary),
        _stream_section(summary),
        _cka_section(summary, images),
        *_extra_sections(summary),
        _notes_section(context),
        _failures_section(summary),
        _trials_section(summary, trials) if include_trials else None,
        _provenance_section(config, context, provenance, summary, schema_version),
    ]
    return Report(
        title=f"keras-tl report: {config.get('name', 'experiment')}",
        subtitle=subtitle,
        verdict=verdict,
        verdict_kind=kind,
        sections=[s for s in sections if s is not None],
    )
