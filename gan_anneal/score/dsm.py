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
import time
from pathlib import Path

import torch
from torch import nn

from gan_anneal.models.mlp import mlp
from gan_anneal.models.score_conv import ScoreConvNet
from gan_anneal.optimizers import adam
from gan_anneal.progress import StepProgress
from gan_anneal.results.checkpoint import load_checkpoint, save_checkpoint
from gan_anneal.results.files import compute_lock
from gan_anneal.results.rundir import atomic_write_text


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
        self.optimizer = adam(net.parameters(), lr=lr)
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


def held_out_split(target, count: int, seed: int):
    """(sample, held-out batch): a finite data set (images) gives up `count` of its points, chosen by `seed`, that
    the score network never trains on; a distribution one can draw from afresh (the toys) gives fresh draws."""
    if hasattr(target, "split_off"):
        rest, held = target.split_off(count, seed)
        return rest.sample, held
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        return target.sample, target.sample(count)


def held_out_loss(net: nn.Module, held: torch.Tensor, sigma: float, seed: int, batch: int = 256) -> float:
    """The DSM loss on the held-out points with fixed noise: comparable between evaluations and runs."""
    was_training = net.training
    net.eval()
    total = 0.0
    with torch.no_grad(), torch.random.fork_rng(devices=[held.device] if held.is_cuda else []):
        torch.manual_seed(seed + 2)
        for chunk in held.split(batch):
            total += float(dsm_loss(net, chunk, sigma)) * len(chunk)
    net.train(was_training)
    return total / len(held)


def pretrained_data_score(target, data_shape: tuple[int, ...], spec: dict, cache_dir: Path, device: torch.device,
                          log=print) -> DenoisingScore:
    """Train (or load from the cache) a frozen data-score network.

    `spec` holds everything that determines the network (dataset, σ, architecture, steps, seed, lr, batch,
    held-out count, stopping rule); its hash names the cache file, so the runs of a sweep train it once. Training
    stops at `steps`, or earlier once the held-out DSM loss (every `eval_every` steps) has not improved for
    `patience` evaluations (0: never early); the network kept is the one with the lowest held-out loss. The
    record (held-out loss, steps, seconds) is stored beside the network as dsm-<key>.json and printed.
    """

    net = build_score_network(data_shape, spec["hidden"], spec["depth"], spec.get("conv_hidden")).to(device)
    path = Path(cache_dir) / f"dsm-{cache_key(spec)}.pt"
    with compute_lock(path.with_suffix(".lock"), "data score", log):  # N jobs on an empty cache train it once
        _load_or_train(net, target, spec, path, device, log)
    net.eval().requires_grad_(False)
    return DenoisingScore(net, spec["sigma"])


def _load_or_train(net: nn.Module, target, spec: dict, path: Path, device: torch.device, log) -> None:

    record_path = path.with_suffix(".json")
    if path.exists():
        net.load_state_dict(load_checkpoint(path, map_location=device)["net"])
        record = json.loads(record_path.read_text()) if record_path.exists() else {}
        held = f", held-out DSM loss {record['held_out_loss']:.4g}" if "held_out_loss" in record else ""
        log(f"data score: loaded {path}{held}")
    else:
        steps, every, patience = int(spec["steps"]), int(spec.get("eval_every") or 0), int(spec.get("patience") or 0)
        log(f"data score: training a denoising score network (σ = {spec['sigma']}) for up to {steps} steps of "
            f"{spec['batch_size']} → {path}")
        outer_rng = torch.get_rng_state()  # keep the GAN's random stream independent of the cache state
        torch.manual_seed(spec["seed"])
        sample, held = held_out_split(target, int(spec.get("held_out") or 256), int(spec["seed"]))
        optimizer = torch.optim.Adam(net.parameters(), lr=spec["lr"])
        best, best_state, since_best, curve, step = float("inf"), None, 0, [], 0
        started = time.perf_counter()
        with StepProgress("data score", steps, log) as progress:
            while step < steps:
                loss = dsm_loss(net, sample(spec["batch_size"]), spec["sigma"])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                if (every and step % every == 0) or step == steps:
                    value = held_out_loss(net, held, spec["sigma"], int(spec["seed"]))
                    curve.append([step, round(value, 5), round(time.perf_counter() - started, 2)])
                    if value < best:
                        best, since_best = value, 0
                        best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                    else:
                        since_best += 1
                    progress.update(step, f"held-out DSM loss {value:.4g} (best {best:.4g})")
                    if patience and since_best >= patience:
                        break
                elif step % 10 == 0:
                    progress.update(step)
        net.load_state_dict(best_state)
        seconds = time.perf_counter() - started
        torch.set_rng_state(outer_rng)
        record = {"held_out_loss": best, "held_out": len(held), "steps_run": step, "max_steps": steps,
                  "stopped_early": step < steps, "seconds": round(seconds, 1), "curve": curve, "spec": spec}
        save_checkpoint(path, {"net": net.state_dict(), "spec": json.dumps(spec, sort_keys=True)})
        atomic_write_text(record_path, json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")
        log(f"data score: held-out DSM loss {best:.4g} after {step} steps ({seconds:.0f} s)"
            + (", stopped: no improvement" if step < steps else ""))
