"""Curves of the test metric: against the freeze depth, and against the train size.

`plot_freeze_depth` draws `summary["curves"]["freeze_depth"]`; `plot_learning_curves`
`summary["curves"]["train_size"]`. Each `*_data` function gives a plot's data from
the summary (`None` when the run has none of it).
"""

from keras_tl.report.figures import (
    PLOT_TITLES,
    arm_of_label,
    arm_style,
    clip_to_range,
    context_of,
    draw_curve,
    draw_grid,
    draw_plot,
    figure_title,
    figure_with_axes,
    figure_with_panels,
    metric_label,
    variant_indices,
)


def depth_curves(summary):
    """Freeze-depth curves as a list of `{arm, source, train_size, points}`.

    Reads both layouts of `summary["curves"]["freeze_depth"]`: the list of curves,
    and the older mapping `arm -> train size -> points`.
    """
    curves = (summary.get("curves") or {}).get("freeze_depth") or []
    if isinstance(curves, dict):
        curves = [
            {"arm": arm, "source": None, "train_size": size, "points": points}
            for arm, by_size in curves.items()
            for size, points in by_size.items()
        ]
    return curves


def depth_data(summary):
    """The freeze-depth curves with two or more points (`None`: none)."""
    curves = [curve for curve in depth_curves(summary) if len(curve["points"]) >= 2]
    return curves or None


def learning_data(summary):
    """The learning curves with two or more train sizes (`None`: none)."""
    curves = (summary.get("curves") or {}).get("train_size") or {}
    curves = {label: points for label, points in curves.items() if len(points) >= 2}
    return curves or None


def _same_size(a, b):
    """Whether two train sizes are the same (stored as int or str)."""
    return str(a) == str(b)


def plot_freeze_depth(results, path):
    """Draws the test metric against the number of frozen transferred layers.

    One panel per target train size; one curve per arm (and source) with its 95%
    CI band, the `random_transfer` control among them, and the scratch baseline
    as a horizontal line with its band.

    Args:
        results: `Results` or its dict.
        path: str. The PNG file to write.

    Returns:
        `path`, or `None` when no arm was run at two or more freeze depths.

    Example:

    >>> plot_freeze_depth(keras_tl.Results.from_folder("runs/sweep"), "depth.png")
    'depth.png'
    """
    return draw_plot(results, path, depth_data, _draw_freeze_depth)


def _draw_freeze_depth(results, summary, curves, metric):
    sizes = list(dict.fromkeys(str(curve["train_size"]) for curve in curves))
    columns = min(len(sizes), 3)
    figure, panels = figure_with_panels(len(sizes), columns, (4.6, 3.8), (1.0, 0.0))
    layers = context_of(results).get("transferable") or []
    for index, (size, axes) in enumerate(zip(sizes, panels)):
        members = [curve for curve in curves if str(curve["train_size"]) == size]
        labels = [f"{curve['arm']}|{curve.get('source')}" for curve in members]
        arms = {label: curve["arm"] for label, curve in zip(labels, members)}
        variants = variant_indices(labels, arms)
        depths = sorted({p["freeze_depth"] for curve in members for p in curve["points"]})
        scratch = next(
            (c for c in summary.get("conditions") or []
             if c["arm"] == "scratch" and _same_size(c["train_size"], size)),
            None,
        )
        scratch_metric = (scratch or {}).get("test", {}).get(metric)
        if scratch_metric:
            style = arm_style("scratch")
            axes.axhline(scratch_metric["mean"], color=style["color"], linestyle="--",
                         linewidth=1.2, label="scratch (baseline)")
            if scratch_metric.get("ci_low") is not None:
                axes.axhspan(scratch_metric["ci_low"], scratch_metric["ci_high"],
                             color="#000000", alpha=0.08, linewidth=0)
        for label, curve in zip(labels, members):
            points = sorted(curve["points"], key=lambda p: p["freeze_depth"])
            name = curve["arm"] + (" (control)" if curve["arm"] == "random_transfer" else "")
            if curve.get("source") and len({c.get("source") for c in members}) > 1:
                name += f" from {curve['source']}"
            draw_curve(axes, [p["freeze_depth"] for p in points], points, name,
                   arm_style(curve["arm"], variants[label]))
        ticks = [
            f"{depth}\n{'none' if depth == 0 else 'up to ' + layers[depth - 1]}"
            if 0 <= depth <= len(layers) else f"{depth}"
            for depth in depths
        ]
        axes.set_xticks(depths, ticks if layers else [str(d) for d in depths])
        axes.set_xlabel("frozen transferred layers k (0 = all trainable)")
        if index % columns == 0:
            axes.set_ylabel(metric_label(metric))
        sample_text = scratch["num_samples"] if scratch and scratch.get("num_samples") else size
        axes.set_title(f"{sample_text} target training samples", fontsize=10)
        draw_grid(axes)
        axes.legend(fontsize=8, loc="best")
        clip_to_range(axes, metric)
    figure_title(figure, PLOT_TITLES["freeze_depth"] + " (95% CI bands)")
    return figure


def plot_learning_curves(results, path):
    """Draws the test metric against the target train size (log x) per condition.

    Args:
        results: `Results` or its dict.
        path: str. The PNG file to write.

    Returns:
        `path`, or `None` when the run has fewer than two target train sizes.

    Example:

    >>> plot_learning_curves(keras_tl.Results.from_folder("runs/curve"), "lc.png")
    'lc.png'
    """
    return draw_plot(results, path, learning_data, _draw_learning_curves)


def _draw_learning_curves(results, summary, curves, metric):
    from matplotlib.ticker import NullFormatter

    arms = arm_of_label(summary)
    variants = variant_indices(list(curves), arms)
    figure, axes = figure_with_axes(8.0, 4.8)
    sizes = sorted({p["train_size"] for points in curves.values() for p in points})
    for label, points in curves.items():
        draw_curve(axes, [p["train_size"] for p in points], points, label,
               arm_style(arms.get(label, label), variants[label]))
    axes.set_xscale("log")
    axes.set_xticks(sizes, [str(size) for size in sizes])
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("target training samples (log scale)")
    axes.set_ylabel(metric_label(metric))
    axes.set_title(PLOT_TITLES["learning_curves"] + " (95% CI bands)", loc="left", fontsize=11)
    draw_grid(axes, which="major")
    axes.legend(fontsize=8, loc="best")
    clip_to_range(axes, metric)
    return figure
