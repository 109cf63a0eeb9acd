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


def _key(row):
    return row["arm"], row.get("source"), row["freeze_depth"], row["train_size"]


def _score_lines(summary):
    """The scores of each transfer condition, and how well each ranked them."""
    agreement = summary.get("rank_agreement") or []
    names = list(dict.fromkeys(row["score"] for row in agreement))
    if not names:
        return []
    metric = summary["primary_metric"]
    rows = [
        [c["label"], c["num_samples"], _mean_ci(c["test"].get(metric))]
        + [_number((c["scores"].get(name) or {}).get("mean")) for name in names]
        for c in summary["conditions"] if c["arm"] != "scratch"
    ]
    lines = ["", "Transferability scores (mean over seeds) vs realised test " + metric,
             format_table(["arm", "train", f"test {metric}", *names], rows), ""]
    rows = [
        [row["score"], row["scope"], row["train_size"], row["n"], _number(row["kendall_tau"]),
         _number(row["weighted_tau"]), _number(row["pearson"])]
        for row in agreement
    ]
    lines.append("Did the scores rank the arms right? (1 = perfectly, -1 = reversed)")
    lines.append(format_table(
        ["score", "over", "train", "n", "Kendall tau", "weighted tau", "Pearson"], rows))
    return lines


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
        f" on {results.provenance.get('backend')} ({len(results.provenance.get('seeds', []))} seeds)",
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
    lines += _score_lines(summary)
    if summary["num_failed"]:
        lines.append(f"{summary['num_failed']} trial(s) failed; see trials.csv for reasons.")
    return "\n".join(lines)
