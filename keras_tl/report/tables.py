"""The report's result sections: one function per summary key, each a `Section`.

Per-condition metrics, gains vs scratch, freeze depth, data efficiency, source
retention, transferability scores, the fused multi-task model, the task stream
and CKA. Each returns `None` when the run has nothing for it. Formatting only:
every number comes from `Results.summary`.
"""

from keras_tl.report.blocks import (
    Section,
    Table,
    format_interval,
    format_number,
    format_p,
    has_several,
    ratio_text,
    samples_text,
    scratch_size_text,
)
from keras_tl.report.plot_curves import depth_curves


def conditions_section(summary):
    """Per-condition test and val metrics with their 95% CIs."""
    metric = summary.get("primary_metric", "metric")
    conditions = summary.get("conditions") or []
    test_metrics = list(dict.fromkeys(m for c in conditions for m in c.get("test", {})))
    test_metrics.sort(key=lambda m: m != metric)
    header = ["condition", "recipe", "frozen layers", "train samples", "seeds ok",
              "failed"]
    header += [f"test {m} [95% CI]" for m in test_metrics] + [f"val {metric} [95% CI]"]
    rows = [
        [c["label"], c.get("recipe", "-"), format_number(c.get("freeze_depth")), samples_text(c),
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


def _gains_table(name, gains, metric):
    """The table of paired gains: interval, effect size, p-values and verdict."""
    wilcoxon = any(g.get("wilcoxon_p_value") is not None for g in gains)
    header = ["condition", "train samples", "paired seeds", f"gain in test {metric} [95% CI]",
              "effect size", "p", "p (Holm)"] + (["Wilcoxon p"] if wilcoxon else []) + ["verdict"]
    rows = []
    for g in gains:
        row = [g["label"], samples_text(g), format_number(g.get("n")),
               format_interval(g, signed=True), format_number(g.get("effect_size"), signed=True),
               format_p(g.get("p_value")), format_p(g.get("p_value_adjusted"))]
        if wilcoxon:
            row.append(format_p(g.get("wilcoxon_p_value")))
        rows.append(row + [g.get("verdict", "-")])
    return Table(name, header, rows)


def _explanations(gains):
    """One line per inconclusive gain: what it rules out, what would decide it."""
    return [f"`{g['label']}` at {samples_text(g)} samples: {g['explanation']}."
            for g in gains if g.get("explanation")]


def _verdict_rule(summary):
    seeds = summary.get("seeds")
    if seeds:
        return (f"Seeds were added in rounds from {seeds['min']} up to {seeds['max']}; "
                "verdicts come from the group-sequential t-test with Holm across "
                "conditions (docs/sequential.md), which keeps a 5% family-wise error "
                "rate under that stopping; the p-values are descriptive.")
    return "Verdicts use the Holm-adjusted exact sign-flip p-values (alpha 0.05)."


def control_section(summary):
    """Gains over the random_transfer control (`None`: the control did not run)."""
    gains = summary.get("gains_vs_control") or []
    if not gains:
        return None
    metric = summary.get("primary_metric", "metric")
    return Section("Transfer gain vs the random_transfer control", "control", [
        "Gain = condition - random_transfer at the same source, freeze depth and train "
        "size, paired by seed: the same architecture and freezing with random weights. "
        "A positive verdict here means the gain comes from what the source learned. "
        "These comparisons share the Holm family of the gains vs scratch.",
        _gains_table("control", gains, metric),
        *_explanations(gains),
    ])


def gains_section(summary, images):
    """Paired gains vs scratch, p-values and verdicts (`None`: no gains)."""
    gains = summary.get("gains") or []
    if not gains:
        return None
    metric = summary.get("primary_metric", "metric")
    blocks = [
        "Gain = condition - scratch, paired by seed, signed so that > 0 means "
        f"transfer helped ({'higher' if summary.get('higher_is_better', True) else 'lower'} "
        f"{metric} is better). " + _verdict_rule(summary) + " Effect size = mean gain / "
        "std of the paired differences.",
        _gains_table("gains", gains, metric),
    ]
    notes = [g for g in gains if g.get("note")]
    for g in notes:
        blocks.append(f"`{g['label']}` at {samples_text(g)} samples: {g['note']}.")
    blocks += _explanations(gains)
    if "gains" in images:
        blocks.append(("image", "gains", "Forest plot of the gains vs scratch with 95% CIs"))
    return Section("Transfer gain vs scratch", "gains", blocks)


def freeze_section(summary, context, images):
    """The best freeze depth per arm, source and train size (`None`: no sweep)."""
    rows_in = summary.get("best_freeze_depth") or []
    if not rows_in and "freeze_depth" not in images:
        return None
    metric = summary.get("primary_metric", "metric")
    depths_swept = {}
    for curve in depth_curves(summary):
        key = (curve["arm"], curve.get("source"), str(curve["train_size"]))
        depths_swept[key] = [p["freeze_depth"] for p in curve["points"]]
    by_condition = {
        (c["arm"], c.get("source"), c["freeze_depth"], c["train_size"]): c
        for c in summary.get("conditions") or []
    }
    several_sources = has_several(row.get("source") for row in rows_in)
    header = ["arm"] + (["source"] if several_sources else []) + [
        "train samples", "depths swept", "best freeze depth (val)", f"its test {metric} [95% CI]"]
    rows = []
    for row in rows_in:
        swept = depths_swept.get((row["arm"], row.get("source"), str(row["train_size"])), [])
        chosen = by_condition.get(
            (row["arm"], row.get("source"), row["freeze_depth"], row["train_size"]), {})
        rows.append(
            [row["arm"]] + ([row.get("source") or "-"] if several_sources else [])
            + [samples_text(row), ", ".join(str(d) for d in swept) or "-",
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


def efficiency_section(summary, images):
    """Data efficiency vs the scratch learning curve (`None`: one train size)."""
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
            [row["label"], format_number(row["train_size"]), scratch_size_text(row),
             ratio_text(row)]
            for row in rows_in
        ]
        blocks.append(Table("data_efficiency",
                            ["condition", "train samples", "scratch samples to match",
                             "data ratio"], rows))
    if "learning_curves" in images:
        blocks.append(("image", "learning_curves",
                       "Learning curves: test metric vs target train size, 95% CI bands"))
    return Section("Learning curves and data efficiency", "data_efficiency", blocks)


def retention_section(summary, images):
    """Source metric before / after target training and forgetting."""
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


def scores_section(summary, images):
    """Transferability scores per condition and their rank agreement."""
    metric = summary.get("primary_metric", "metric")
    conditions = [c for c in summary.get("conditions") or [] if c.get("scores")]
    agreement = summary.get("rank_agreement") or []
    if not conditions and not agreement:
        return None
    blocks = []
    if conditions:
        names = list(dict.fromkeys(n for c in conditions for n in c["scores"]))
        rows = [
            [c["label"], samples_text(c), format_interval(c.get("test", {}).get(metric))]
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


def _delta_m_metrics_text(rows):
    used = rows[0].get("delta_m_metrics") if rows else None
    if not used:
        return ""
    return ": " + "; ".join(f"{task}: {', '.join(metrics)}" for task, metrics in used.items())


def fusion_section(summary):
    """The fused multi-task model's delta_m and per-task metrics."""
    rows_in = summary.get("fusion") or []
    if not rows_in:
        return None
    forms = list(dict.fromkeys(form for row in rows_in for form in row.get("delta_m") or {}))
    blocks = [
        "One model with a shared trunk and one head per task, trained jointly. "
        "delta_m (Maninis et al. 2019) is the mean relative change of each task's "
        "metrics against its single-task baseline, signed so that > 0 means the fused "
        "model is better (+0.05 = 5% better on average); metric-balanced averages over "
        "all metrics, task-balanced first within each task. It averages the task "
        "metrics the experiment names, never the training loss"
        + _delta_m_metrics_text(rows_in) + ".",
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
    """The accuracy matrix R as `R00 R01 / R10 R11`."""
    return " / ".join(" ".join(format_number(value) for value in row) for row in rows)


def stream_section(summary):
    """Source then target as a two-task stream: ACC, BWT, FWT, forgetting."""
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


def cka_section(summary, images):
    """Linear CKA, source vs trained target, per transferred layer."""
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


def search_section(summary):
    """How sensitive each condition was to the target settings it searched."""
    rows_in = summary.get("search") or []
    if not rows_in:
        return None
    metric = summary.get("primary_metric", "metric")
    header = ["condition", "train samples", "learning rate", "batch size",
              f"mean val {metric}", "seeds", "chosen"]
    rows = [
        [row["label"], samples_text(row), f"{row['learning_rate']:g}",
         format_number(row.get("batch_size")), format_number(row.get("mean")),
         format_number(row.get("n")), format_number(row.get("chosen"))]
        for row in rows_in
    ]
    return Section("Sensitivity to the target settings", "search", [
        "Each trial trained every setting of the grid (`search:` or `learning_rates:`) "
        f"and kept the one with the best val {metric}; the test metrics above are the "
        "kept setting's. Per condition and setting: the mean val metric over the seeds "
        "where it trained without diverging (`seeds`), and how many seeds kept it "
        "(`chosen`). A flat column means the condition was insensitive to the setting.",
        Table("search", header, rows),
    ])
