"""What a generator is trained towards: samples, an energy, and (when known) an exact log-density.

A target is a small object. `sample(n)` draws training data from tensors held in memory (or from the
reference ν when the target is only an energy); `log_prob(x)` is the exact log-density when it is known,
used by the `exact` score and by the metrics; `box` is the region the plots and grid metrics cover.
"""

from __future__ import annotations

import math

import torch

from gan_anneal.data.toy_metrics import toy_metrics
from gan_anneal.data.toy_pictures import save_sample_plot

Tensor = torch.Tensor


class Target:
    dim: int
    box: tuple[float, float]  # the same interval on every axis
    modes: Tensor | None = None  # (K, dim) for mixtures, else None
    mode_std: float | None = None

    def sample(self, n: int) -> Tensor:
        raise NotImplementedError

    def log_prob(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def bin_masses(self, edges: Tensor) -> Tensor:
        """Probability of each cell of the grid with the given per-axis edges (shape (B+1,)); sums to ≈ 1."""
        raise NotImplementedError

    def to(self, device) -> "Target":
        return self

    def metrics(self, samples: Tensor, settings) -> dict:
        """Final sample-quality metrics written to summary.json."""

        return toy_metrics(samples, self, settings.mode_min_share)

    def save_picture(self, samples: Tensor, path, title: str = "") -> None:

        save_sample_plot(self, samples, path, title)


class GaussianMixture(Target):
    """An equally weighted mixture of isotropic Gaussians with a common standard deviation."""

    def __init__(self, means: Tensor, std: float, box: tuple[float, float]):
        self.means = means.float()
        self.modes = self.means
        self.std = self.mode_std = float(std)
        self.dim = self.means.shape[1]
        self.box = box

    def to(self, device) -> "GaussianMixture":
        self.means = self.modes = self.means.to(device)
        return self

    def smoothed(self, sigma: float) -> "GaussianMixture":
        """μ convolved with N(0, σ²I): again a mixture, with standard deviation √(std² + σ²). Its score is
        what a denoising score network with noise σ estimates (Tweedie), here in closed form."""
        return GaussianMixture(self.means, math.sqrt(self.std**2 + sigma**2), self.box)

    def sample(self, n: int) -> Tensor:
        k = torch.randint(len(self.means), (n,), device=self.means.device)
        return self.means[k] + self.std * torch.randn(n, self.dim, device=self.means.device)

    def log_prob(self, x: Tensor) -> Tensor:
        sq = ((x.unsqueeze(1) - self.means.to(x)) ** 2).sum(-1)  # (n, K)
        log_norm = -0.5 * self.dim * math.log(2 * math.pi * self.std**2)
        return torch.logsumexp(-0.5 * sq / self.std**2, dim=1) + log_norm - math.log(len(self.means))

    def bin_masses(self, edges: Tensor) -> Tensor:
        # The mass of a box under an isotropic Gaussian factorises over axes into differences of the normal CDF.
        edges = edges.double().cpu()
        means = self.means.double().cpu()
        cdf = 0.5 * (1 + torch.erf((edges[None, None, :] - means[:, :, None]) / (self.std * math.sqrt(2))))
        per_axis = cdf[..., 1:] - cdf[..., :-1]  # (K, dim, B)
        masses = per_axis[:, 0]
        for axis in range(1, self.dim):
            masses = masses[..., :, None] * per_axis[:, axis].reshape((len(means),) + (1,) * axis + (-1,))
        return masses.mean(0)


def ring(n_modes: int = 8, radius: float = 2.0, std: float = 0.05) -> GaussianMixture:
    angles = torch.arange(n_modes) * (2 * math.pi / n_modes)
    means = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    edge = radius + 0.6 * radius
    return GaussianMixture(means, std, (-edge, edge))


def grid(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> GaussianMixture:
    coords = (torch.arange(side) - (side - 1) / 2) * spacing
    means = torch.cartesian_prod(coords, coords)
    edge = coords.max().item() + spacing
    return GaussianMixture(means, std, (-edge, edge))


def gauss1d(mean: float = 0.0, std: float = 1.0) -> GaussianMixture:
    return GaussianMixture(torch.tensor([[mean]]), std, (mean - 5 * std, mean + 5 * std))
