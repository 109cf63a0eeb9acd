"""The report's plots, drawn with matplotlib into PNG files.

One function per plot; each takes the results (a `Results` or its dict) and an
output path, and returns the path, or `None` when the run has no data for that
plot. Plots only draw what `Results.summary` holds: they never compute statistics.

The plots live by family: gains and scores (`keras_tl.report.plot_gains`),
freeze-depth and learning curves (`keras_tl.report.plot_curves`), source retention
and CKA (`keras_tl.report.plot_source`); what they share, `arm_style` among it, is
in `keras_tl.report.figures`. This module lists them (`PLOTS`) and draws them all
(`draw_plots`); every name keeps its import path `keras_tl.report.plots`.
"""

import os

from keras_tl.report.figures import (  # noqa: F401 (re-exported)
    PLOT_TITLES,
    arm_style,
    metric_label,
    summary_of,
)
from keras_tl.report.plot_curves import (  # noqa: F401 (depth_curves re-exported)
    depth_curves,
    depth_data,
    learning_data,
    plot_freeze_depth,
    plot_learning_curves,
)
from keras_tl.report.plot_gains import gains_data, plot_gains, plot_scores, scores_data
from keras_tl.report.plot_source import cka_data, plot_cka, plot_retention, retention_data

__all__ = [
    "arm_style", "available_plots", "draw_plots", "plot_gains", "plot_freeze_depth",
    "plot_learning_curves", "plot_retention", "plot_scores", "plot_cka", "PLOTS",
]


PLOTS = {
    "gains": plot_gains,
    "freeze_depth": plot_freeze_depth,
    "learning_curves": plot_learning_curves,
    "retention": plot_retention,
    "scores": plot_scores,
    "cka": plot_cka,
}


def available_plots(results):
    """Names of the plots this run has data for, in report order.

    Args:
        results: `Results` or its dict.

    Returns:
        list of str, a subset of `PLOTS`.
    """
    summary = summary_of(results)
    checks = {
        "gains": gains_data,
        "freeze_depth": depth_data,
        "learning_curves": learning_data,
        "retention": retention_data,
        "scores": scores_data,
        "cka": cka_data,
    }
    return [name for name in PLOTS if checks[name](summary)]


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
