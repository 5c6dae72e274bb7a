"""Fully connected generator and critic for low-dimensional targets."""

from __future__ import annotations

import torch
from torch import nn

from gan_anneal.errors import UserError


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

    @torch.no_grad()
    def init_blob(self, center, scale: float, n_probe: int = 4096) -> None:
        """A deliberately poor start: rescale the last layer so that G(z) is a tight blob of spread `scale`
        around `center` (per axis), measured on a probe batch of noise drawn from the seeded RNG."""
        last = self.net[-1]
        center = torch.as_tensor(center, dtype=last.bias.dtype)
        if center.shape != last.bias.shape:
            raise UserError(f"model.init_center has {center.numel()} values; the data have {last.bias.numel()} "
                            "dimensions. Give one coordinate per dimension.")
        hidden = self.net[:-1](self.sample_noise(n_probe))
        out = hidden @ last.weight.T
        factor = scale / out.std(0).clamp(min=1e-8)
        last.weight.mul_(factor[:, None])
        last.bias.copy_(center - out.mean(0) * factor)


class MLPCritic(nn.Module):
    """Returns one raw scalar per sample (shape (n,)); the divergence decides what it means."""

    def __init__(self, x_dim: int, hidden: int = 128, depth: int = 3):
        super().__init__()
        self.net = mlp(x_dim, 1, hidden, depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)
