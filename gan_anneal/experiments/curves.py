"""Learning dynamics: metrics over training steps for several runs in one figure (the paper's Figure 5)."""

from __future__ import annotations

import math
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


FLAT = 1e-3  # a series whose spread is below this fraction of its size is drawn as the flat line it is


def y_axis(values: list[float], log_y: bool) -> tuple[str, tuple[float, float] | None]:
    """The y scale and limits: log only where asked and the positive values span at least 10×; an almost
    constant series gets limits of ±1% around it, so float noise is not drawn as a cliff."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "linear", None
    low, high = min(finite), max(finite)
    if log_y and low > 0 and high / low >= 10:
        return "log", None
    middle = (low + high) / 2
    if high - low <= FLAT * max(abs(middle), 1e-12):
        half = max(abs(middle) * 0.01, 1e-12)
        return "linear", (middle - half, middle + half)
    return "linear", None


def plot_curves(run_dirs: list[str], metrics: list[str], out: Path, labels: list[str] | None = None,
                log_y: bool = False) -> Path:
    runs = [RunDir(d).require() for d in run_dirs]
    known = available_metrics(runs)
    for metric in metrics:
        if metric not in known:
            raise UserError(f"No run logged '{metric}'. Logged: {', '.join(known)}.")
    labels = labels or [run_label(r) for r in runs]
    # deferred: matplotlib is slow to import and only this path needs it
    from gan_anneal.figures import pyplot as _pyplot
    from gan_anneal.figures import save_figure  # deferred: matplotlib is slow to import and only this path needs it

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.4), dpi=100, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        everything = []
        for run, label in zip(runs, labels):
            steps, values = series(run, metric)
            everything += list(values)
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, ms=3, lw=1.4, label=label)
        scale, limits = y_axis(everything, log_y)
        ax.set_title(metric + (" (linear: it spans less than 10×)" if log_y and scale == "linear" else ""),
                     fontsize=10)
        ax.set_xlabel("generator step")
        ax.set_yscale(scale)  # log: FID falls over orders of magnitude early on
        if limits is not None:
            ax.set_ylim(*limits)
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, out)
