"""Discrete generators for boundary-seeking GANs (Hjelm et al., 2018, reference/bgan.md §4.4, §6.2–6.3).

A discrete generator computes logits once per z and exposes what the policy-gradient estimator needs:

    logits(z)              (n, C, *spatial) — C = 1 Bernoulli logit per pixel, or K class logits per position
    sample(logits)         a detached discrete sample in the layout the critic reads (0/1 or one-hot, float)
    log_prob(x, logits)    log g(x|z), summed over every dimension → (n,)
    probs(logits)          σ(l) or softmax(l) over the class axis

`forward(z)` returns a detached discrete sample, so the loop's critic step, the pictures and the evaluation work
unchanged. With `relaxed=True` it returns the (differentiable) probabilities instead: that is the WGAN-GP
baseline of the paper's Table 2, trained by back-propagation through σ(l), and evaluated on samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor


class DiscreteHead(nn.Module):
    """Shared sampling / log-probability maths. Subclasses implement `logits(z)` with the class axis at 1."""

    z_dim: int
    prior: str = "uniform"
    relaxed: bool = False

    def sample_noise(self, n: int, device=None) -> Tensor:
        if self.prior == "uniform":  # the authors' U[0, 1) prior for discrete runs (§6.7)
            return torch.rand(n, self.z_dim, device=device)
        return torch.randn(n, self.z_dim, device=device)

    @property
    def bernoulli(self) -> bool:
        return self.channels == 1

    def probs(self, logits: Tensor) -> Tensor:
        return torch.sigmoid(logits) if self.bernoulli else torch.softmax(logits, dim=1)

    @torch.no_grad()
    def sample(self, logits: Tensor) -> Tensor:
        if self.bernoulli:
            return (torch.rand_like(logits) < torch.sigmoid(logits)).to(logits.dtype)
        k = logits.shape[1]
        flat = logits.movedim(1, -1).reshape(-1, k)
        index = torch.multinomial(torch.softmax(flat.float(), dim=-1), 1).squeeze(-1)
        onehot = F.one_hot(index, k).to(logits.dtype).reshape(*logits.movedim(1, -1).shape)
        return onehot.movedim(-1, 1)

    def log_prob(self, x: Tensor, logits: Tensor) -> Tensor:
        """log g(x|z) summed over all dimensions, in stable form."""
        if self.bernoulli:  # x·logσ(l) + (1−x)·log(1−σ(l)) = −[(1−x)·l + softplus(−l)]
            per_dim = -((1 - x) * logits + F.softplus(-logits))
        else:
            per_dim = x * torch.log_softmax(logits, dim=1)
        return per_dim.flatten(1).sum(1)

    def forward(self, z: Tensor) -> Tensor:
        logits = self.logits(z)
        return self.probs(logits) if self.relaxed else self.sample(logits)

    def sample_discrete(self, z: Tensor) -> Tensor:
        """Always a discrete sample, whatever `relaxed` says (what the probes evaluate)."""
        with torch.no_grad():
            return self.sample(self.logits(z))


class DCGANDiscreteGenerator(DiscreteHead):
    """dense → dense (BN, ReLU) → 2 transposed convs (4×4, stride 2) → C logits per pixel (28×28 or 32×32).

    A slimmed-down version of the authors' `dcgan_28_pub` (§6.7) that trains on a CPU."""

    def __init__(self, data_shape, z_dim: int = 64, width: int = 64, hidden: int = 512, prior: str = "uniform",
                 relaxed: bool = False):
        super().__init__()
        c, h, w = data_shape
        if h != w or h % 4:
            raise ValueError(f"DCGAN heads need square images with a side divisible by 4, got {h}×{w}")
        self.channels, self.side, self.z_dim, self.prior, self.relaxed = c, h, z_dim, prior, relaxed
        s = h // 4
        self.fc = nn.Sequential(nn.Linear(z_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                nn.Linear(hidden, 2 * width * s * s), nn.BatchNorm1d(2 * width * s * s), nn.ReLU())
        self.shape = (2 * width, s, s)
        self.deconv = nn.Sequential(nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
                                    nn.ConvTranspose2d(width, c, 4, 2, 1))

    def logits(self, z: Tensor) -> Tensor:
        return self.deconv(self.fc(z).view(len(z), *self.shape))


class DCGANCritic(nn.Module):
    """2 strided convs (LeakyReLU 0.2, no BN) → dense → 1, on 0/1 or one-hot images (the authors' D, slimmed)."""

    def __init__(self, data_shape, width: int = 32, hidden: int = 256):
        super().__init__()
        c, h, w = data_shape
        self.net = nn.Sequential(
            nn.Conv2d(c, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * width * (h // 4) * (w // 4), hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)


class _GenBlock(nn.Module):
    def __init__(self, dim: int, kernel: int = 5):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv1d(dim, dim, kernel, padding=kernel // 2), nn.BatchNorm1d(dim),
                                  nn.ReLU(), nn.Conv1d(dim, dim, kernel, padding=kernel // 2), nn.BatchNorm1d(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class _CriticBlock(nn.Module):
    def __init__(self, dim: int, kernel: int = 5):
        super().__init__()
        self.body = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv1d(dim, dim, kernel, padding=kernel // 2), nn.ReLU(),
                                  nn.Conv1d(dim, dim, kernel, padding=kernel // 2))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class TextGenerator(DiscreteHead):
    """z → dense (BN) → dim × L → residual 1-D conv blocks (k=5) → K logits per position (§6.3, slimmed)."""

    def __init__(self, data_shape, z_dim: int = 64, dim: int = 128, blocks: int = 3, prior: str = "uniform",
                 relaxed: bool = False):
        super().__init__()
        k, length = data_shape
        self.channels, self.length, self.z_dim, self.prior, self.relaxed = k, length, z_dim, prior, relaxed
        self.dim = dim
        self.fc = nn.Sequential(nn.Linear(z_dim, dim * length), nn.BatchNorm1d(dim * length))
        self.blocks = nn.Sequential(*[_GenBlock(dim) for _ in range(blocks)])
        self.out = nn.Sequential(nn.ReLU(), nn.Conv1d(dim, k, 5, padding=2))

    def logits(self, z: Tensor) -> Tensor:
        return self.out(self.blocks(self.fc(z).view(len(z), self.dim, self.length)))


class TextCritic(nn.Module):
    """Conv1d(k=5) → residual blocks (LReLU 0.2) → LReLU → dense → 1, on one-hot (K, L) sequences."""

    def __init__(self, data_shape, dim: int = 128, blocks: int = 3):
        super().__init__()
        k, length = data_shape
        self.net = nn.Sequential(nn.Conv1d(k, dim, 5, padding=2), *[_CriticBlock(dim) for _ in range(blocks)],
                                 nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(dim * length, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)


def discrete_dcgan(data_shape, z_dim: int = 64, g_width: int = 64, g_hidden: int = 512, d_width: int = 32,
                   d_hidden: int = 256, prior: str = "uniform", relaxed: bool = False):
    if len(data_shape) != 3:
        raise ValueError(f"model=discrete_dcgan needs (C, H, W) images, got data shape {tuple(data_shape)}")
    return (DCGANDiscreteGenerator(data_shape, z_dim, g_width, g_hidden, prior, relaxed),
            DCGANCritic(data_shape, d_width, d_hidden))


def text_resnet(data_shape, z_dim: int = 64, dim: int = 128, blocks: int = 3, prior: str = "uniform",
                relaxed: bool = False):
    if len(data_shape) != 2:
        raise ValueError(f"model=text_resnet needs one-hot (K, L) sequences, got data shape {tuple(data_shape)}")
    return TextGenerator(data_shape, z_dim, dim, blocks, prior, relaxed), TextCritic(data_shape, dim, blocks)


__all__ = ["DiscreteHead", "DCGANDiscreteGenerator", "DCGANCritic", "TextGenerator", "TextCritic",
           "discrete_dcgan", "text_resnet"]
