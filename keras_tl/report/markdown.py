"""The report as GitHub-flavoured Markdown (content from `keras_tl.report.content`)."""

from keras_tl.report.content import Table, report_sections


def _escape(cell):
    return str(cell).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def numeric_columns(table):
    """Which columns hold numbers (right-aligned): all cells numeric or missing."""
    columns = []
    for index in range(len(table.header)):
        cells = [str(row[index]).strip() for row in table.rows]
        present = [cell for cell in cells if cell not in ("-", "")]
        columns.append(bool(present) and all(_looks_numeric(cell) for cell in present))
    return columns


def markdown_table(table):
    """A `Table` as a GitHub-flavoured Markdown table, preceded by its id comment."""
    numeric = numeric_columns(table)
    lines = [
        f"<!-- table: {table.name} -->",
        "| " + " | ".join(_escape(h) for h in table.header) + " |",
        "|" + "|".join("---:" if n else "---" for n in numeric) + "|",
    ]
    lines += ["| " + " | ".join(_escape(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _looks_numeric(cell):
    text = str(cell).strip().lstrip("+-<>≤ ")
    return bool(text) and text[0].isdigit() and not any(c.isalpha() and c != "x" for c in text)


def render_markdown(results, plots_folder_name="plots"):
    """Renders the report as GitHub-flavoured Markdown.

    The verdict comes first (best condition, gain with CI, Holm-adjusted p,
    verdict, best freeze depth, data efficiency), then tables of gains,
    per-condition metrics, best freeze depth, data efficiency, retention,
    transferability scores, failures and provenance. Plots are referenced as
    `<plots_folder_name>/<name>.png`, only those the run has data for
    (`keras_tl.report.plots.available_plots`).

    Args:
        results: `Results` or its dict.
        plots_folder_name: str. Folder of the PNGs, relative to the Markdown file.

    Returns:
        str. The Markdown text.

    Example:

    >>> text = render_markdown(keras_tl.Results.from_folder("runs/parity"))
    >>> text.splitlines()[0]
    '# keras-tl report: parity'
    """
    report = report_sections(results)
    lines = [f"# {report.title}", "", f"_{report.subtitle}_", ""]
    for index, line in enumerate(report.verdict):
        lines += ([">"] if index else []) + [f"> {line}"]
    lines.append("")
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Table):
                lines += [markdown_table(block), ""]
            elif isinstance(block, tuple) and block[0] == "image":
                _, name, alt = block
                lines += [f"![{alt}]({plots_folder_name}/{name}.png)", ""]
            elif isinstance(block, tuple) and block[0] == "details":
                _, title, code = block
                lines += ["<details>", f"<summary>{title}</summary>", "", "```json", code,
                          "```", "", "</details>", ""]
            else:
                lines += [block, ""]
    return "\n".join(lines).rstrip() + "\n"
