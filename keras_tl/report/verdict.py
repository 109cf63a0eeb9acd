"""The report's verdict: the headline sentence and what qualifies it.

Formatting only: every number comes from `Results.summary["best"]` and the
summary rows it points to.
"""

from keras_tl.report.blocks import (format_number, format_p, ratio_text,
                                    samples_text, scratch_size_text)
from keras_tl.report.text import control_sentence


def _interval_text(gain):
    """`[95% CI low, high]`, or why a gain has no interval (one seed, or no spread)."""
    if gain.get("ci_low") is None:
        if (gain.get("n") or 0) < 2:
            return "[no 95% CI: one paired seed]"
        return "[no 95% CI: every paired seed gave the same gain]"
    return (f"[95% CI {format_number(gain['ci_low'], signed=True)}, "
            f"{format_number(gain['ci_high'], signed=True)}]")


def verdict_lines(summary):
    """The verdict lines (headline first) and the verdict kind of the best condition."""
    metric = summary.get("primary_metric", "metric")
    best = summary.get("best")
    if not best:
        return (["No transfer condition finished with a validation score: no verdict. "
                 "See the failures below."], "none")
    if best.get("mean") is None:
        return ([f"Best transfer condition (on val {metric}): `{best['label']}` at "
                 f"{samples_text(best)} target samples, but too few seeds finished for both it "
                 f"and scratch to estimate a gain: "
                 f"**{best.get('verdict', 'insufficient')}**."], "none")
    headline = (
        f"**Verdict: {best['verdict']}.** Best transfer condition (chosen on val "
        f"{metric}): **`{best['label']}`** at {samples_text(best)} target samples, gain in test "
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
        if row["label"] == best["label"] and str(row["train_size"]) == samples_text(best)
    ]
    if efficiency:
        row = efficiency[0]
        parts.append(
            f"Data efficiency: scratch needs {scratch_size_text(row)} samples to match it "
            f"({ratio_text(row)} the data)."
        )
    elif not summary.get("data_efficiency"):
        parts.append("Data efficiency: not measured (needs two or more target train sizes).")
    explanation = best.get("explanation") or ""
    lines = [headline, explanation[:1].upper() + explanation[1:], control_sentence(best),
             " ".join(parts)]
    return [line for line in lines if line], best["verdict"]

