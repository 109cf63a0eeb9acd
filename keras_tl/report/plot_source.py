"""Plots of what target training did to the source model: retention and CKA.

`plot_retention` draws `summary["retention"]` (the source task before and after,
and forgetting); `plot_cka` `summary["cka"]` (how far each transferred layer's
representation moved). Each `*_data` function gives a plot's data from the summary
(`None` when the run has none of it).
"""

from keras_tl.report.figures import (
    PLOT_TITLES,
    UNITS,
    arm_style,
    draw_grid,
    draw_plot,
    error_bar_style,
    figure_with_axes,
    interval_error,
    metric_label,
    new_figure,
)


def retention_data(summary):
    """The retention rows (`None` when no trial measured retention)."""
    return summary.get("retention") or None


def cka_data(summary):
    """The CKA rows with at least one layer (`None`: none)."""
    rows = [row for row in summary.get("cka") or [] if row.get("layers")]
    return rows or None


def plot_retention(results, path):
    """Draws the source task's metric before and after target training, and forgetting.

    Left: the source test metric of the source model ("before") and of the
    transferred trunk with the source head re-attached after target training
    ("after"). Right: forgetting (before - after, signed so that > 0 means the
    source task got worse), with 95% CIs.

    Args:
        results: `Results` or its dict.
        path: str. The PNG file to write.

    Returns:
        `path`, or `None` when no trial measured retention.

    Example:

    >>> plot_retention(keras_tl.Results.from_folder("runs/sweep"), "retention.png")
    'retention.png'
    """
    return draw_plot(results, path, retention_data, _draw_retention)


def _draw_retention(results, summary, rows, _primary_metric):
    from matplotlib.patches import Patch

    metric = rows[0].get("metric", "metric")
    several_sizes = len({row["train_size"] for row in rows}) > 1
    labels = [
        row["label"] + (f"  (n={row['train_size']})" if several_sizes else "") for row in rows
    ]
    height = 1.4 + 0.5 * len(rows)
    figure = new_figure(10.0, height)
    left, right = figure.subplots(1, 2, sharey=True)
    ys = list(range(len(rows)))[::-1]
    bar = 0.38
    for y, row in zip(ys, rows):
        style = arm_style(row["arm"])
        for offset, moment, hatch, fill in (
            (bar / 2, "before", "///", "white"), (-bar / 2, "after", None, style["color"])
        ):
            value = row[moment]
            left.barh(
                y + offset, value["mean"], height=bar, color=fill, edgecolor=style["color"],
                hatch=hatch, linewidth=1.2, xerr=interval_error([value]),
                error_kw=error_bar_style(),
            )
        value = row["forgetting"]
        right.barh(
            y, value["mean"], height=0.6, color=style["color"], edgecolor="#333333",
            linewidth=0.8, xerr=interval_error([value]), error_kw=error_bar_style(),
        )
    figure.legend(
        handles=[
            Patch(facecolor="white", edgecolor="#333333", hatch="///",
                  label="before: the source model"),
            Patch(facecolor="#777777", edgecolor="#333333",
                  label="after: transferred trunk + source head, after target training"),
        ],
        fontsize=8, loc="outside lower center", ncols=2,
    )
    left.set_yticks(ys, labels)
    left.set_xlabel(metric_label(metric, prefix="source test"))
    left.set_title("Source task before / after", loc="left", fontsize=10)
    right.axvline(0.0, color="#555555", linewidth=1)
    right.set_xlabel(
        f"forgetting ({UNITS.get(metric, 'metric units')}; > 0 = source task got worse)"
    )
    right.set_title("Forgetting (95% CI)", loc="left", fontsize=10)
    for axes in (left, right):
        draw_grid(axes, axis="x")
        axes.set_axisbelow(True)
    return figure


def plot_cka(results, path):
    """Draws a heatmap of mean linear CKA, source vs trained target, per layer.

    Rows are conditions, columns the transferred layers in order; each cell shows
    its value as text too, so the heatmap reads in grayscale. 1 means fine-tuning
    left the layer's representation unchanged (up to rotation and scale).

    Args:
        results: `Results` or its dict.
        path: str. The PNG file to write.

    Returns:
        `path`, or `None` when the run recorded no CKA for any layer.

    Example:

    >>> plot_cka(keras_tl.Results.from_folder("runs/fusion"), "cka.png")
    'cka.png'
    """
    return draw_plot(results, path, cka_data, _draw_cka)


def _draw_cka(results, summary, rows, _metric):
    layers = list(dict.fromkeys(layer for row in rows for layer in row["layers"]))
    several_sizes = len({str(row["train_size"]) for row in rows}) > 1
    labels = [row["label"] + (f"  (n={row['train_size']})" if several_sizes else "")
              for row in rows]
    values = [
        [((row.get("cka") or {}).get(layer) or {}).get("mean") for layer in layers]
        for row in rows
    ]
    grid = [[float("nan") if v is None else v for v in line] for line in values]
    figure, axes = figure_with_axes(2.4 + 1.15 * len(layers) + 2.2, 1.6 + 0.42 * len(rows))
    image = axes.imshow(grid, cmap="cividis", vmin=0.0, vmax=1.0, aspect="auto")
    for i, line in enumerate(values):
        for j, value in enumerate(line):
            text = "-" if value is None else f"{value:.2f}"
            shade = "black" if value is not None and value > 0.6 else "white"
            axes.text(j, i, text, ha="center", va="center", fontsize=9, color=shade)
    axes.set_xticks(range(len(layers)), layers)
    axes.set_yticks(range(len(rows)), labels)
    axes.set_xlabel("transferred layer (input side first)")
    colorbar = figure.colorbar(image, ax=axes, fraction=0.05)
    colorbar.set_label("linear CKA (1 = unchanged)")
    axes.set_title(PLOT_TITLES["cka"], loc="left", fontsize=10)
    return figure
