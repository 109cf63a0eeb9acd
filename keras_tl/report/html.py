"""The report as one self-contained HTML file.

The same content as the Markdown report (`keras_tl.report.markdown.report_sections`)
plus the table of every trial. Plots are inlined as base64 PNG data URIs and the
style sheet is inline: the file opens anywhere, offline, without JavaScript.
"""

import base64
import html
import os
import re

from keras_tl.report.content import Table, report_sections
from keras_tl.report.markdown import numeric_columns

__all__ = ["render_html"]

_STYLE = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f7f9; color: #1d2329;
  font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "DejaVu Sans", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #e3e6ea; }
.subtitle { color: #59636e; margin: 0 0 16px; }
.verdict { border-left: 6px solid #6b7280; background: #f1f3f5; padding: 12px 16px;
  margin: 0 0 12px; font-size: 16px; }
.verdict p { margin: 4px 0; }
.verdict p:first-child { font-size: 16.5px; }
.verdict.positive { border-color: #1a7f37; background: #e9f7ee; }
.verdict.negative { border-color: #c62828; background: #fdecec; }
.verdict.inconclusive { border-color: #9a6700; background: #fff8e5; }
nav { font-size: 13px; color: #59636e; margin: 0 0 8px; }
nav a { color: #0b5cad; margin-right: 12px; text-decoration: none; }
p { margin: 8px 0; max-width: 78em; }
code { font: 13px/1.4 "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace;
  background: #eef1f4; padding: 1px 4px; border-radius: 3px; }
.table-wrap { overflow-x: auto; margin: 10px 0 14px; }
table { border-collapse: collapse; font-size: 13.5px; }
th, td { border: 1px solid #d5dae0; padding: 4px 9px; vertical-align: top; }
th { background: #eef1f4; text-align: left; font-weight: 600; }
th.number { text-align: right; }
tbody tr:nth-child(even) { background: #f8f9fb; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.positive { color: #1a7f37; font-weight: 600; }
td.negative { color: #c62828; font-weight: 600; }
td.failed { color: #c62828; }
figure { margin: 12px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6ea; }
figcaption { font-size: 13px; color: #59636e; }
details { margin: 10px 0; }
summary { cursor: pointer; color: #0b5cad; }
pre { background: #f6f8fa; border: 1px solid #e3e6ea; padding: 10px; overflow-x: auto;
  font-size: 12.5px; }
@media print { body { background: #fff; } main { max-width: none; } }
"""

_VERDICTS = ("positive", "negative", "inconclusive")
_NUMBER_CLASS = ' class="number"'


def _inline(text):
    """Escapes text, then turns `**bold**` and `` `code` `` markup into tags."""
    text = html.escape(str(text), quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def _cell_class(column, cell, numeric):
    classes = []
    if numeric:
        classes.append("number")
    if column == "verdict" and cell in _VERDICTS[:2]:
        classes.append(cell)
    if column == "status" and cell != "ok":
        classes.append("failed")
    return f' class="{" ".join(classes)}"' if classes else ""


def html_table(table):
    """A `Table` as an HTML table with `id` = the table's name."""
    numeric = numeric_columns(table)
    head = "".join(
        f"<th{_NUMBER_CLASS if n else ''}>{html.escape(str(h))}</th>"
        for h, n in zip(table.header, numeric)
    )
    body = "\n".join(
        "<tr>" + "".join(
            f"<td{_cell_class(column, cell, n)}>{html.escape(str(cell))}</td>"
            for column, cell, n in zip(table.header, row, numeric)
        ) + "</tr>"
        for row in table.rows
    )
    return (f'<div class="table-wrap"><table id="{html.escape(table.name)}">'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table></div>")


def _image(path, alt):
    with open(path, "rb") as file:
        data = base64.b64encode(file.read()).decode("ascii")
    return (f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(alt)}</figcaption></figure>")


def render_html(results, plot_paths):
    """Renders the report as one self-contained HTML page.

    Args:
        results: `Results` or its dict.
        plot_paths: dict. Plot name to PNG path (as returned by
            `keras_tl.report.plots.draw_plots`); plots missing from it are left
            out. The PNGs are embedded as data URIs.

    Returns:
        str. The HTML document (inline CSS, no scripts, no external URLs).

    Example:

    >>> results = keras_tl.Results.from_folder("runs/parity")
    >>> page = render_html(results, draw_plots(results, "runs/parity/plots"))
    """
    plot_paths = plot_paths or {}
    report = report_sections(results, include_trials=True)
    verdict_class = report.verdict_kind if report.verdict_kind in _VERDICTS else ""
    nav = " ".join(
        f'<a href="#section-{html.escape(s.name)}">{html.escape(s.title)}</a>'
        for s in report.sections
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(report.title)}</title>",
        f"<style>{_STYLE}</style></head><body><main>",
        f"<h1>{html.escape(report.title)}</h1>",
        f'<p class="subtitle">{html.escape(report.subtitle)}</p>',
        f'<div class="verdict {verdict_class}" id="verdict">'
        + "".join(f"<p>{_inline(line)}</p>" for line in report.verdict) + "</div>",
        f"<nav>{nav}</nav>",
    ]
    for section in report.sections:
        parts.append(f'<section id="section-{html.escape(section.name)}">'
                     f"<h2>{html.escape(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Table):
                parts.append(html_table(block))
            elif isinstance(block, tuple) and block[0] == "image":
                _, name, alt = block
                path = plot_paths.get(name)
                if path and os.path.isfile(path):
                    parts.append(_image(path, alt))
            elif isinstance(block, tuple) and block[0] == "details":
                _, title, code = block
                parts.append(f"<details><summary>{html.escape(title)}</summary>"
                             f"<pre>{html.escape(code)}</pre></details>")
            else:
                parts.append(f"<p>{_inline(block)}</p>")
        parts.append("</section>")
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"
