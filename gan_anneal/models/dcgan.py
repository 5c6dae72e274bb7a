"""DCGAN generator and critic for square images whose side is a power of two (8 … 128).

For 32×32 (docs/design.md decision 6, `model=dcgan32`):
    G: z (128) → linear → 4×4×512, BN, ReLU → [4×4 transposed conv, stride 2, BN, ReLU] × 3 (256, 128, 64
       channels; 8, 16, 32 pixels) → 3×3 conv to the image's channels → tanh (values in [−1, 1]).
    D: [4×4 conv, stride 2, LeakyReLU 0.2] × 3 (64, 128, 256 channels; 16, 8, 4 pixels) → linear → one raw
       scalar per image (shape (n,)); the divergence decides what it means.
64×64 (`model=dcgan64`) adds one stage on each side (G 512-512-256-128-64, D 64-128-256-512). Widths are
`base · 2^k`, capped at `max_width`. `model=dcgan` builds the same family for whatever size the data have.

The critic has no normalisation by default (`critic_norm=none`), which WGAN-GP's per-sample gradient
penalty requires and which the other divergences tolerate; `batch` (the original DCGAN) and `layer`
(per-sample, safe with the penalty) are switches.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gan_anneal.errors import UserError


def _stages(resolution: int) -> int:
    stages = int(round(math.log2(resolution))) - 2
    if resolution < 8 or resolution > 128 or 2 ** (stages + 2) != resolution:
        raise UserError(f"The DCGAN models need square images whose side is a power of two from 8 to 128; "
                        f"this data set's images are {resolution} pixels wide. Resize them (dataset.size=32).")
    return stages


class DCGANGenerator(nn.Module):
    def __init__(self, z_dim: int, channels: int, resolution: int, base: int = 64, max_width: int = 512):
        super().__init__()
        self.z_dim = z_dim
        stages = _stages(resolution)
        widths = [min(base * 2 ** (stages - i), max_width) for i in range(stages + 1)]  # 4×4 … full size
        self.project = nn.Sequential(nn.Linear(z_dim, 4 * 4 * widths[0]))
        self.width0 = widths[0]
        layers: list[nn.Module] = [nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            layers += [nn.ConvTranspose2d(w_in, w_out, 4, stride=2, padding=1), nn.BatchNorm2d(w_out),
                       nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(widths[-1], channels, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.project(z).view(len(z), self.width0, 4, 4))

    def sample_noise(self, n: int, device=None) -> torch.Tensor:
        return torch.randn(n, self.z_dim, device=device)


def _norm(kind: str, width: int, size: int) -> list[nn.Module]:
    if kind == "none":
        return []
    if kind == "batch":
        return [nn.BatchNorm2d(width)]
    if kind == "layer":
        return [nn.LayerNorm([width, size, size])]
    raise UserError(f"model.critic_norm must be none, batch, layer or auto, got '{kind}'.")


class DCGANCritic(nn.Module):
    def __init__(self, channels: int, resolution: int, base: int = 64, max_width: int = 512,
                 norm: str = "none"):
        super().__init__()
        stages = _stages(resolution)
        layers: list[nn.Module] = []
        width, size = channels, resolution
        for i in range(stages):
            out, size = min(base * 2**i, max_width), size // 2
            layers.append(nn.Conv2d(width, out, 4, stride=2, padding=1))
            if i > 0:  # as in DCGAN: no normalisation right after the input
                layers += _norm(norm, out, size)
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            width = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width * 4 * 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1)).squeeze(-1)


def dcgan(data_shape, z_dim: int = 128, base: int = 64, max_width: int = 512, critic_norm: str = "none",
          resolution: int | None = None, name: str = "dcgan"):
    if len(data_shape) != 3 or data_shape[1] != data_shape[2]:
        raise UserError(f"model={name} needs square images (C, H, W); this data set gives samples of shape "
                        f"{tuple(data_shape)}. Use model=mlp for flat data.")
    channels, side = data_shape[0], data_shape[1]
    if resolution is not None and side != resolution:
        raise UserError(f"model={name} is for {resolution}×{resolution} images, but the data set's images are "
                        f"{side}×{side}. Use model=dcgan, which fits any power-of-two size.")
    generator = DCGANGenerator(int(z_dim), channels, side, int(base), int(max_width))
    critic = DCGANCritic(channels, side, int(base), int(max_width), critic_norm)
    return generator, critic
