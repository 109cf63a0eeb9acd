"""The report's building blocks: `Report`, `Section`, `Table`, and number formatting.

Every section module (`keras_tl.report.verdict`, `keras_tl.report.tables`,
`keras_tl.report.appendix`) builds its blocks from these, so a number reads the
same everywhere in the report. Formatting only: nothing is computed here.
"""

import dataclasses

# How a data-efficiency row's bound prefixes its numbers.
_BOUNDS = {"=": "", "<=": "≤ ", ">": "> ", None: ""}


DIGITS = 3


@dataclasses.dataclass
class Table:
    """A table of formatted cells; `name` is its stable id (`<table id>` in HTML)."""

    name: str
    header: list
    rows: list


@dataclasses.dataclass
class Section:
    """A titled part of the report: an ordered list of blocks.

    A block is a `Table`, a str (a paragraph with `**bold**` and `` `code` ``
    markup), `("image", plot_name, alt_text)` or `("details", summary, code_text)`.
    """

    title: str
    name: str
    blocks: list


@dataclasses.dataclass
class Report:
    """The whole report: title, subtitle, verdict lines (headline first) and sections."""

    title: str
    subtitle: str
    verdict: list
    verdict_kind: str
    sections: list


def format_number(value, digits=DIGITS, signed=False):
    """Formats a number for the report: `-` for missing, fixed decimals otherwise."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) and not signed:
        return str(value)
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def format_p(value):
    """Formats a p-value: three decimals, `< 0.001` below that."""
    if value is None:
        return "-"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def format_interval(summary, signed=False):
    """`mean [ci_low, ci_high]` of a stored summary (just the mean when n = 1)."""
    if not summary or summary.get("mean") is None:
        return "-"
    mean = format_number(summary["mean"], signed=signed)
    if summary.get("ci_low") is None or summary.get("ci_high") is None:
        return mean
    low = format_number(summary["ci_low"], signed=signed)
    high = format_number(summary["ci_high"], signed=signed)
    return f"{mean} [{low}, {high}]"


def samples_text(entry):
    """The number of target samples of a condition (the requested size if unknown)."""
    samples = entry.get("num_samples")
    return str(samples if samples is not None else entry["train_size"])


def ratio_text(row):
    """A data-efficiency row's data ratio, e.g. `≤ 0.50x` (`-` when unknown)."""
    if row.get("data_ratio") is None:
        return "-"
    return f"{_BOUNDS.get(row.get('bound'), '')}{row['data_ratio']:.2f}x"


def scratch_size_text(row):
    """The scratch train size that matches a data-efficiency row, e.g. `> 40.0`."""
    if row.get("scratch_size") is None:
        return "-"
    return f"{_BOUNDS.get(row.get('bound'), '')}{row['scratch_size']:.1f}"


def source_names(config):
    """The source task names of a resolved config (one or several sources)."""
    sources = config.get("sources")
    if sources:
        return [s.get("name") or s.get("task") for s in sources]
    source = config.get("source") or {}
    return [source.get("task", "?")]


def has_several(values):
    """Whether `values` holds two or more distinct values."""
    return len(set(values)) > 1

