"""Denoising score matching (Vincent, 2011): a network s(x̃) trained so that σ·s(x + σε) ≈ −ε estimates
the score of the data density smoothed by N(0, σ²I).

`DenoisingScore` is the frozen data-score model (trained once before the GAN, cached on disk keyed by
everything that determines it). `OnlineDenoisingScore` tracks the generator's own score for the entropy
regulariser: one DSM step on fresh generator samples at every critic step.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from gan_anneal.models.mlp import mlp
from gan_anneal.results.checkpoint import load_checkpoint, save_checkpoint


class ScoreMLP(nn.Module):
    """s(x) for flat data: an MLP from R^d to R^d."""

    def __init__(self, dim: int, hidden: int = 128, depth: int = 3):
        super().__init__()
        self.net = mlp(dim, dim, hidden, depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_score_network(data_shape: tuple[int, ...], hidden: int, depth: int, conv_hidden: int | None = None) -> nn.Module:
    if len(data_shape) == 1:
        return ScoreMLP(data_shape[0], hidden, depth)
    from gan_anneal.models.score_conv import ScoreConvNet  # images

    return ScoreConvNet(data_shape[0], conv_hidden or hidden)


def dsm_loss(net: nn.Module, x: torch.Tensor, sigma: float) -> torch.Tensor:
    eps = torch.randn_like(x)
    return ((sigma * net(x + sigma * eps) + eps) ** 2).flatten(1).sum(1).mean()


class DenoisingScore:
    def __init__(self, net: nn.Module, sigma: float):
        self.net, self.sigma = net, sigma

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class OnlineDenoisingScore(DenoisingScore):
    def __init__(self, net: nn.Module, sigma: float, lr: float, updates: int = 1):
        super().__init__(net, sigma)
        self.optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        self.updates = int(updates)  # DSM steps per batch of samples seen (fresh noise each)

    def update(self, samples: torch.Tensor) -> float:
        for _ in range(self.updates):
            loss = dsm_loss(self.net, samples.detach(), self.sigma)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        return loss.detach()

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])


def cache_key(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    return Path(os.environ.get("GANNEAL_CACHE", Path.home() / ".cache" / "ganneal")) / "scores"


def pretrained_data_score(sample: Callable[[int], torch.Tensor], data_shape: tuple[int, ...], spec: dict,
                          cache_dir: Path, device: torch.device, log=print) -> DenoisingScore:
    """Train (or load from the cache) a frozen data-score network.

    `spec` holds everything that determines the network (dataset, σ, architecture, steps, seed, lr, batch);
    its hash names the cache file, so the runs of a sweep train it once.
    """
    net = build_score_network(data_shape, spec["hidden"], spec["depth"], spec.get("conv_hidden")).to(device)
    path = Path(cache_dir) / f"dsm-{cache_key(spec)}.pt"
    if path.exists():
        net.load_state_dict(load_checkpoint(path, map_location=device)["net"])
        log(f"data score: loaded {path}")
    else:
        log(f"data score: training a denoising score network for {spec['steps']} steps → {path}")
        outer_rng = torch.get_rng_state()  # keep the GAN's random stream independent of the cache state
        torch.manual_seed(spec["seed"])
        optimizer = torch.optim.Adam(net.parameters(), lr=spec["lr"])
        for _ in range(spec["steps"]):
            loss = dsm_loss(net, sample(spec["batch_size"]), spec["sigma"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        torch.set_rng_state(outer_rng)
        save_checkpoint(path, {"net": net.state_dict(), "spec": json.dumps(spec, sort_keys=True)})
    net.eval().requires_grad_(False)
    return DenoisingScore(net, spec["sigma"])
