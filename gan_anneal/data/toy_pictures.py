"""Pictures of a toy target's samples against its density (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from gan_anneal.figures import pyplot, save_figure

if TYPE_CHECKING:  # the type only: targets.py imports this module when it draws
    from gan_anneal.data.targets import Target


def density_grid(target: Target, resolution: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = target.box
    axis = torch.linspace(lo, hi, resolution)
    xx, yy = torch.meshgrid(axis, axis, indexing="xy")
    points = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)
    with torch.no_grad():
        density = target.log_prob(points).exp().reshape(resolution, resolution)
    return axis, density


def draw_samples(ax, target: Target, samples: torch.Tensor, title: str = "") -> None:
    samples = samples.detach().cpu()
    lo, hi = target.box
    if samples.shape[1] == 1:
        axis = torch.linspace(lo, hi, 400)
        with torch.no_grad():
            density = target.log_prob(axis[:, None]).exp()
        ax.hist(samples[:, 0].numpy(), bins=80, range=(lo, hi), density=True, alpha=0.6, label="model")
        ax.plot(axis.numpy(), density.numpy(), color="black", lw=1.5, label="target")
        ax.legend(loc="upper right", fontsize=8)
    else:
        # the target as shading plus contour lines at 50%, 10% and 1% of its peak (readable in print and at a
        # glance), the model's samples as red dots on top, and a legend that says which is which
        from matplotlib.lines import Line2D

        axis, density = density_grid(target)
        ax.imshow(density.numpy(), extent=(lo, hi, lo, hi), origin="lower", cmap="Greys", aspect="equal", alpha=0.35)
        peak = float(density.max())
        if peak > 0:
            ax.contour(axis.numpy(), axis.numpy(), density.numpy(), levels=[0.01 * peak, 0.1 * peak, 0.5 * peak],
                       colors="black", linewidths=[0.5, 0.8, 1.1])
        shown = samples[:2000]
        ax.scatter(shown[:, 0].numpy(), shown[:, 1].numpy(), s=3, c="tab:red", alpha=0.6, linewidths=0)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.legend(handles=[Line2D([], [], color="black", lw=1, label="target (contours: 50/10/1% of peak)"),
                           Line2D([], [], color="tab:red", marker="o", ls="", ms=4, label="model samples")],
                  loc="upper right", fontsize=7, framealpha=0.85)
    ax.set_title(title, fontsize=9)


def save_sample_plot(target: Target, samples: torch.Tensor, path: Path, title: str = "") -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    draw_samples(ax, target, samples, title)
    save_figure(fig, path)
