"""Tables in the layout of Tao et al. (2019), Table 1: rows are divergences, columns the static λ then
PMA / NMA / OA; one table per metric; mean ± std over seeds; the best cell of each row marked; the
published row beside ours when a reference is given; failed, diverged, unfinished or missing cells named.

    build_tables(records, metrics, reference=...) → [MetricTable]

The tables are data (MetricTable, Row, Cell); results/render.py writes them as rich, Markdown, CSV or LaTeX.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass, field

from gan_anneal.errors import UserError
from gan_anneal.kinds import dataset_kind
from gan_anneal.metric_names import FIDELITY_KEYS, IMAGE_METRICS, METRICS, PRC_METRICS, TOY_METRICS, Metric
from gan_anneal.results.collect import RunRecord, column_order
from gan_anneal.results.settings import Setting, split_settings

DIVERGENCE_ORDER = ("rkl", "jsd", "wgan")
DIVERGENCE_LABELS = {"rkl": "RKL-GAN", "jsd": "JSD-GAN", "wgan": "W-GAN"}


# a cell with no number: the most telling status of its runs wins
STATUS_PRIORITY = ("diverged", "failed", "interrupted", "running", "unknown", "not evaluated")


def metric_by_name(name: str) -> Metric:
    if name in METRICS:
        return METRICS[name]
    # any other numeric key of summary.json "metrics" works too, e.g. sample_var (lower is not assumed better)
    if not name.replace("_", "").isalnum():
        raise UserError(f"--metric {name!r}: valid are {', '.join(METRICS)} or a key of a run's summary.json metrics.")
    return Metric(name, name, name, True, 3, name)


def check_metrics(names: list[str], records: list[RunRecord]) -> None:
    """Each metric asked for must be a number some run here has (a table of 'not evaluated' answers nothing)."""
    present = sorted(set().union(*(r.metrics for r in records))) if records else []
    by_key = {m.key: m.name for m in METRICS.values()}
    for name in names:
        metric = metric_by_name(name)
        unfinished = not records or any(r.status != "done" for r in records)
        if unfinished and name in METRICS:  # a sweep under way: its cells say running / missing
            continue
        if metric.key not in present:
            shown = ", ".join(by_key.get(k, k) for k in present if not k.endswith("_std")) or "none"
            hint = (" IS / FID / KID come from `ganneal evaluate RUN` (eval.json)."
                    if metric.key in FIDELITY_KEYS else "")
            raise UserError(f"--metric {name}: no run here has it. Metrics present: {shown}.{hint}")


def default_metrics(records: list[RunRecord], images: bool | None = None) -> list[str]:
    """IS and FID (with precision and recall where any run has them) when any run has been evaluated (or is an
    image run, or `images` says the sweep evaluates IS / FID), else the toy metrics it has."""
    if images or any("is_mean" in r.metrics or "fid" in r.metrics for r in records):
        prc = [m for m in PRC_METRICS if any(METRICS[m].key in r.metrics for r in records)]
        return [*IMAGE_METRICS, *prc]
    toy = [m for m in TOY_METRICS if any(m in r.metrics for r in records)]
    if toy:
        return toy
    if any(dataset_kind(r.dataset) == "images" for r in records):
        return list(IMAGE_METRICS)
    return list(TOY_METRICS)


@dataclass
class Cell:
    values: list[float] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)  # of the runs with no number
    best: bool = False

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    @property
    def status(self) -> str:
        """ok (a number), or why not: diverged | failed | interrupted | running | not evaluated | missing."""
        if self.values:
            return "ok"
        for status in STATUS_PRIORITY:
            if status in self.statuses:
                return status
        return "missing"

    def text(self, digits: int, pm: str = " ± ", seeds: int = 0) -> str:
        """The mean ± std; with `seeds` (the most any cell of the table has), a cell of fewer but several says
        how many, so that a sweep's half-finished column does not pass for a whole one."""
        if not self.values:
            return self.status
        out = f"{self.mean:.{digits}f}"
        if self.std is not None:
            out += f"{pm}{self.std:.{digits}f}"
        if 1 < len(self.values) < seeds:
            out += f" (n={len(self.values)})"
        others = [s for s in self.statuses if s != "not evaluated"]
        if others:  # some seeds gave a number, others did not
            out += f" ({len(others)} {'/'.join(sorted(set(others)))})"
        return out


@dataclass
class Row:
    label: str
    divergence: str
    source: str  # "ours" or the reference's name
    cells: dict[str, Cell]


@dataclass
class MetricTable:
    metric: Metric
    columns: list[str]
    rows: list[Row]
    seeds: int  # most seeds in any cell
    notes: list[str] = field(default_factory=list)  # printed under the table in every format
    setting: str = ""  # what sets this table's runs apart from the folder's other tables ("dataset=grid25")
    extractor: str = ""  # the feature extractor of its IS / FID / KID numbers, when evaluated

    @property
    def title(self) -> str:
        return self.metric.title + (f" · {self.setting}" if self.setting else "")


def _mark_best(row: Row, metric: Metric) -> None:
    """Mark the best cells of a row by the value as displayed: every cell tied at the shown precision, or none
    when all are tied (then no cell is better than another)."""
    shown = {key: round(c.mean, metric.digits) for key, c in row.cells.items()
             if c.mean is not None and math.isfinite(c.mean)}
    if len(set(shown.values())) < 2:
        return
    best = max(shown.values()) if metric.higher_is_better else min(shown.values())
    for key, c in row.cells.items():
        c.best = shown.get(key) == best


def build_tables(records: list[RunRecord], metrics: list[str], reference=None,
                 planned: tuple[list[str], list[str]] | None = None, digits: int | None = None) -> list[MetricTable]:
    """One table per metric and setting (results/settings.py: runs that differ in more than the seed are never
    averaged). Rows: divergences present (or planned); columns: those present, planned or in the reference.
    With a reference, its row follows ours for each divergence it covers."""
    settings = split_settings(records) if records else [Setting("", {}, [])]
    groups = {k.rsplit(".", 1)[0] for k in settings[0].keys if k.endswith(".name")}
    split_by = sorted({k.rsplit(".", 1)[0] if k.rsplit(".", 1)[0] in groups else k for k in settings[0].keys})
    tables = []
    for name in metrics:
        metric = metric_by_name(name)
        if digits is not None:  # e.g. smoke numbers that differ in the third decimal
            metric = dataclasses.replace(metric, digits=int(digits))
        for setting in settings:
            table = _metric_table(setting.records, metric, reference, planned)
            table.setting = setting.label
            if len(settings) > 1:
                table.notes.insert(0, f"The runs in this folder differ in {', '.join(split_by)}: one table per "
                                      "setting, never averaged together.")
            tables.append(table)
    return tables


def _metric_table(records: list[RunRecord], metric: Metric, reference, planned) -> MetricTable:
    divergences = {r.divergence for r in records} | set(planned[0] if planned else [])
    divergences = sorted(divergences, key=lambda d: (DIVERGENCE_ORDER.index(d) if d in DIVERGENCE_ORDER else 99, d))
    columns = {r.column for r in records} | set(planned[1] if planned else [])
    if reference is not None:
        columns |= set(reference.columns)
    columns = sorted(columns, key=column_order)
    rows = []
    for divergence in divergences:
        cells = {c: Cell() for c in columns}
        for r in records:
            if r.divergence != divergence or r.column not in cells:
                continue
            value = r.metrics.get(metric.key)
            if r.status == "done" and value is not None:
                cells[r.column].values.append(float(value))
            else:
                cells[r.column].statuses.append("not evaluated" if r.status == "done" else r.status)
        row = Row(DIVERGENCE_LABELS.get(divergence, divergence.upper()), divergence, "ours", cells)
        _mark_best(row, metric)
        rows.append(row)
        published = (reference.values.get(metric.name, {}).get(divergence) if reference is not None else None)
        if published:
            ref_row = Row(f"{row.label} ({reference.name})", divergence, reference.name,
                          {c: Cell(values=[published[c]]) if c in published else Cell(statuses=["n/a"])
                           for c in columns})
            _mark_best(ref_row, metric)
            rows.append(ref_row)
    seeds = max((len(c.values) + len(c.statuses) for row in rows if row.source == "ours"
                 for c in row.cells.values()), default=0)
    notes = []
    if reference is not None and metric.name not in reference.values:
        notes.append(f"{reference.name} publishes no {metric.name} numbers.")
    commits = sorted({r.source for r in records if r.source})
    if len(commits) > 1:
        notes.append(f"the runs come from {len(commits)} source commits ({', '.join(commits)}): a table measures one "
                     "version of the code only when they are one.")
    extractor = ""
    if metric.key in FIDELITY_KEYS:
        evaluated = [r for r in records if metric.key in r.metrics]
        names = sorted({r.extractor or "?" for r in evaluated})
        extractor = ", ".join(names)
        counts = sorted({r.config.get("eval.num_samples") for r in evaluated if r.config.get("eval.num_samples")})
        if counts:
            notes.append(f"evaluations used: {', '.join(names)} on {', '.join(map(str, counts))} samples (each run's "
                         "kept evaluation with the most samples unless --eval-samples / --extractor ask for another).")
        stand_in = sorted({r.extractor or "?" for r in evaluated if r.extractor_stand_in})
        if stand_in:
            notes.append(f"{len([r for r in evaluated if r.extractor_stand_in])} of {len(evaluated)} evaluated runs "
                         f"used a stand-in extractor ({', '.join(stand_in)}): not Inception numbers, not comparable "
                         "with published ones.")
    return MetricTable(metric, columns, rows, seeds, notes, extractor=extractor)
