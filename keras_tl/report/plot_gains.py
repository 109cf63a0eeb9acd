"""Plots of what transfer achieved: gains vs scratch, and scores vs outcome.

`plot_gains` draws the forest plot of `summary["gains"]`; `plot_scores` each
transferability score against the realised test metric. Each `*_data` function
gives a plot's data from the summary (`None` when the run has none of it).
"""

from keras_tl.report.figures import (
    PLOT_TITLES,
    UNITS,
    arm_style,
    draw_grid,
    draw_plot,
    figure_title,
    figure_with_axes,
    figure_with_panels,
    interval_error,
    metric_label,
    p_text,
    samples_text,
    train_sizes,
)


def gains_data(summary):
    """The gains with a label (`None` when the run has none)."""
    rows = [g for g in summary.get("gains") or [] if g.get("label")]
    return rows or None


def scores_data(summary):
    """The names of the scores some transfer condition carries (`None`: none)."""
    metric = summary.get("primary_metric")
    names = list(
        dict.fromkeys(
            name
            for c in summary.get("conditions") or []
            if c["arm"] != "scratch" and metric in c.get("test", {})
            for name in c.get("scores") or {}
        )
    )
    return names or None


def plot_gains(results, path):
    """Draws a forest plot of every condition's gain over scratch with its 95% CI.

    Args:
        results: `Results` or its dict.
        path: str. The PNG file to write.

    Returns:
        `path`, or `None` when the run has no gains (no transfer arm).

    Example:

    >>> plot_gains(keras_tl.Results.from_folder("runs/parity"), "gains.png")
    'gains.png'
    """
    return draw_plot(results, path, gains_data, _draw_gains)


def _draw_gains(results, summary, rows, metric):
    several_sizes = len(train_sizes(summary)) > 1
    labels = [
        g["label"] + (f"  (n={samples_text(g)})" if several_sizes else "") for g in rows
    ]
    figure, axes = figure_with_axes(8.5, 1.3 + 0.42 * len(rows))
    axes.axvline(0.0, color="#555555", linewidth=1, linestyle="--", zorder=1)
    seen_arms = set()
    for position, gain in enumerate(rows):
        y = len(rows) - 1 - position
        if gain.get("mean") is None:
            axes.annotate(
                "not enough paired seeds", (0.0, y), xytext=(6, 0),
                textcoords="offset points", va="center", fontsize=8, color="#555555",
            )
            continue
        style = arm_style(gain["arm"])
        error = interval_error([gain])
        axes.errorbar(
            [gain["mean"]], [y], xerr=error, fmt=style["marker"], color=style["color"],
            markerfacecolor=style["markerfacecolor"], markeredgecolor=style["color"],
            markersize=7, capsize=4, elinewidth=1.6, zorder=3,
            label=gain["arm"] if gain["arm"] not in seen_arms else None,
        )
        seen_arms.add(gain["arm"])
        axes.annotate(
            f"{gain.get('verdict', '')}, p(Holm) {p_text(gain.get('p_value_adjusted'))}",
            (1.0, y), xycoords=("axes fraction", "data"), xytext=(6, 0),
            textcoords="offset points", va="center", fontsize=8,
        )
    axes.set_yticks(range(len(rows)), labels[::-1])
    axes.set_ylim(-0.7, len(rows) - 0.3)
    axes.set_xlabel(
        f"gain in test {metric} vs scratch ({UNITS.get(metric, 'metric units')}; "
        "> 0 = transfer helped)"
    )
    axes.set_title(PLOT_TITLES["gains"], loc="left", fontsize=11)
    axes.grid(axis="x", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    if seen_arms:
        axes.legend(loc="lower left", fontsize=8, frameon=True)
    return figure


def plot_scores(results, path):
    """Draws each transferability score against the realised test metric.

    One panel per score; each point is one transfer condition (means over seeds:
    the ranking that `summary["rank_agreement"]` judges), titled with the stored
    Kendall tau over all conditions.

    Args:
        results: `Results` or its dict.
        path: str. The PNG file to write.

    Returns:
        `path`, or `None` when no condition carries transferability scores.

    Example:

    >>> plot_scores(keras_tl.Results.from_folder("runs/parity"), "scores.png")
    'scores.png'
    """
    return draw_plot(results, path, scores_data, _draw_scores)


def _draw_scores(results, summary, names, metric):
    conditions = [
        c for c in summary["conditions"] if c["arm"] != "scratch" and metric in c.get("test", {})
    ]
    agreement = summary.get("rank_agreement") or []
    several_sizes = len(train_sizes(summary)) > 1
    columns = min(len(names), 2 if len(names) <= 4 else 3)
    figure, panels = figure_with_panels(len(names), columns, (4.4, 3.3), (0.6, 0.8))
    arms_seen = {}
    for index, (name, axes) in enumerate(zip(names, panels)):
        for c in conditions:
            score = (c.get("scores") or {}).get(name)
            if score is None:
                continue
            style = arm_style(c["arm"])
            (handle,) = axes.plot(
                [score["mean"]], [c["test"][metric]["mean"]], linestyle="none",
                marker=style["marker"], color=style["color"], markersize=7,
            )
            arms_seen.setdefault(c["arm"], handle)
        taus = [
            f"{'n=' + str(row['train_size']) + ': ' if several_sizes else ''}"
            f"tau {row['kendall_tau']:.2f}" if row.get("kendall_tau") is not None
            else f"{'n=' + str(row['train_size']) + ': ' if several_sizes else ''}tau -"
            for row in agreement
            if row.get("score") == name and row.get("scope") == "all conditions"
        ]
        axes.set_title(f"{name}\n{'; '.join(taus[:3])}", fontsize=9)
        axes.set_xlabel(f"{name} score (mean over seeds; higher = predicted better)",
                        fontsize=8)
        if index % columns == 0:
            axes.set_ylabel(metric_label(metric))
        draw_grid(axes)
    figure.legend(
        list(arms_seen.values()), list(arms_seen), loc="outside lower center",
        ncols=max(1, len(arms_seen)), fontsize=8,
    )
    figure_title(figure, PLOT_TITLES["scores"] + " (Kendall tau over all conditions)")
    return figure
