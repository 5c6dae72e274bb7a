"""A table of results, written out: rich (the terminal), Markdown (docs), CSV (long, "tidy": one line per cell, with
mean, std, n and status in their own columns) or LaTeX (a paper).

    render(build_tables(...), "rich" | "markdown" | "csv" | "latex") → str
"""

from __future__ import annotations

import csv
import io

from rich.console import Console
from rich.table import Table

from gan_anneal.errors import UserError
from gan_anneal.results.collect import is_static_column
from gan_anneal.results.table import Cell, MetricTable, Row

FORMATS = ("rich", "markdown", "csv", "latex")


def _column_header(key: str) -> str:
    return f"λ={key}" if is_static_column(key) else key


def _ref_text(cell: Cell, digits: int) -> str:
    """A published number with the table's decimals, or more when it was printed with more (35.19)."""
    if not cell.values:
        return "n/a"
    value = cell.values[0]
    return f"{value:.{digits}f}" if round(value, digits) == value else f"{value:g}"


def _cell_text(row: Row, cell: Cell, digits: int, seeds: int = 0) -> str:
    return _ref_text(cell, digits) if row.source != "ours" else cell.text(digits, seeds=seeds)


def render_markdown(tables: list[MetricTable]) -> str:
    out = []
    for t in tables:
        out.append(f"**{t.title}**" + (f" · mean ± std over up to {t.seeds} seeds" if t.seeds > 1 else ""))
        out.append("")
        out.append("| model | " + " | ".join(_column_header(c) for c in t.columns) + " |")
        out.append("|---" * (len(t.columns) + 1) + "|")
        for row in t.rows:
            texts = []
            for c in t.columns:
                text = _cell_text(row, row.cells[c], t.metric.digits, t.seeds)
                texts.append(f"**{text}**" if row.cells[c].best else text)
            out.append(f"| {row.label} | " + " | ".join(texts) + " |")
        if t.notes:  # a line right under a table would read as one more row
            out.append("")
        out.extend(f"_{n}_" for n in t.notes)
        out.append("")
    return "\n".join(out)


def render_csv(tables: list[MetricTable]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["metric", "setting", "divergence", "source", "column", "mean", "std", "n", "status", "best",
                     "extractor", "note"])
    for t in tables:
        note = " ".join(n for n in t.notes if "stand-in" in n)
        for row in t.rows:
            for c in t.columns:
                cell = row.cells[c]
                writer.writerow([t.metric.name, t.setting, row.divergence, row.source, c,
                                 "" if cell.mean is None else repr(round(cell.mean, 6)),
                                 "" if cell.std is None else repr(round(cell.std, 6)), len(cell.values),
                                 cell.status if row.source == "ours" or cell.values else "n/a", int(cell.best),
                                 t.extractor if row.source == "ours" else "", note if row.source == "ours" else ""])
    return buffer.getvalue()


def _latex_escape(text: str) -> str:
    return (text.replace("\\", r"\textbackslash{}").replace("&", r"\&").replace("%", r"\%").replace("_", r"\_")
            .replace("#", r"\#").replace("‖", r"$\|$"))


def render_latex(tables: list[MetricTable]) -> str:
    out = []
    for t in tables:
        out.append("% " + t.title)
        out.append(r"\begin{tabular}{l" + "r" * len(t.columns) + "}")
        out.append(r"\toprule")
        heads = [f"${c}$" if is_static_column(c) else c for c in t.columns]
        out.append(r"model & " + " & ".join(heads) + r" \\")
        out.append(r"\midrule")
        for row in t.rows:
            texts = []
            for c in t.columns:
                cell = row.cells[c]
                if row.source != "ours":
                    text = _ref_text(cell, t.metric.digits)
                elif cell.values:
                    text = cell.text(t.metric.digits, pm=r" $\pm$ ", seeds=t.seeds)
                else:
                    text = r"\textit{" + cell.status + "}"
                texts.append(r"\textbf{" + text + "}" if cell.best else text)
            out.append(_latex_escape(row.label) + " & " + " & ".join(texts) + r" \\")
        out.append(r"\bottomrule")
        out.extend(r"\multicolumn{" + str(len(t.columns) + 1) + r"}{l}{\footnotesize " + _latex_escape(n) + r"} \\"
                   for n in t.notes)
        out.append(r"\end{tabular}")
        out.append("")
    return "\n".join(out)


def rich_tables(tables: list[MetricTable]):

    made = []
    for t in tables:
        title = t.title + (f" · mean ± std, ≤{t.seeds} seeds" if t.seeds > 1 else "")
        caption = "\n".join([*t.notes, "* the row's best at the precision shown (a one-seed cell ranked with the rest)"]
                            if any(c.best for row in t.rows for c in row.cells.values()) else t.notes) or None
        table = Table(title=title, header_style="bold", title_style="bold", min_width=len(title) + 2,
                      caption=caption, caption_style="yellow", caption_justify="left")
        table.add_column("model", no_wrap=True)
        for c in t.columns:
            table.add_column(_column_header(c), justify="right")
        for row in t.rows:
            texts = []
            for c in t.columns:
                cell = row.cells[c]
                text = _cell_text(row, cell, t.metric.digits, t.seeds)
                if cell.best:
                    text = f"[bold green]{text}*[/]"
                elif row.source == "ours" and not cell.values:
                    text = f"[red]{text}[/]" if cell.status in ("failed", "diverged") else f"[dim]{text}[/]"
                elif row.source != "ours":
                    text = f"[cyan]{text}[/]"
                texts.append(text)
            table.add_row(row.label if row.source == "ours" else f"[cyan]{row.label}[/]", *texts)
        made.append(table)
    return made


def text_width(tables: list[MetricTable]) -> int:
    """Characters a rich table needs to show every cell uncut."""
    widest = 80
    for t in tables:
        width = max(len(row.label) for row in t.rows) + 4 if t.rows else 10
        for c in t.columns:
            texts = [_cell_text(row, row.cells[c], t.metric.digits, t.seeds) for row in t.rows] + [_column_header(c)]
            width += max(len(x) for x in texts) + 4  # padding, border, the best marker
        widest = max(widest, width)
    return widest


def render(tables: list[MetricTable], fmt: str, width: int | None = None) -> str:
    if fmt == "markdown":
        return render_markdown(tables)
    if fmt == "csv":
        return render_csv(tables)
    if fmt == "latex":
        return render_latex(tables)
    if fmt == "rich":

        console = Console(record=True, width=width or text_width(tables), file=io.StringIO())
        for table in rich_tables(tables):
            console.print(table)
        return console.export_text()
    raise UserError(f"--format {fmt!r}: valid are {', '.join(FORMATS)}.")
