"""The report's content: `report_sections` puts the report together.

`report_sections` turns `Results` into a `Report`: the verdict
(`keras_tl.report.verdict`), the result sections (`keras_tl.report.tables`) and the
closing sections (`keras_tl.report.appendix`: other summary keys, notes, failures,
trials, provenance), each built from the blocks and number formatting of
`keras_tl.report.blocks`. `keras_tl.report.markdown` writes it as Markdown and
`keras_tl.report.html` as HTML, so both show the same numbers. Formatting only:
every number comes from `Results.summary` (or the trial records), rounded for
display, and nothing is computed here.

Summary sections the report does not know (added by later versions of
`results.py`) are still shown, as generic tables, so no result goes unreported.
"""

from keras_tl.report import plots
from keras_tl.report.appendix import (
    extra_sections,
    failures_section,
    notes_section,
    provenance_section,
    trials_section,
)

# `Table`, `Section`, `Report` and the `format_*` helpers keep their old import
# path, `keras_tl.report.content`.
from keras_tl.report.blocks import (  # noqa: F401
    DIGITS,
    Report,
    Section,
    Table,
    format_interval,
    format_number,
    format_p,
    source_names,
)
from keras_tl.report.tables import (
    cka_section,
    conditions_section,
    efficiency_section,
    freeze_section,
    fusion_section,
    control_section,
    gains_section,
    retention_section,
    scores_section,
    search_section,
    stream_section,
)
from keras_tl.report.text import seeds_text
from keras_tl.report.verdict import verdict_lines

__all__ = ["report_sections", "Report", "Section", "Table"]


def _parts(results):
    """(config, context, provenance, summary, trials, schema version) of the results."""
    if isinstance(results, dict):
        return (results.get("config") or {}, results.get("context") or {},
                results.get("provenance") or {}, results["summary"],
                results.get("trials") or [], results.get("schema_version"))
    from keras_tl.results.results import SCHEMA_VERSION

    return (results.config, results.context, results.provenance, results.summary,
            results.trials, SCHEMA_VERSION)


def report_sections(results, include_trials=False):
    """Builds the report's content: verdict, tables and plot references.

    Args:
        results: `Results` or its dict (as loaded from `results.json`).
        include_trials: bool. Add the table of every trial (the HTML report does).

    Returns:
        A `Report` (title, subtitle, verdict, sections of tables and images).

    Example:

    >>> report = report_sections(keras_tl.Results.from_folder("runs/parity"))
    >>> [section.name for section in report.sections][:2]
    ['gains', 'conditions']
    """
    config, context, provenance, summary, trials, schema_version = _parts(results)
    images = set(plots.available_plots(results))
    verdict, kind = verdict_lines(summary)
    target = (config.get("target") or {}).get("task", "?")
    seeds = provenance.get("seeds") or config.get("seeds") or []
    subtitle = (
        f"{', '.join(str(n) for n in source_names(config))} -> {target} on "
        f"{provenance.get('backend', '?')}, {seeds_text(summary, seeds)}, "
        f"{format_number(summary.get('num_trials'))} trials "
        f"({format_number(summary.get('num_failed'))} failed)"
    )
    sections = [
        gains_section(summary, images),
        control_section(summary),
        conditions_section(summary),
        freeze_section(summary, context, images),
        efficiency_section(summary, images),
        retention_section(summary, images),
        scores_section(summary, images),
        fusion_section(summary),
        stream_section(summary),
        cka_section(summary, images),
        search_section(summary),
        *extra_sections(summary),
        notes_section(context),
        failures_section(summary),
        trials_section(summary, trials) if include_trials else None,
        provenance_section(config, context, provenance, summary, schema_version),
    ]
    return Report(
        title=f"keras-tl report: {config.get('name', 'experiment')}",
        subtitle=subtitle,
        verdict=verdict,
        verdict_kind=kind,
        sections=[s for s in sections if s is not None],
    )
