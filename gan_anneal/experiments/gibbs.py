"""The Gibbs check: with a static λ the optimum is μ^β, so on gauss1d (μ = N(0, 1)) the trained model's
variance must come out as 1/β. Trains a small grid of λ for both regularisers and tabulates measured
against predicted variance.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

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

    @property
    def rel_error(self) -> float:
        return abs(self.measured_var - self.predicted_var) / self.predicted_var


def _one(args: tuple) -> dict:
    regularizer, negative, lam, out, steps, seed = args
    import torch

    torch.set_num_threads(1)  # two single-thread jobs beat one two-thread job on small nets
    from gan_anneal.config import compose
    from gan_anneal.results.rundir import RunDir
    from gan_anneal.runner import run_training

    name = f"{regularizer}_{negative}_lam{lam:+g}"
    overrides = ["experiment=gibbs", f"regularizer={regularizer}", f"anneal.lam={lam}",
                 f"anneal.negative={negative}", f"seed={seed}", "train.progress=false"]
    if steps:
        overrides.append(f"train.steps={steps}")
    outcome = run_training(compose(overrides), Path(out) / name)
    summary = RunDir(Path(out) / name).read_summary()
    return {"regularizer": regularizer, "negative": negative, "lam": lam, "status": outcome,
            "beta": summary.get("final_coefficients", {}).get("beta", float("nan")),
            "measured_var": summary.get("metrics", {}).get("sample_var", float("nan"))}


def run_gibbs_check(out: Path, grid=DEFAULT_GRID, steps: int | None = None, seed: int = 0,
                    jobs: int | None = None) -> list[GibbsRow]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = jobs or min(len(grid), os.cpu_count() or 1)
    tasks = [(r, n, lam, str(out), steps, seed) for r, n, lam in grid]
    if jobs == 1:
        results = [_one(t) for t in tasks]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(_one, tasks))
    rows = [GibbsRow(predicted_var=1.0 / r["beta"], **r) for r in results]
    (out / "gibbs.json").write_text(json.dumps([{**vars(r), "rel_error": r.rel_error} for r in rows], indent=2))
    (out / "gibbs.md").write_text(markdown_table(rows))
    plot(rows, out / "gibbs.png")
    return rows


def markdown_table(rows: list[GibbsRow]) -> str:
    lines = ["| regulariser | negative | λ | β | predicted var 1/β | measured var | rel. error |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.regularizer} | {r.negative} | {r.lam:g} | {r.beta:.3f} | {r.predicted_var:.3f} | "
                     f"{r.measured_var:.3f} | {100 * r.rel_error:.1f}% |")
    return "\n".join(lines) + "\n"


def plot(rows: list[GibbsRow], path: Path) -> None:
    from gan_anneal.evaluate.plots import _pyplot, save_figure

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    top = max(max(r.predicted_var for r in rows), max(r.measured_var for r in rows)) * 1.15
    ax.plot([0, top], [0, top], color="grey", lw=1, ls="--", label="measured = 1/β")
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
