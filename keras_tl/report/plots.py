"""The report's plots, drawn with matplotlib into PNG files.

One function per plot; each takes the results (a `Results` or its dict) and an
output path, and returns the path, or `None` when the run has no data for that
plot. Plots only draw what `Results.summary` holds: they never compute statistics.

Every arm has one colour, marker and line style (`arm_style`), the same in every
plot, chosen so that plots stay readable in grayscale. Figures are made with
`matplotlib.figure.Figure` and the Agg canvas, never through `pyplot`: no display
is needed and the caller's matplotlib backend is left alone.
"""

import os
import tempfile
import zlib

__all__ = [
    "arm_style", "available_plots", "draw_plots", "plot_gains", "plot_freeze_depth",
    "plot_learning_curves", "plot_retention", "plot_scores", "plot_cka", "PLOTS",
]

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

_UNITS = {
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

    unit = _UNITS.get(metric, "metric units")
    direction = {True: ", higher is better", False: ", lower is better"}.get(
        HIGHER_IS_BETTER.get(metric), ""
    )
    return f"{prefix} {metric} ({unit}{direction})".strip()


# ---------------------------------------------------------------------------
# What each plot needs from the summary (None when the run has none of it).


def _summary(results):
    return results["summary"] if isinstance(results, dict) else results.summary


def _context(results):
    return (results.get("context") if isinstance(results, dict) else results.context) or {}


def _sizes(summary):
    """Distinct requested train sizes, in the order the run lists them."""
    return list(dict.fromkeys(c["train_size"] for c in summary.get("conditions") or []))


def _size_text(condition_or_row):
    samples = condition_or_row.get("num_samples")
    return f"{samples if samples is not None else condition_or_row['train_size']}"


def _gain_rows(summary):
    rows = [g for g in summary.get("gains") or [] if g.get("label")]
    return rows or None


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


def _depth_data(summary):
    curves = [curve for curve in depth_curves(summary) if len(curve["points"]) >= 2]
    return curves or None


def _learning_data(summary):
    curves = (summary.get("curves") or {}).get("train_size") or {}
    curves = {label: points for label, points in curves.items() if len(points) >= 2}
    return curves or None


def _retention_data(summary):
    return summary.get("retention") or None


def _scores_data(summary):
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


def _cka_data(summary):
    rows = [row for row in summary.get("cka") or [] if row.get("layers")]
    return rows or None


def available_plots(results):
    """Names of the plots this run has data for, in report order.

    Args:
        results: `Results` or its dict.

    Returns:
        list of str, a subset of `PLOTS`.
    """
    summary = _summary(results)
    checks = {
        "gains": _gain_rows,
        "freeze_depth": _depth_data,
        "learning_curves": _learning_data,
        "retention": _retention_data,
        "scores": _scores_data,
        "cka": _cka_data,
    }
    return [name for name in PLOTS if checks[name](summary)]


# ---------------------------------------------------------------------------
# Drawing.


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path):
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


def _arm_of_label(summary):
    return {c["label"]: c["arm"] for c in summary.get("conditions") or []}


def _variants(labels, arms):
    """Variant index of each label among the labels of the same arm."""
    seen, variants = {}, {}
    for label in labels:
        arm = arms.get(label, label)
        variants[label] = seen.get(arm, 0)
        seen[arm] = variants[label] + 1
    return variants


def _clip_to_range(axes, metric):
    """Keeps a bounded metric's axis inside its range (t intervals can cross 1)."""
    if metric in ("accuracy", "auc"):
        low, high = axes.get_ylim()
        axes.set_ylim(max(low, -0.02), min(high, 1.02))


def _band(axes, xs, lows, highs, color):
    pairs = [
        (x, low, high) for x, low, high in zip(xs, lows, highs)
        if low is not None and high is not None
    ]
    if len(pairs) >= 2:
        axes.fill_between(
            [p[0] for p in pairs], [p[1] for p in pairs], [p[2] for p in pairs],
            color=color, alpha=0.15, linewidth=0,
        )


def _interval_error(points):
    """Matplotlib error-bar extents from stored CI bounds (zero where undefined)."""
    below = [p["mean"] - p["ci_low"] if p.get("ci_low") is not None else 0.0 for p in points]
    above = [p["ci_high"] - p["mean"] if p.get("ci_high") is not None else 0.0 for p in points]
    return [below, above]


def _p_text(value):
    if value is None:
        return "-"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _figure_with_axes(width, height):
    """A figure with one axes."""
    figure = _figure(width, height)
    return figure, figure.add_subplot()


def _panels(count, columns, panel, margin):
    """A figure of `count` panels, `columns` to a row, all sharing one y axis.

    `panel` is one panel's (width, height) and `margin` what the figure adds to
    their sum, in inches. Returns the figure and the list of panel axes.
    """
    rows = -(-count // columns)
    figure = _figure(panel[0] * columns + margin[0], panel[1] * rows + margin[1])
    first, panels = None, []
    for index in range(count):
        axes = figure.add_subplot(rows, columns, index + 1, sharey=first)
        first = first or axes
        panels.append(axes)
    return figure, panels


def _figure_title(figure, text):
    figure.suptitle(text, fontsize=11, x=0.02, horizontalalignment="left")


def _grid(axes, **where):
    axes.grid(color="#e5e5e5", linewidth=0.6, **where)


def _curve(axes, xs, points, label, style):
    """One curve of means with its 95% CI band."""
    axes.plot(xs, [p["mean"] for p in points], label=label, linewidth=1.8, markersize=7,
              **style)
    _band(axes, xs, [p.get("ci_low") for p in points],
          [p.get("ci_high") for p in points], style["color"])


def _error_bars():
    return {"ecolor": "#333333", "capsize": 3, "elinewidth": 1}


def _draw(results, path, find, draw):
    """Draws one plot: `find(summary)` gives its data (`None`: no plot, returns
    `None`), `draw(results, summary, data, primary_metric)` its figure, saved to
    `path`."""
    summary = _summary(results)
    data = find(summary)
    if data is None:
        return None
    metric = summary.get("primary_metric", "metric")
    return _save(draw(results, summary, data, metric), path)


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
    return _draw(results, path, _gain_rows, _draw_gains)


def _draw_gains(results, summary, rows, metric):
    several_sizes = len(_sizes(summary)) > 1
    labels = [
        g["label"] + (f"  (n={_size_text(g)})" if several_sizes else "") for g in rows
    ]
    figure, axes = _figure_with_axes(8.5, 1.3 + 0.42 * len(rows))
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
        error = _interval_error([gain])
        axes.errorbar(
            [gain["mean"]], [y], xerr=error, fmt=style["marker"], color=style["color"],
            markerfacecolor=style["markerfacecolor"], markeredgecolor=style["color"],
            markersize=7, capsize=4, elinewidth=1.6, zorder=3,
            label=gain["arm"] if gain["arm"] not in seen_arms else None,
        )
        seen_arms.add(gain["arm"])
        axes.annotate(
            f"{gain.get('verdict', '')}, p(Holm) {_p_text(gain.get('p_value_adjusted'))}",
            (1.0, y), xycoords=("axes fraction", "data"), xytext=(6, 0),
            textcoords="offset points", va="center", fontsize=8,
        )
    axes.set_yticks(range(len(rows)), labels[::-1])
    axes.set_ylim(-0.7, len(rows) - 0.3)
    axes.set_xlabel(
        f"gain in test {metric} vs scratch ({_UNITS.get(metric, 'metric units')}; "
        "> 0 = transfer helped)"
    )
    axes.set_title(PLOT_TITLES["gains"], loc="left", fontsize=11)
    axes.grid(axis="x", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    if seen_arms:
        axes.legend(loc="lower left", fontsize=8, frameon=True)
    return figure


def _same_size(a, b):
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
    return _draw(results, path, _depth_data, _draw_freeze_depth)


def _draw_freeze_depth(results, summary, curves, metric):
    sizes = list(dict.fromkeys(str(curve["train_size"]) for curve in curves))
    columns = min(len(sizes), 3)
    figure, panels = _panels(len(sizes), columns, (4.6, 3.8), (1.0, 0.0))
    layers = _context(results).get("transferable") or []
    for index, (size, axes) in enumerate(zip(sizes, panels)):
        members = [curve for curve in curves if str(curve["train_size"]) == size]
        labels = [f"{curve['arm']}|{curve.get('source')}" for curve in members]
        arms = {label: curve["arm"] for label, curve in zip(labels, members)}
        variants = _variants(labels, arms)
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
            _curve(axes, [p["freeze_depth"] for p in points], points, name,
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
        _grid(axes)
        axes.legend(fontsize=8, loc="best")
        _clip_to_range(axes, metric)
    _figure_title(figure, PLOT_TITLES["freeze_depth"] + " (95% CI bands)")
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
    return _draw(results, path, _learning_data, _draw_learning_curves)


def _draw_learning_curves(results, summary, curves, metric):
    from matplotlib.ticker import NullFormatter

    arms = _arm_of_label(summary)
    variants = _variants(list(curves), arms)
    figure, axes = _figure_with_axes(8.0, 4.8)
    sizes = sorted({p["train_size"] for points in curves.values() for p in points})
    for label, points in curves.items():
        _curve(axes, [p["train_size"] for p in points], points, label,
               arm_style(arms.get(label, label), variants[label]))
    axes.set_xscale("log")
    axes.set_xticks(sizes, [str(size) for size in sizes])
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("target training samples (log scale)")
    axes.set_ylabel(metric_label(metric))
    axes.set_title(PLOT_TITLES["learning_curves"] + " (95% CI bands)", loc="left", fontsize=11)
    _grid(axes, which="major")
    axes.legend(fontsize=8, loc="best")
    _clip_to_range(axes, metric)
    return figure


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
    return _draw(results, path, _retention_data, _draw_retention)


def _draw_retention(results, summary, rows, _primary_metric):
    from matplotlib.patches import Patch

    metric = rows[0].get("metric", "metric")
    several_sizes = len({row["train_size"] for row in rows}) > 1
    labels = [
        row["label"] + (f"  (n={row['train_size']})" if several_sizes else "") for row in rows
    ]
    height = 1.4 + 0.5 * len(rows)
    figure = _figure(10.0, height)
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
                hatch=hatch, linewidth=1.2, xerr=_interval_error([value]),
                error_kw=_error_bars(),
            )
        value = row["forgetting"]
        right.barh(
            y, value["mean"], height=0.6, color=style["color"], edgecolor="#333333",
            linewidth=0.8, xerr=_interval_error([value]), error_kw=_error_bars(),
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
        f"forgetting ({_UNITS.get(metric, 'metric units')}; > 0 = source task got worse)"
    )
    right.set_title("Forgetting (95% CI)", loc="left", fontsize=10)
    for axes in (left, right):
        _grid(axes, axis="x")
        axes.set_axisbelow(True)
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
    return _draw(results, path, _scores_data, _draw_scores)


def _draw_scores(results, summary, names, metric):
    conditions = [
        c for c in summary["conditions"] if c["arm"] != "scratch" and metric in c.get("test", {})
    ]
    agreement = summary.get("rank_agreement") or []
    several_sizes = len(_sizes(summary)) > 1
    columns = min(len(names), 2 if len(names) <= 4 else 3)
    figure, panels = _panels(len(names), columns, (4.4, 3.3), (0.6, 0.8))
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
        _grid(axes)
    figure.legend(
        list(arms_seen.values()), list(arms_seen), loc="outside lower center",
        ncols=max(1, len(arms_seen)), fontsize=8,
    )
    _figure_title(figure, PLOT_TITLES["scores"] + " (Kendall tau over all conditions)")
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
    return _draw(results, path, _cka_data, _draw_cka)


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
    figure, axes = _figure_with_axes(2.4 + 1.15 * len(layers) + 2.2, 1.6 + 0.42 * len(rows))
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


PLOTS = {
    "gains": plot_gains,
    "freeze_depth": plot_freeze_depth,
    "learning_curves": plot_learning_curves,
    "retention": plot_retention,
    "scores": plot_scores,
    "cka": plot_cka,
}


def draw_plots(results, folder):
    """Draws every plot the run has data for into `folder` as `<name>.png`.

    A stale PNG of a plot the run has no data for is removed, so the folder
    matches the run.

    Args:
        results: `Results` or its dict.
        folder: str. Created when missing.

    Returns:
        A dict of plot name to the PNG path, for the plots drawn.

    Example:

    >>> draw_plots(keras_tl.Results.from_folder("runs/parity"), "runs/parity/plots")
    {'gains': 'runs/parity/plots/gains.png', ...}
    """
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for name, function in PLOTS.items():
        path = os.path.join(folder, f"{name}.png")
        drawn = function(results, path)
        if drawn:
            paths[name] = drawn
        elif os.path.exists(path):
            os.remove(path)
    return paths
