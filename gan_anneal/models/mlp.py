"""Fully connected generator and critic for low-dimensional targets."""

from __future__ import annotations

import torch
from torch import nn


def mlp(in_dim: int, out_dim: int, hidden: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class MLPGenerator(nn.Module):
    def __init__(self, z_dim: int, x_dim: int, hidden: int = 128, depth: int = 3):
        super().__init__()
        self.z_dim = z_dim
        self.net = mlp(z_dim, x_dim, hidden, depth)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    def sample_noise(self, n: int, device=None) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=device)


class MLPCritic(nn.Module):
    """Returns one raw scalar per sample (shape (n,)); the divergence decides what it means."""

    def __init__(self, x_dim: int, hidden: int = 128, depth: int = 3):
        super().__init__()
        self.net = mlp(x_dim, 1, hidden, depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)
