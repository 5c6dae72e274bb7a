"""λ(t), β(t) and the two surrogate weights of a configured schedule, without training anything (the paper's Figure 4)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from gan_anneal.objectives.regularizers import coefficient_map
from gan_anneal.objectives.schedules import build_schedule
from gan_anneal.train.build import as_dict


def schedule_curves(cfg: DictConfig, points: int = 1000) -> dict[str, list[float]]:
    schedule = build_schedule(as_dict(cfg.anneal))
    coefficients = coefficient_map(cfg.regularizer.name, cfg.anneal.get("negative", "entropy"))
    total = cfg.train.steps
    steps = sorted({round(i * total / points) for i in range(points + 1)})
    lams = [schedule(s, total) for s in steps]
    betas, w_lik, w_ent = zip(*(coefficients(lam) for lam in lams))
    return {"step": steps, "lam": lams, "beta": list(betas), "w_lik": list(w_lik), "w_ent": list(w_ent)}


def plot_schedules(curves: dict[str, dict[str, list[float]]], path: Path) -> None:
    """One panel per coefficient, one line per named schedule."""
    # deferred: matplotlib is slow to import and only this path needs it
    from gan_anneal.figures import pyplot as _pyplot
    from gan_anneal.figures import save_figure  # deferred: matplotlib is slow to import and only this path needs it

    plt = _pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2), dpi=100)
    for label, c in curves.items():
        for ax, key, title in zip(axes, ("lam", "beta", "w_lik", "w_ent"),
                                  ("λ(t)", "β(t) (inverse temperature)", "w_lik(t) (likelihood weight)",
                                   "w_ent(t) (entropy weight)")):
            ax.plot(c["step"], c[key], label=label, lw=1.5)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("generator step")
            ax.axhline(1.0 if key == "beta" else 0.0, color="grey", lw=0.8, ls="--")
    axes[0].legend(fontsize=8)
    save_figure(fig, path)
