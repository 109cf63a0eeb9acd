"""What every plot of the report shares: styles, labels, figures and saving.

Every arm has one colour, marker and line style (`arm_style`), the same in every
plot, chosen so that plots stay readable in grayscale. Figures are made with
`matplotlib.figure.Figure` and the Agg canvas, never through `pyplot`: no display
is needed and the caller's matplotlib backend is left alone. `draw_plot` is the
one path from a plot's data to its PNG file (`keras_tl.report.plots`).
"""

import os
import tempfile
import zlib

# Okabe & Ito's colour-blind-safe palette; markers and line styles differ too, so
# arms stay apart in grayscale print.
_ARM_STYLES = {
    "scratch": ("#000000", "o", "-"),
    "fine_tune": ("#0072B2", "s", "-"),
    "linear_probe": ("#E69F00", "^", "--"),
    "lp_ft": ("#009E73", "D", "-."),
    "l2sp": ("#CC79A7", "v", ":"),
    "random_transfer": ("#D55E00", "X", (0, (6, 2, 1, 2))),
    "fused": ("#56B4E9", "P", (0, (3, 1, 1, 1, 1, 1))),
}
_FALLBACK_STYLES = [
    ("#7F3C8D", "h", "--"),
    ("#11A579", "*", "-."),
    ("#3969AC", "p", ":"),
    ("#E73F74", "<", (0, (4, 2))),
    ("#80BA5A", ">", (0, (1, 1))),
]
# Variants separate several curves of one arm (freeze depths, sources): the arm's
# colour and marker stay, the line style and marker fill change.
_VARIANT_LINESTYLES = ["-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 2))]

UNITS = {
    "accuracy": "fraction correct",
    "auc": "area under ROC, 0 to 1",
    "loss": "loss units",
    "mae": "target units",
    "mse": "squared target units",
}

PLOT_TITLES = {
    "gains": "Transfer gain vs scratch (95% CI)",
    "freeze_depth": "Test metric vs freeze depth",
    "learning_curves": "Learning curves",
    "retention": "Source retention and forgetting",
    "scores": "Transferability scores vs realised test metric",
    "cka": "Where fine-tuning moved the representation: linear CKA per layer",
}


def arm_style(arm, variant=0):
    """The colour, marker and line style of an arm, the same in every plot.

    Args:
        arm: str. The arm name (`"scratch"`, `"fine_tune"`, ...). Unknown arms get
            a stable style derived from their name.
        variant: int. Index of the curve among curves of the same arm (e.g. one
            per freeze depth); `0` is the arm's own style. Later variants keep the
            colour and marker and change the line style and marker fill.

    Returns:
        A dict of matplotlib keyword arguments: `color`, `marker`, `linestyle`,
        `markerfacecolor`, `markeredgecolor`.

    Example:

    >>> from keras_tl.report.plots import arm_style
    >>> arm_style("scratch")["marker"]
    'o'
    """
    if arm in _ARM_STYLES:
        color, marker, linestyle = _ARM_STYLES[arm]
    else:
        index = zlib.crc32(str(arm).encode()) % len(_FALLBACK_STYLES)
        color, marker, linestyle = _FALLBACK_STYLES[index]
    if variant:
        linestyle = _VARIANT_LINESTYLES[variant % len(_VARIANT_LINESTYLES)]
    return {
        "color": color,
        "marker": marker,
        "linestyle": linestyle,
        "markerfacecolor": "white" if variant % 2 else color,
        "markeredgecolor": color,
    }


def metric_label(metric, prefix="test"):
    """An axis label for a metric with its unit and direction, e.g. for `accuracy`."""
    from keras_tl.scores.task_metrics import HIGHER_IS_BETTER

    unit = UNITS.get(metric, "metric units")
    direction = {True: ", higher is better", False: ", lower is better"}.get(
        HIGHER_IS_BETTER.get(metric), ""
    )
    return f"{prefix} {metric} ({unit}{direction})".strip()


# ---------------------------------------------------------------------------
# Reading the results.


def summary_of(results):
    """The summary of `Results` or its dict."""
    return results["summary"] if isinstance(results, dict) else results.summary


def context_of(results):
    """The run's context (transferable layers, notes) of `Results` or its dict."""
    return (results.get("context") if isinstance(results, dict) else results.context) or {}


def train_sizes(summary):
    """Distinct requested train sizes, in the order the run lists them."""
    return list(dict.fromkeys(c["train_size"] for c in summary.get("conditions") or []))


def samples_text(condition_or_row):
    """The number of target samples of a condition (the requested size if unknown)."""
    samples = condition_or_row.get("num_samples")
    return f"{samples if samples is not None else condition_or_row['train_size']}"


# ---------------------------------------------------------------------------
# Drawing.


def new_figure(width, height):
    """A figure of `width` x `height` inches on the Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_png(figure, path):
    """Saves a figure as PNG through a temporary file and a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".png")
    os.close(handle)
    try:
        figure.savefig(temporary, format="png", facecolor="white")
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def arm_of_label(summary):
    """The arm of each condition label."""
    return {c["label"]: c["arm"] for c in summary.get("conditions") or []}


def variant_indices(labels, arms):
    """Variant index of each label among the labels of the same arm."""
    seen, variants = {}, {}
    for label in labels:
        arm = arms.get(label, label)
        variants[label] = seen.get(arm, 0)
        seen[arm] = variants[label] + 1
    return variants


def clip_to_range(axes, metric):
    """Keeps a bounded metric's axis inside its range (t intervals can cross 1)."""
    if metric in ("accuracy", "auc"):
        low, high = axes.get_ylim()
        axes.set_ylim(max(low, -0.02), min(high, 1.02))


def draw_band(axes, xs, lows, highs, color):
    """A shaded 95% CI band through the points that have both bounds."""
    pairs = [
        (x, low, high) for x, low, high in zip(xs, lows, highs)
        if low is not None and high is not None
    ]
    if len(pairs) >= 2:
        axes.fill_between(
            [p[0] for p in pairs], [p[1] for p in pairs], [p[2] for p in pairs],
            color=color, alpha=0.15, linewidth=0,
        )


def interval_error(points):
    """Matplotlib error-bar extents from stored CI bounds (zero where undefined)."""
    below = [p["mean"] - p["ci_low"] if p.get("ci_low") is not None else 0.0 for p in points]
    above = [p["ci_high"] - p["mean"] if p.get("ci_high") is not None else 0.0 for p in points]
    return [below, above]


def p_text(value):
    """A p-value as text: three decimals, `< 0.001` below that."""
    if value is None:
        return "-"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def figure_with_axes(width, height):
    """A figure with one axes."""
    figure = new_figure(width, height)
    return figure, figure.add_subplot()


def figure_with_panels(count, columns, panel, margin):
    """A figure of `count` panels, `columns` to a row, all sharing one y axis.

    `panel` is one panel's (width, height) and `margin` what the figure adds to
    their sum, in inches. Returns the figure and the list of panel axes.
    """
    rows = -(-count // columns)
    figure = new_figure(panel[0] * columns + margin[0], panel[1] * rows + margin[1])
    first, panels = None, []
    for index in range(count):
        axes = figure.add_subplot(rows, columns, index + 1, sharey=first)
        first = first or axes
        panels.append(axes)
    return figure, panels


def figure_title(figure, text):
    figure.suptitle(text, fontsize=11, x=0.02, horizontalalignment="left")


def draw_grid(axes, **where):
    """A light grid behind the data."""
    axes.grid(color="#e5e5e5", linewidth=0.6, **where)


def draw_curve(axes, xs, points, label, style):
    """One curve of means with its 95% CI band."""
    axes.plot(xs, [p["mean"] for p in points], label=label, linewidth=1.8, markersize=7,
              **style)
    draw_band(axes, xs, [p.get("ci_low") for p in points],
          [p.get("ci_high") for p in points], style["color"])


def error_bar_style():
    """The error bars' style of bar charts."""
    return {"ecolor": "#333333", "capsize": 3, "elinewidth": 1}


def draw_plot(results, path, find, draw):
    """Draws one plot: `find(summary)` gives its data (`None`: no plot, returns
    `None`), `draw(results, summary, data, primary_metric)` its figure, saved to
    `path`."""
    summary = summary_of(results)
    data = find(summary)
    if data is None:
        return None
    metric = summary.get("primary_metric", "metric")
    return save_png(draw(results, summary, data, metric), path)
