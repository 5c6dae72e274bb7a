"""The Gibbs check: with a static λ the optimum is μ^β, so on gauss1d (μ = N(0, 1)) the trained model's
variance must come out as 1/β. Trains a small grid of λ for both regularisers and tabulates measured
against predicted variance.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gan_anneal import runner
from gan_anneal.config import compose
from gan_anneal.results.rundir import RunDir
from gan_anneal.runner import run_training

TABLE1_LAMBDAS = (-50, -10, -1, -0.1, -0.01, 0, 0.01, 0.1, 1, 10, 50)  # the paper's static grid (Table 1)

# (regulariser, negative mode, λ)
GRIDS = {
    # a quick check of both regularisers and both signs (about 2 minutes on two cores)
    "small": [("likelihood", "entropy", -1.0), ("likelihood", "entropy", 0.0), ("likelihood", "entropy", 1.0),
              ("likelihood", "entropy", 3.0), ("entropy", "entropy", 1.0), ("entropy", "entropy", -1.0),
              ("likelihood", "raw", -0.5)],
    # the paper's whole λ axis, both regularisers, the default route for λ < 0
    "table1": [(reg, "entropy", float(lam)) for reg in ("likelihood", "entropy") for lam in TABLE1_LAMBDAS],
}
DEFAULT_GRID = GRIDS["small"]


@dataclass
class GibbsRow:
    regularizer: str
    negative: str
    lam: float
    beta: float
    predicted_var: float
    measured_var: float
    status: str
    run: str  # the run directory's name; rows with the same surrogate weights share one run

    @property
    def rel_error(self) -> float:
        return abs(self.measured_var - self.predicted_var) / self.predicted_var


def _run_name(weights: tuple[float, float]) -> str:
    return f"wlik{weights[0]:g}_went{weights[1]:g}"


def _one(args: tuple) -> dict:
    regularizer, negative, lam, out, steps, seed = args
    import torch  # deferred: loads torch; this module stays torch-free at import

    torch.set_num_threads(1)  # two single-thread jobs beat one two-thread job on small nets
    # deferred: loads torch; this module stays torch-free at import
    from gan_anneal.objectives.regularizers import coefficient_map

    name = _run_name(coefficient_map(regularizer, negative)(lam)[1:])
    overrides = ["experiment=gibbs", f"regularizer={regularizer}", f"anneal.lam={lam}",
                 f"anneal.negative={negative}", f"seed={seed}", "train.progress=false"]
    if steps:
        overrides.append(f"train.steps={steps}")
    quiet, runner.console.quiet = runner.console.quiet, True  # the check prints one line per run and its table
    try:
        outcome = run_training(compose(overrides), Path(out) / name)
    finally:
        runner.console.quiet = quiet
    return {"run": name, "status": outcome,
            "measured_var": RunDir(Path(out) / name).read_summary().get("metrics", {}).get("sample_var", float("nan"))}


def run_gibbs_check(out: Path, grid=DEFAULT_GRID, steps: int | None = None, seed: int = 0,
                    jobs: int | None = None, log=print) -> list[GibbsRow]:
    """Train one run per distinct pair of surrogate weights in `grid` and compare each row's variance with 1/β.

    Rows with the same weights (likelihood at λ < 0 and entropy at −λ under anneal.negative=entropy; λ = 0 for
    both regularisers) would train the same loss from the same seed, so they share one run.
    """
    # deferred: loads torch; this module stays torch-free at import
    from gan_anneal.objectives.regularizers import coefficient_map

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    coefficients = [coefficient_map(r, n)(lam) for r, n, lam in grid]
    distinct: dict[str, tuple] = {}
    for (r, n, lam), (_, *weights) in zip(grid, coefficients):
        distinct.setdefault(_run_name(tuple(weights)), (r, n, lam, str(out), steps, seed))
    jobs = jobs or min(len(distinct), os.cpu_count() or 1)
    log(f"Gibbs check: {len(distinct)} runs for {len(grid)} rows, {jobs} at a time, into {out}")
    results = {}
    with ProcessPoolExecutor(max_workers=jobs) if jobs > 1 else _Serial() as pool:
        for i, result in enumerate(pool.map(_one, distinct.values()), 1):
            results[result["run"]] = result
            log(f"  [{i}/{len(distinct)}] {result['run']}: {result['status']}, variance {result['measured_var']:.4g}")
    rows = []
    for (r, n, lam), (beta, *weights) in zip(grid, coefficients):
        result = results[_run_name(tuple(weights))]
        rows.append(GibbsRow(r, n, lam, beta, 1.0 / beta, result["measured_var"], result["status"], result["run"]))
    (out / "gibbs.json").write_text(json.dumps([{**vars(r), "rel_error": r.rel_error} for r in rows], indent=2))
    (out / "gibbs.md").write_text(markdown_table(rows))
    plot(rows, out / "gibbs.png")
    return rows


class _Serial:
    """`pool.map` in this process (jobs=1: tests, debugging)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    map = staticmethod(map)


def markdown_table(rows: list[GibbsRow]) -> str:
    lines = ["| regulariser | negative | λ | β | predicted var 1/β | measured var | rel. error | run |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r.regularizer} | {r.negative} | {r.lam:g} | {r.beta:.4g} | {r.predicted_var:.4g} | "
                     f"{r.measured_var:.4g} | {100 * r.rel_error:.1f}% | {r.run} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[GibbsRow], path: Path) -> None:
    # deferred: matplotlib is slow to import and only this path needs it
    from gan_anneal.figures import pyplot as _pyplot
    from gan_anneal.figures import save_figure  # deferred: matplotlib is slow to import and only this path needs it

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    values = [v for r in rows for v in (r.predicted_var, r.measured_var) if math.isfinite(v) and v > 0]
    low, top = min(values) / 1.5, max(values) * 1.5
    ax.plot([low, top], [low, top], color="grey", lw=1, ls="--", label="measured = 1/β")
    ax.set_xscale("log")  # the paper's grid spans variances from 1/51 to 51
    ax.set_yscale("log")
    for reg, marker in (("likelihood", "o"), ("entropy", "s")):
        pts = [r for r in rows if r.regularizer == reg]
        ax.scatter([r.predicted_var for r in pts], [r.measured_var for r in pts], marker=marker, s=40, label=reg)
        for r in pts:
            ax.annotate(f"λ={r.lam:g}{' raw' if r.negative == 'raw' else ''}", (r.predicted_var, r.measured_var),
                        fontsize=7, xytext=(4, -10), textcoords="offset points")
    ax.set_xlabel("predicted variance 1/β")
    ax.set_ylabel("measured variance of G(z)")
    ax.set_title("Gibbs optimum μ^β on N(0, 1)", fontsize=10)
    ax.legend(fontsize=8)
    save_figure(fig, path)
