"""Sample-quality metrics for low-dimensional targets with a known density.

- modes_covered / hq_fraction (mixtures): a sample is high quality when it lies within 3σ of its nearest
  mode; a mode is covered when it holds at least `min_share` of the high-quality samples it would get
  under the target (equal weights), i.e. min_share · n / K.
- kl_model_target / kl_target_model: KL between the model's histogram and the target's exact cell masses
  on a grid over the target's box; cells outside the box are pooled into one overflow cell. For
  KL(target‖model) the model histogram gets a pseudocount of 0.01 per cell, so an empty cell costs a
  finite amount (log of about 1e6 at 10k samples) without biasing the occupied cells.
- sample_mean / sample_var (1-D).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # the type only: evaluation needs no data code at run time
    from gan_anneal.data.targets import Target

PSEUDOCOUNT = 0.01


def mode_metrics(samples: torch.Tensor, modes: torch.Tensor, std: float, min_share: float = 0.2) -> dict:
    dist = torch.cdist(samples.float(), modes.float())
    nearest_dist, nearest = dist.min(dim=1)
    hq = nearest_dist <= 3 * std
    counts = torch.bincount(nearest[hq], minlength=len(modes))
    threshold = min_share * len(samples) / len(modes)
    return {
        "modes_covered": int((counts >= threshold).sum()),
        "modes_total": len(modes),
        "hq_fraction": float(hq.float().mean()),
    }


def histogram_kl(samples: torch.Tensor, target: Target, bins: int) -> dict:
    lo, hi = target.box
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    dim = samples.shape[1]
    x = samples.double().cpu()
    inside = ((x >= lo) & (x < hi)).all(dim=1)
    idx = torch.clamp(((x[inside] - lo) / (hi - lo) * bins).long(), 0, bins - 1)
    flat = torch.zeros(len(idx), dtype=torch.long)
    for axis in range(dim):
        flat = flat * bins + idx[:, axis]
    counts = torch.bincount(flat, minlength=bins**dim).double()
    counts = torch.cat([counts, torch.tensor([float((~inside).sum())], dtype=torch.float64)])
    model = counts / counts.sum()
    smoothed = (counts + PSEUDOCOUNT) / (counts.sum() + PSEUDOCOUNT * len(counts))

    masses = target.bin_masses(edges).reshape(-1).clamp(min=0)
    outside = max(0.0, 1.0 - float(masses.sum()))
    ref = torch.cat([masses, torch.tensor([outside], dtype=torch.float64)]).clamp(min=1e-12)
    ref = ref / ref.sum()
    occupied = model > 0
    return {
        "kl_model_target": float((model[occupied] * (model[occupied] / ref[occupied]).log()).sum()),
        "kl_target_model": float((ref * (ref / smoothed).log()).sum()),
    }


def toy_metrics(samples: torch.Tensor, target: Target, min_share: float = 0.2) -> dict:
    metrics: dict = {}
    if target.modes is not None and len(target.modes) > 1:
        metrics.update(mode_metrics(samples, target.modes, target.mode_std, min_share))
    if samples.shape[1] in (1, 2):
        metrics.update(histogram_kl(samples, target, bins=100 if samples.shape[1] == 1 else 60))
    if samples.shape[1] == 1:
        metrics["sample_mean"] = float(samples.mean())
        metrics["sample_var"] = float(samples.var())
    return metrics
