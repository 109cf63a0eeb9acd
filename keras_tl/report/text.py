"""The plain-text summary printed at the end of `keras-tl evaluate`.

Formatting only: every number comes from `Results.summary`.
"""


def _number(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def _mean_ci(summary):
    if not summary:
        return "-"
    if summary.get("ci_high") is None:
        return f"{summary['mean']:.3f}"
    return f"{summary['mean']:.3f} ± {summary['ci_high'] - summary['mean']:.3f}"


def _gain_text(gain):
    if gain is None:
        return "", "", "", ""
    if gain.get("mean") is None:
        return "-", "-", "-", gain["verdict"]
    interval = f"{gain['mean']:+.3f} [{_number(gain['ci_low'])}, {_number(gain['ci_high'])}]"
    return interval, _number(gain["p_value"]), _number(gain["p_value_adjusted"]), gain["verdict"]


def control_sentence(best):
    """Whether the best gain comes from what the source learned: its gain over the
    `random_transfer` control (same architecture and depth, random weights)."""
    control = best.get("vs_control")
    if not best.get("control_ran"):
        return ("The random_transfer control was not run, so this cannot separate what "
                "the source learned from what its architecture and initialisation give: "
                "add random_transfer to arms.")
    if control is None or control.get("mean") is None:
        return ("The random_transfer control has no paired seeds at this condition's "
                "depth and train size: no comparison with it.")
    meaning = {
        "positive": "the gain comes from what the source learned",
        "negative": "random weights in the same architecture did better than the source's",
        "inconclusive": "not shown to come from what the source learned",
        "continue": "undecided until more seeds run",
    }.get(control["verdict"], control["verdict"])
    interval = ("" if control.get("ci_low") is None
                else f" [{control['ci_low']:+.3f}, {control['ci_high']:+.3f}]")
    return (f"Against random_transfer at the same depth: {control['mean']:+.3f}{interval}, "
            f"p (Holm) = {_number(control.get('p_value_adjusted'))}, verdict: "
            f"{control['verdict']}: {meaning}.")


def _key(row):
    return row["arm"], row.get("source"), row["freeze_depth"], row["train_size"]


def _score_lines(summary):
    """The scores of each transfer condition, and how well each ranked them."""
    scored = [c for c in summary["conditions"] if c["scores"]]
    names = list(dict.fromkeys(name for c in scored for name in c["scores"]))
    if not names:
        return []
    metric = summary["primary_metric"]
    rows = [
        [c["label"], c["num_samples"], _mean_ci(c["test"].get(metric))]
        + [_number((c["scores"].get(name) or {}).get("mean")) for name in names]
        for c in scored
    ]
    lines = ["", "Transferability scores (mean over seeds) vs realised test " + metric,
             format_table(["arm", "train", f"test {metric}", *names], rows), ""]
    agreement = summary.get("rank_agreement") or []
    if not agreement:
        lines.append("Score-vs-realised rank agreement needs at least 3 scored conditions.")
        return lines
    rows = [
        [row["score"], row["scope"], row["train_size"], row["n"], _number(row["kendall_tau"]),
         _number(row["weighted_tau"]), _number(row["pearson"])]
        for row in agreement
    ]
    lines.append("Did the scores rank the arms right? (1 = perfectly, -1 = reversed)")
    lines.append(format_table(
        ["score", "over", "train", "n", "Kendall tau", "weighted tau", "Pearson"], rows))
    return lines


def _interval(summary, scale=1.0):
    if not summary or summary.get("mean") is None:
        return "-"
    if summary.get("ci_low") is None:
        return f"{scale * summary['mean']:+.3f}"
    return (f"{scale * summary['mean']:+.3f} [{scale * summary['ci_low']:+.3f}, "
            f"{scale * summary['ci_high']:+.3f}]")


def _fusion_lines(summary):
    lines = []
    for row in summary.get("fusion") or []:
        lines += ["", f"Fused model at {row['train_size']} target samples "
                  f"(baselines: {row['baselines']['target']}; {row['baselines']['sources']})"]
        metrics = list(dict.fromkeys(m for task in row["tasks"] for m in row["test"][task]))
        table = [[task] + [_mean_ci(row["test"][task].get(m)) for m in metrics]
                 for task in row["tasks"]]
        lines.append(format_table(["task", *metrics], table))
        stream = row.get("per_task") or {}
        if stream:
            table = [[task, v["metric"], _mean_ci(v["random_init"]), _mean_ci(v["single_task"]),
                      _mean_ci(v["fused"]), _interval(v["shortfall"], 100)]
                     for task, v in stream.items()]
            lines.append(format_table(
                ["task", "metric", "random init", "single-task", "fused",
                 "shortfall vs single-task (points)"], table))
        if row.get("delta_m") is None:
            lines.append(f"delta_m undefined: {row.get('delta_m_note')}")
            continue
        used = "; ".join(f"{task}: {', '.join(metrics)}"
                         for task, metrics in (row.get("delta_m_metrics") or {}).items())
        lines.append(
            f"delta_m vs single-task baselines [95% CI]: metric-balanced "
            f"{_interval(row['delta_m']['metric_balanced'], 100)} %, task-balanced "
            f"{_interval(row['delta_m']['task_balanced'], 100)} %"
            + (f" (over {used}; never the loss)" if used else "")
        )
    return lines


def _stream_lines(summary):
    rows = summary.get("stream") or []
    if not rows:
        return []
    table = []
    for row in rows:
        (r00, r01), (r10, r11) = row["accuracy_matrix"]
        table.append([row["label"], row["train_size"], f"{r00:.3f} {r01:.3f}",
                      f"{r10:.3f} {r11:.3f}", _interval(row["acc"]), _interval(row["bwt"]),
                      _interval(row["fwt"]), _interval(row["forgetting"], 100)])
    metrics = "/".join(rows[0]["metrics"])
    return ["", f"Sequential transfer as a two-task stream ({metrics}; R rows: after "
            f"source training, after target training; columns: source, target)",
            format_table(["arm", "train", "R[0]", "R[1]", "ACC", "BWT", "FWT",
                          "forgetting (points)"], table)]


def _cka_lines(summary):
    rows = summary.get("cka") or []
    if not rows:
        return []
    layers = list(dict.fromkeys(layer for row in rows for layer in row["layers"]))
    table = [[row["label"], row["train_size"]] + [
        _number((row["cka"].get(layer) or {}).get("mean")) for layer in layers]
        for row in rows]
    return ["", "Linear CKA between source and trained target, by transferred layer "
            "(1 = representation unchanged)", format_table(["arm", "train", *layers], table)]


def seeds_text(summary, planned_seeds):
    """`N seeds`, or for `seeds: {min, max}` how many ran and how they were added."""
    seeds = summary.get("seeds")
    if seeds:
        return (f"{seeds['run']} seeds, added in rounds from {seeds['min']} up to "
                f"{seeds['max']} until decided")
    return f"{len(planned_seeds)} seeds"


def format_table(header, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def format_summary(results):
    """Returns the run's summary as text: one table and a few verdict lines."""
    summary = results.summary
    metric = summary["primary_metric"]
    gains = {_key(g): g for g in summary["gains"]}
    rows = []
    for c in summary["conditions"]:
        gain = gains.get(_key(c))
        rows.append(
            [c["label"], c["num_samples"] or c["train_size"], f"{c['n']}"
             + (f" ({c['num_failed']} failed)" if c["num_failed"] else ""),
             _mean_ci(c["test"].get(metric)), *_gain_text(gain)]
        )
    header = ["arm", "train", "seeds", f"test {metric} (95% CI)", "gain vs scratch [95% CI]",
              "p", "p (Holm)", "verdict"]
    config = results.config
    lines = [
        f"{config['name']}: {', '.join(s['name'] for s in config['sources'])} -> "
        f"{config['target']['task']}"
        f" on {results.provenance.get('backend')} ({seeds_text(summary, results.provenance.get('seeds', []))})",
        "",
        format_table(header, rows),
        "",
    ]
    best = summary.get("best")
    if best and best.get("mean") is not None:
        lines.append(
            f"Best transfer arm (chosen on val {metric}): {best['label']} at "
            f"{best['num_samples']} samples: gain {best['mean']:+.3f} "
            f"[{_number(best['ci_low'])}, {_number(best['ci_high'])}], "
            f"p (Holm) = {_number(best['p_value_adjusted'])}, verdict: {best['verdict']}."
        )
        if best.get("explanation"):
            lines.append(f"  {best['explanation']}")
        lines.append(f"  {control_sentence(best)}")
    for row in summary["best_freeze_depth"]:
        lines.append(
            f"Best freeze depth for {row['arm']}"
            + (f" from {row['source']}" if len(config["sources"]) > 1 else "")
            + f" at {row['num_samples']} samples (on val): "
            f"{row['freeze_depth']}"
        )
    for row in summary["data_efficiency"]:
        if row["label"] == (best or {}).get("label"):
            ratio = f"{row['data_ratio']:.1f}x"
            lines.append(
                f"Data efficiency of {row['label']} at {row['train_size']} samples: "
                f"scratch needs {row['bound'].replace('=', '')} {row['scratch_size']:.0f} "
                f"samples ({row['bound'].replace('=', '')}{ratio} the data)".replace("  ", " ")
            )
    for row in summary["retention"]:
        lines.append(
            f"Source {row['metric']} of {row['label']}: {row['before']['mean']:.3f} before, "
            f"{row['after']['mean']:.3f} after target training (forgetting "
            f"{100 * row['forgetting']['mean']:+.1f} points)"
        )
    lines += _fusion_lines(summary)
    lines += _stream_lines(summary)
    lines += _cka_lines(summary)
    lines += _score_lines(summary)
    lines += [f"Note: {note}" for note in (results.context or {}).get("notes") or []]
    if summary["num_failed"]:
        lines.append(f"{summary['num_failed']} trial(s) failed; see trials.csv for reasons.")
    return "\n".join(lines)
