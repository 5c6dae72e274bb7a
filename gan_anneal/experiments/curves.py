"""Learning dynamics: metrics over training steps for several runs in one figure (the paper's Figure 5)."""

from __future__ import annotations

from pathlib import Path

from gan_anneal.errors import UserError
from gan_anneal.results.rundir import RunDir


def run_label(run: RunDir) -> str:
    """divergence · anneal (λ) — enough to tell the runs of a comparison apart."""
    cfg = run.read_config()
    anneal = cfg.anneal.name + (f" λ={cfg.anneal.lam:g}" if "lam" in cfg.anneal else "")
    return f"{cfg.divergence.name} · {anneal}"


def series(run: RunDir, metric: str) -> tuple[list[int], list[float]]:
    points = [(r["step"], r[metric]) for r in run.read_metrics() if metric in r]
    return [p[0] for p in points], [p[1] for p in points]


def available_metrics(runs: list[RunDir]) -> list[str]:
    keys: set[str] = set()
    for run in runs:
        for record in run.read_metrics():
            keys.update(k for k in record if k not in ("step", "time_s"))
    return sorted(keys)


def plot_curves(run_dirs: list[str], metrics: list[str], out: Path, labels: list[str] | None = None,
                log_y: bool = False) -> Path:
    runs = [RunDir(d).require() for d in run_dirs]
    known = available_metrics(runs)
    for metric in metrics:
        if metric not in known:
            raise UserError(f"No run logged '{metric}'. Logged: {', '.join(known)}.")
    labels = labels or [run_label(r) for r in runs]
    from gan_anneal.evaluate.plots import _pyplot, save_figure

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.4), dpi=100, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for run, label in zip(runs, labels):
            steps, values = series(run, metric)
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, ms=3, lw=1.4, label=label)
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("generator step")
        if log_y:  # FID falls over orders of magnitude early on
            ax.set_yscale("log")
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, out)
