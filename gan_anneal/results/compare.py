"""Each column against a baseline column, with its uncertainty: the verdict a table alone cannot give.

For every divergence and every column other than the baseline (λ = 0 by default), the difference of the metric,
column minus baseline, with a 95% t interval. Runs of one seed start from the same generator and critic
(build_experiment seeds them before anything else), so where the column and the baseline share at least two seeds the difference is
**paired**: the mean of the per-seed differences, with a t interval on n − 1 degrees of freedom. That removes the
seed-to-seed spread, which on small budgets dwarfs most effects. Otherwise (or with `paired=False`) it is the
difference of the means with a Welch interval (unequal variances, Welch–Satterthwaite degrees of freedom: the
seeds of the two columns taken as independent runs). Fewer than two seeds on a side: no interval, and where the
column ran one of the baseline's seeds, the difference at that seed (a one-seed static cell against λ = 0's
mean over seeds would fold the seed spread into the difference). The reading
says which way the interval points in the metric's better direction, or that it holds 0 (within noise).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from gan_anneal.errors import UserError
from gan_anneal.metric_names import Metric
from gan_anneal.results.collect import RunRecord, column_order
from gan_anneal.results.settings import split_settings


@dataclass
class Difference:
    divergence: str
    column: str
    n: int
    n_baseline: int
    difference: float  # paired: mean of (column − baseline) per seed; unpaired: mean(column) − mean(baseline)
    low: float | None
    high: float | None
    paired: bool = False

    def reading(self, metric: Metric) -> str:
        if self.low is None:
            return "too few seeds for an interval"
        if self.low <= 0 <= self.high:
            return "within noise"
        better = (self.low > 0) == metric.higher_is_better
        return "better" if better else "worse"

    def seeds(self) -> str:
        return f"{self.n} paired" if self.paired else f"{self.n} vs {self.n_baseline}"


def _t(level: float, dof: float) -> float:
    from scipy import stats  # deferred: scipy is slow to import and only this path needs it

    return float(stats.t.ppf(0.5 + level / 2, dof))


def welch_interval(a: list[float], b: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """The `level` interval of mean(a) − mean(b) by Welch's t, or None with fewer than two values on a side."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    diff = statistics.fmean(a) - statistics.fmean(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = _t(level, dof) * se
    return diff - half, diff + half


def paired_interval(differences: list[float], level: float = 0.95) -> tuple[float, float] | None:
    """The `level` t interval of the mean per-seed difference, or None with fewer than two seeds."""
    if len(differences) < 2:
        return None
    mean = statistics.fmean(differences)
    half = _t(level, len(differences) - 1) * statistics.stdev(differences) / math.sqrt(len(differences))
    return mean - half, mean + half


def baseline_column(text: str) -> str:
    """--against as a column key: a number as the table prints it (0.0 → 0), a schedule in capitals (oa → OA)."""
    try:
        return f"{float(text):g}"
    except ValueError:
        return text.upper()


def _difference(divergence: str, column: str, vals: dict[int, float], base: dict[int, float],
                paired: bool) -> Difference:
    shared = sorted(set(vals) & set(base))
    if paired and len(shared) >= 2:
        per_seed = [vals[s] - base[s] for s in shared]
        interval = paired_interval(per_seed)
        return Difference(divergence, column, len(shared), len(shared), statistics.fmean(per_seed), *interval,
                          paired=True)
    a, b = list(vals.values()), list(base.values())
    interval = welch_interval(a, b)
    if paired and interval is None and shared:  # no interval either way: the difference at the seed both ran
        return Difference(divergence, column, 1, 1, vals[shared[0]] - base[shared[0]], None, None, paired=True)
    return Difference(divergence, column, len(a), len(b), statistics.fmean(a) - statistics.fmean(b),
                      *(interval or (None, None)))


def compare(records: list[RunRecord], metric: Metric, baseline: str = "0", paired: bool = True) -> list[Difference]:
    """Each column against the baseline, within one setting (callers split unlike runs first: split_settings)."""
    values: dict[tuple[str, str], dict[int, float]] = {}
    for r in records:
        value = r.metrics.get(metric.key)
        if r.status == "done" and value is not None and math.isfinite(float(value)):  # a NaN is no sample
            values.setdefault((r.divergence, r.column), {})[r.seed] = float(value)
    found = []
    for (divergence, column), vals in sorted(values.items(), key=lambda kv: (kv[0][0], column_order(kv[0][1]))):
        base = values.get((divergence, baseline))
        if column != baseline and base:
            found.append(_difference(divergence, column, vals, base, paired))
    return found


def render_differences(found: list[Difference], metric: Metric, baseline: str = "0", setting: str = "") -> str:
    against = f"λ = {baseline}" if baseline[:1].isdigit() or baseline[:1] == "-" else baseline
    how = ("95% t interval; paired: mean of per-seed differences over the seeds both columns ran, else Welch over "
           "the columns' seeds as independent runs; one seed a side: the difference at the seed both ran")
    lines = [f"{metric.name} difference against {against}{f' ({setting})' if setting else ''} (column − baseline; "
             f"{how})",
             "", "| divergence | column | seeds | difference | 95% interval | reading |", "|---|---|---|---|---|---|"]
    for d in found:
        interval = f"[{d.low:+.{metric.digits}f}, {d.high:+.{metric.digits}f}]" if d.low is not None else "—"
        lines.append(f"| {d.divergence} | {d.column} | {d.seeds()} | {d.difference:+.{metric.digits}f} "
                     f"| {interval} | {d.reading(metric)} |")
    return "\n".join(lines) + "\n"


def verdict(records: list[RunRecord], metrics: list[Metric], against: str, paired: bool = True) -> str:
    """The differences for each metric and each setting of runs (never pooled across settings), as markdown."""

    baseline = baseline_column(against)
    columns = sorted({r.column for r in records})
    if baseline not in columns:
        raise UserError(f"--against {against}: no run here is in column {baseline}. Columns present: "
                        f"{', '.join(sorted(columns, key=column_order))}.")
    parts = []
    for setting in split_settings(records):
        for metric in metrics:
            parts.append(render_differences(compare(setting.records, metric, baseline, paired), metric, baseline,
                                            setting.label))
    return "".join("\n" + part for part in parts)
