"""Each column against a baseline column, with its uncertainty: the verdict a table alone cannot give.

For every divergence and every column other than the baseline (λ = 0 by default), the difference of the metric,
column minus baseline, with a 95% t interval. Runs of one seed start from the same generator and critic
(build_experiment seeds them before anything else), so where the column and the baseline share at least two seeds the difference is
**paired**: the mean of the per-seed differences, with a t interval on n − 1 degrees of freedom. That removes the
seed-to-seed spread, which on small budgets dwarfs most effects. Otherwise (or with `paired=False`) it is the
difference of the means with a Welch interval (unequal variances, Welch–Satterthwaite degrees of freedom: the
seeds of the two columns taken as independent runs). Where the column ran one of the baseline's seeds only (a
static cell at seed 0), the difference at that seed (against λ = 0's mean over seeds it would fold the seed spread
in), with an interval from **the row's run noise**: the columns of the divergence that ran the same seeds as the
baseline (the block with the most degrees of freedom, at least two columns and two seeds) form a complete block
design, each value seed effect + column effect + noise, and the residual mean square estimates one run's noise
variance σ² on (columns − 1)(seeds − 1) degrees of freedom; a one-seed difference is two runs' noise, so its
interval is d ± t·√(2σ²). It assumes the column is as noisy as the block's. The baseline's cell is both in d and in
the residuals, so the t is approximate, on the safe side (simulated under the model, 2-4 columns × 2-4 seeds: 95.7-
95.9% coverage). A row's one-seed intervals share that cell, so they move together. Without such a block, or where
the block shows no noise at all, no interval. The reading says which way the interval points in the metric's
better direction, or that it holds 0 (within noise).

With a published table (`--reference tao2019`), each difference also gets the reference's **share**: the relative
change of the same column in the published row, applied to our baseline's mean. It is what the published effect
would be here if it carried over in proportion (an assumption), and says whether an interval that holds 0 also
rules that effect out or is too wide to.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from gan_anneal.errors import UserError
from gan_anneal.metric_names import Metric
from gan_anneal.results.collect import RunRecord, column_order, is_static_column
from gan_anneal.results.reference import Reference
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
    share: float | None = None  # the reference's relative effect applied to our baseline mean (module docstring)
    noise_dof: int | None = None  # a one-seed interval from the row's run noise, on these degrees of freedom

    def reading(self, metric: Metric, reference: str = "") -> str:
        if self.low is None:
            return "too few seeds for an interval"
        if self.low <= 0 <= self.high:
            if self.share is None:
                return "within noise"
            inside = self.low <= self.share <= self.high
            return f"within noise; {'cannot rule out' if inside else 'rules out'} {reference or 'the'}'s share"
        better = (self.low > 0) == metric.higher_is_better
        return "better" if better else "worse"

    def seeds(self) -> str:
        if self.noise_dof is not None:
            return f"{self.n} paired, row's noise ({self.noise_dof} dof)"
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


def run_noise(columns: dict[str, dict[int, float]], baseline: str) -> tuple[float, int] | None:
    """One run's noise variance and its degrees of freedom: the residual mean square of a complete block (columns
    that ran the same seeds as the baseline, value = seed effect + column effect + noise), the block with the most
    degrees of freedom; None without two columns and two seeds, or where the block shows no noise at all (a
    saturated metric, bit-identical runs), which would make every one-seed difference look certain."""
    base = set(columns.get(baseline, {}))
    best = None
    for seeds in {frozenset(base & set(vals)) for vals in columns.values()}:  # each column's seeds shared with λ = 0
        block = [[vals[s] for s in sorted(seeds)] for vals in columns.values() if seeds <= set(vals)]
        dof = (len(block) - 1) * (len(seeds) - 1)
        if dof > 0 and (best is None or dof > best[1]):
            best = (block, dof)
    if best is None:
        return None
    block, dof = best
    grand = statistics.fmean(v for row in block for v in row)
    column_means = [statistics.fmean(row) for row in block]
    seed_means = [statistics.fmean(column) for column in zip(*block)]
    residual = sum((v - column_means[i] - seed_means[j] + grand) ** 2
                   for i, row in enumerate(block) for j, v in enumerate(row))
    scale = max(abs(v) for row in block for v in row) or 1.0
    return (residual / dof, dof) if residual > (1e-9 * scale) ** 2 * len(block) * len(block[0]) else None


def baseline_column(text: str) -> str:
    """--against as a column key: a number as the table prints it (0.0 → 0), a schedule in capitals (oa → OA)."""
    try:
        return f"{float(text):g}"
    except ValueError:
        return text.upper()


def _difference(divergence: str, column: str, vals: dict[int, float], base: dict[int, float],
                paired: bool, noise: tuple[float, int] | None = None) -> Difference:
    shared = sorted(set(vals) & set(base))
    if paired and len(shared) >= 2:
        per_seed = [vals[s] - base[s] for s in shared]
        interval = paired_interval(per_seed)
        return Difference(divergence, column, len(shared), len(shared), statistics.fmean(per_seed), *interval,
                          paired=True)
    a, b = list(vals.values()), list(base.values())
    interval = welch_interval(a, b)
    if paired and interval is None and shared:  # the difference at the seed both ran, read against the row's noise
        d = vals[shared[0]] - base[shared[0]]
        if noise is None:
            return Difference(divergence, column, 1, 1, d, None, None, paired=True)
        half = _t(0.95, noise[1]) * math.sqrt(2 * noise[0])
        return Difference(divergence, column, 1, 1, d, d - half, d + half, paired=True, noise_dof=noise[1])
    return Difference(divergence, column, len(a), len(b), statistics.fmean(a) - statistics.fmean(b),
                      *(interval or (None, None)))


def compare(records: list[RunRecord], metric: Metric, baseline: str = "0", paired: bool = True,
            reference: Reference | None = None) -> list[Difference]:
    """Each column against the baseline, within one setting (callers split unlike runs first: split_settings), with
    the reference's share where it publishes the metric, the column and the baseline."""
    values: dict[tuple[str, str], dict[int, float]] = {}
    for r in records:
        value = r.metrics.get(metric.key)
        if r.status == "done" and value is not None and math.isfinite(float(value)):  # a NaN is no sample
            values.setdefault((r.divergence, r.column), {})[r.seed] = float(value)
    found = []
    noise = {}  # a row's run noise, for its one-seed columns (paired only: Welch carries the seed spread itself)
    for (divergence, column), vals in sorted(values.items(), key=lambda kv: (kv[0][0], column_order(kv[0][1]))):
        base = values.get((divergence, baseline))
        if column != baseline and base:
            if paired and divergence not in noise:
                noise[divergence] = run_noise({c: v for (div, c), v in values.items() if div == divergence}, baseline)
            d = _difference(divergence, column, vals, base, paired, noise.get(divergence))
            compared = [base[s] for s in vals if s in base] if d.paired else list(base.values())
            d.share = _share(reference, metric, divergence, column, baseline, statistics.fmean(compared))
            found.append(d)
    return found


def _share(reference: Reference | None, metric: Metric, divergence: str, column: str, baseline: str,
           ours: float) -> float | None:
    published = reference.values.get(metric.name, {}).get(divergence, {}) if reference is not None else {}
    if column not in published or not published.get(baseline):
        return None
    return ours * (published[column] - published[baseline]) / published[baseline]


def method(baseline: str, reference: str = "") -> str:
    """How every difference of a verdict was computed: said once, above the metrics' tables."""
    how = (f"Each column against {baseline_label(baseline)}: column − baseline, with a 95% t interval. Paired: the mean of "
           "the per-seed differences over the seeds both columns ran; else Welch over the columns' seeds as "
           "independent runs; one seed a side: the difference at the seed both ran, its interval from the row's run "
           "noise (the residual of the columns that ran the same seeds, assuming the column is as noisy; slightly "
           "conservative; a row's one-seed intervals all use the baseline's one value, so they move together). Each "
           "interval stands alone: among many, about one in twenty misses the truth by chance.")
    if reference:
        how += (f" {reference} share: the published relative change of the column, applied to our baseline's mean; "
                "the reading says whether an interval holding 0 rules it out.")
    return how + "\n"


def baseline_label(baseline: str) -> str:
    """A baseline column as a reader says it: λ = 0, or the schedule's name."""
    return f"λ = {baseline}" if is_static_column(baseline) else baseline


def render_differences(found: list[Difference], metric: Metric, baseline: str = "0", setting: str = "",
                       reference: str = "") -> str:
    """One metric's differences as a markdown table under a one-line heading (the method: `method`)."""
    shares = any(d.share is not None for d in found)
    lines = [f"{metric.name} difference against {baseline_label(baseline)}{f' ({setting})' if setting else ''}", "",
             "| divergence | column | seeds | difference | 95% interval |" + (f" {reference} share |" if shares else "")
             + " reading |", "|---|---|---|---|---|" + ("---|" if shares else "") + "---|"]
    for d in found:
        interval = f"[{d.low:+.{metric.digits}f}, {d.high:+.{metric.digits}f}]" if d.low is not None else "—"
        share = (f" {d.share:+.{metric.digits}f} |" if d.share is not None else " — |") if shares else ""
        lines.append(f"| {d.divergence} | {d.column} | {d.seeds()} | {d.difference:+.{metric.digits}f} "
                     f"| {interval} |{share} {d.reading(metric, reference)} |")
    return "\n".join(lines) + "\n"


Panels = list[tuple[str, Metric, list[Difference]]]  # (setting label, metric, its differences)


def verdict(records: list[RunRecord], metrics: list[Metric], against: str, paired: bool = True,
            reference: Reference | None = None) -> tuple[str, str, Panels]:
    """The baseline column, and the differences for each setting of runs (never pooled across settings) and each
    metric: as markdown (the method once, then a table a metric) and as panels for `verdict_figure`."""
    baseline = baseline_column(against)
    columns = sorted({r.column for r in records})
    if baseline not in columns:
        raise UserError(f"--against {against}: no run here is in column {baseline}. Columns present: "
                        f"{', '.join(sorted(columns, key=column_order))}.")
    panels = [(setting.label, metric, compare(setting.records, metric, baseline, paired, reference))
              for setting in split_settings(records) for metric in metrics]
    name = reference.name if reference is not None else ""
    parts = [method(baseline, name)] + [render_differences(found, metric, baseline, label, name)
                                        for label, metric, found in panels]
    return baseline, "".join("\n" + part for part in parts), panels
