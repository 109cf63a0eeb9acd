"""Reports of a run: HTML, Markdown, plots, and runs side by side.

Formatting only: every number comes from `Results.summary`.
"""

import os

__all__ = ["write_reports", "compare_runs"]

FORMATS = ("html", "md", "json", "csv")


def _as_results(results):
    from keras_tl.results.results import Results

    return Results.from_dict(results) if isinstance(results, dict) else results


def write_reports(results, folder, formats=("html", "md")):
    """Writes the run's reports into `folder`, each file atomically.

    Plots go to `folder/plots/<name>.png`; `report.html` is self-contained and
    `report.md` references the PNGs. `"json"` and `"csv"` rewrite `results.json`
    and `trials.csv`. Nothing is recomputed: the reports format `results`.

    Args:
        results: `Results` or its dict (e.g. `Results.from_folder(folder)`).
        folder: str. The run folder.
        formats: sequence of str. Any of `"html"`, `"md"`, `"json"`, `"csv"`.

    Returns:
        A dict of format to the path written.

    Example:

    >>> from keras_tl.report import write_reports
    >>> write_reports(keras_tl.Results.from_folder("runs/parity"), "runs/parity")
    {'html': 'runs/parity/report.html', 'md': 'runs/parity/report.md'}
    """
    from keras_tl.errors import ConfigError
    from keras_tl.store import write_atomic

    formats = list(dict.fromkeys(formats))
    unknown = [name for name in formats if name not in FORMATS]
    if unknown or not formats:
        raise ConfigError(
            f"Unknown report format. Expected one or more of {', '.join(FORMATS)}. "
            f"Received: formats={list(formats)!r}"
        )
    results = _as_results(results)
    os.makedirs(folder, exist_ok=True)
    written = {}
    plot_paths = {}
    if "html" in formats or "md" in formats:
        from keras_tl.report.plots import draw_plots

        plot_paths = draw_plots(results, os.path.join(folder, "plots"))
    if "html" in formats:
        from keras_tl.report.html import render_html

        written["html"] = os.path.join(folder, "report.html")
        write_atomic(written["html"], render_html(results, plot_paths))
    if "md" in formats:
        from keras_tl.report.markdown import render_markdown

        written["md"] = os.path.join(folder, "report.md")
        write_atomic(written["md"], render_markdown(results, "plots"))
    if "json" in formats or "csv" in formats:
        results.write(folder)
        if "json" in formats:
            written["json"] = os.path.join(folder, "results.json")
        if "csv" in formats:
            written["csv"] = os.path.join(folder, "trials.csv")
    return written


def _overlap(intervals):
    """Whether every pair of `(low, high)` intervals overlaps."""
    return max(low for low, _ in intervals) <= min(high for _, high in intervals)


def compare_runs(folders):
    """Puts several runs side by side: per condition, mean [95% CI] per run.

    Meant for the same experiment on several backends (or machines). A row is
    flagged with `*` when the 95% CIs of its runs do not all overlap; rows
    where a run has no interval (one seed) are not judged.

    Args:
        folders: sequence of str. Run folders, each holding `results.json`.

    Returns:
        str. A text table (columns = runs, labelled by backend and folder name)
        and a line explaining the flag.

    Example:

    >>> from keras_tl.report import compare_runs
    >>> print(compare_runs(["runs/parity-torch", "runs/parity-jax"]))
    """
    from keras_tl.errors import StoreError
    from keras_tl.report.content import format_interval
    from keras_tl.report.text import format_table
    from keras_tl.results.results import Results

    folders = list(folders)
    if not folders:
        raise StoreError("compare needs at least one run folder. Received none.")
    runs = []
    for folder in folders:
        path = os.path.join(folder, "results.json")
        if not os.path.isfile(path):
            raise StoreError(
                f"No results.json in {folder!r}. Expected a run folder written by "
                "`keras-tl evaluate --out FOLDER`; run `keras-tl report FOLDER` to "
                "rebuild it from the store."
            )
        runs.append(Results.from_folder(folder))
    metrics = list(dict.fromkeys(run.summary["primary_metric"] for run in runs))
    metric = metrics[0]
    names = list(dict.fromkeys(str(run.config.get("name")) for run in runs))
    several_sizes = len({c["train_size"] for run in runs for c in run.summary["conditions"]}) > 1
    rows = {}
    for index, run in enumerate(runs):
        for c in run.summary["conditions"]:
            label = c["label"] + (f" (n={c['num_samples'] or c['train_size']})"
                                  if several_sizes else "")
            rows.setdefault(label, [None] * len(runs))[index] = c["test"].get(metric)
    header = ["condition"] + [
        f"{run.provenance.get('backend', '?')}:{os.path.basename(os.path.normpath(folder))}"
        for run, folder in zip(runs, folders)
    ]
    table, num_flagged = [], 0
    for label, values in rows.items():
        intervals = [
            (v["ci_low"], v["ci_high"]) for v in values
            if v and v.get("ci_low") is not None and v.get("ci_high") is not None
        ]
        judged = len(intervals) == len(values) and len(values) > 1
        flagged = judged and not _overlap(intervals)
        num_flagged += flagged
        table.append([label + (" *" if flagged else "")] + [format_interval(v) for v in values])
    lines = [
        f"test {metric}: mean [95% CI] per run"
        + (f" (runs differ in primary metric: {', '.join(metrics)})" if len(metrics) > 1 else "")
        + (f" (note: different experiments: {', '.join(names)})" if len(names) > 1 else ""),
        "",
        format_table(header, table),
        "",
        f"* = the runs' 95% CIs do not all overlap ({num_flagged} of {len(table)} "
        "conditions): they disagree by more than seed-to-seed noise explains; check "
        "the backends' numerics and that the configs match. '-' = no result in that run.",
    ]
    return "\n".join(lines)
