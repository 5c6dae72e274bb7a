"""Everything a training step needs, built from the composed config before the loop starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from gan_anneal.config import check_values
from gan_anneal.data import build_dataset
from gan_anneal.data.targets import Target
from gan_anneal.errors import UserError
from gan_anneal.models import build_models
from gan_anneal.objectives.divergences import Divergence, build_divergence
from gan_anneal.objectives.generator_updates import build_generator_update
from gan_anneal.objectives.regularizers import Regularizer
from gan_anneal.objectives.schedules import Schedule, build_schedule
from gan_anneal.optimizers import adam
from gan_anneal.score.dsm import (
    OnlineDenoisingScore,
    build_score_network,
    default_cache_dir,
    pretrained_data_score,
)
from gan_anneal.score.exact import ExactScore
from gan_anneal.train.ema import build_ema
from gan_anneal.train.precision import apply_device_options, backend_settings, compile_models


def resolve_device(settings: DictConfig, model_threads: int | None = None) -> torch.device:
    """The device; on a CPU, device.threads or else the model's own cpu_threads (model/mlp.yaml says why)."""
    name = settings.name
    threads = settings.get("threads") or model_threads
    if threads:
        torch.set_num_threads(int(threads))
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device={name} was asked for, but PyTorch sees no CUDA device here. Use device=cpu or "
                        "device=auto.")
    if name.startswith("cuda:"):
        index, count = name.split(":", 1)[1], torch.cuda.device_count()
        if not index.isdigit() or int(index) >= count:
            there = ", ".join(f"cuda:{k} ({torch.cuda.get_device_name(k)})" for k in range(count))
            raise UserError(f"device={name}: this machine has {count} GPU{'s' * (count != 1)}: {there}.")
    return torch.device(name)  # "cuda" is the current GPU: a parallel sweep's slot (hydra_app.gpu_slot) sets it


def as_dict(node: DictConfig) -> dict:
    return OmegaConf.to_container(node, resolve=True)


def build_data_score(cfg: DictConfig, target: Target, data_shape, device, log):
    settings = as_dict(cfg.score)
    name = settings.pop("name")
    if name == "exact":
        if not hasattr(target, "log_prob"):
            raise UserError(f"score=exact needs an analytic density, and dataset '{cfg.dataset.name}' has none. "
                            "Use score=dsm.")
        sigma = float(settings.get("smoothing") or 0.0)
        if sigma > 0 and hasattr(target, "smoothed"):
            target = target.smoothed(sigma)
        elif sigma > 0:  # an energy: its density is the input, not data a score is estimated from
            log(f"score: '{cfg.dataset.name}' has no closed-form smoothed density; using its exact score "
                f"(score.smoothing={sigma} applies to the mixtures)")
        return ExactScore(target.log_prob)
    if name == "dsm":
        cache_dir = settings.pop("cache_dir", None) or default_cache_dir()
        spec = {"dataset": as_dict(cfg.dataset), **settings}
        return pretrained_data_score(target, data_shape, spec, Path(cache_dir), device, log)
    raise UserError(f"Unknown score '{name}'. Valid choices: exact, dsm.")


def surrogate_reduction(setting: str, data_shape) -> str:
    """regularizer.reduction=auto: the sum over dimensions for flat data (β = 1 + λ exact: the toys, the Gibbs
    check), the mean for images, where the sum collapsed every static |λ| ≥ 10 on mnist_small (README)."""
    if setting != "auto":
        return setting
    return "mean" if len(data_shape) > 1 else "sum"


LAMBDA_COVERED = 50.0  # the paper's grid and the Gibbs check reach |λ| = 50 (β from 1/51 to 51)


def warn_far_lambda(lam: float, log: Callable[[str], None]) -> None:
    """A λ far beyond what the schedules and the Gibbs check cover trains, but says so: β = 1 + λ (or 1/(1 + |λ|))
    is then a claim nothing here has checked."""
    if abs(lam) > 2 * LAMBDA_COVERED:
        log(f"warning: |λ| reaches {abs(lam):g}, far beyond |λ| ≤ {LAMBDA_COVERED:g}, the range the paper's grid and "
            "`ganneal gibbs-check` cover (β from 1/51 to 51); the regulariser then outweighs the critic and the "
            "β it names is unchecked. Training goes on.")


def build_regularizer(cfg: DictConfig, target: Target, data_shape, device, schedule: Schedule, log) -> Regularizer:
    """The regulariser with the score models of the terms its schedule ever weights, and no others."""
    name = cfg.regularizer.name if cfg.anneal.name != "none" else "none"
    regularizer = Regularizer(name, cfg.anneal.get("negative", "entropy"),
                              normalize=bool(cfg.regularizer.get("normalize", False)),
                              force=str(cfg.regularizer.get("force", "unit")),
                              reduction=surrogate_reduction(str(cfg.regularizer.get("reduction", "sum")), data_shape))
    total = cfg.train.steps
    lams = {schedule(step, total) for step in range(total)}
    warn_far_lambda(max(lams, key=abs), log)
    uses_likelihood, uses_entropy = regularizer.terms_used(lams)
    if uses_likelihood:
        regularizer.data_score = (ExactScore(target.log_prob) if name == "energy"
                                  else build_data_score(cfg, target, data_shape, device, log))
    if uses_entropy:  # the model's own score, tracked online from the first step to the last
        ms = cfg.model_score
        net = build_score_network(data_shape, ms.hidden, ms.depth, ms.get("conv_hidden")).to(device)
        regularizer.model_score = OnlineDenoisingScore(net, ms.sigma, ms.lr, ms.get("updates", 1))
        regularizer.track_every_critic_step = ms.get("cadence", "critic") == "critic"
    return regularizer


@dataclass
class Experiment:
    cfg: DictConfig
    device: torch.device
    target: Target
    generator: nn.Module
    critic: nn.Module
    divergence: Divergence
    regularizer: Regularizer
    schedule: Schedule
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    data_shape: tuple[int, ...]
    generator_update: object
    ema: object = None  # train/ema.py's EMA of the generator, or None (train.ema=0)
    precision: object = None  # train/precision.py's Precision (device.precision); None = plain fp32
    backend: dict = field(default_factory=dict)  # the backend flags set for this run (train/precision.py)

    @cached_property
    def step_settings(self) -> SimpleNamespace:
        """cfg.train with the optimiser's rates as plain values, read once: an OmegaConf attribute read costs about
        90 µs, and a toy step made 23 of them (4% of the headline run's time)."""
        o = self.cfg.optim
        return SimpleNamespace(**as_dict(self.cfg.train), lr_g=float(o.lr_g), lr_d=float(o.lr_d), decay=str(o.decay))


def build_experiment(cfg: DictConfig, log: Callable[[str], None] = print) -> Experiment:
    check_values(cfg)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device, cfg.model.get("cpu_threads"))

    backend = backend_settings(device, bool(cfg.device.get("deterministic", False)))
    target = build_dataset(as_dict(cfg.dataset)).to(device)
    data_shape = tuple(target.sample(1).shape[1:])
    generator, critic = build_models(as_dict(cfg.model), data_shape, as_dict(cfg.divergence))
    generator, critic = generator.to(device), critic.to(device)

    precision = apply_device_options(cfg.device, device, generator, critic)  # channels_last, precision
    divergence = build_divergence(as_dict(cfg.divergence))
    schedule = build_schedule(as_dict(cfg.anneal))
    regularizer = build_regularizer(cfg, target, data_shape, device, schedule, log)
    o = cfg.optim
    betas = tuple(o.betas)
    opt_g = adam(generator.parameters(), lr=o.lr_g, betas=betas)
    opt_d = adam(critic.parameters(), lr=o.lr_d, betas=betas)
    generator_update = build_generator_update(as_dict(cfg.generator_update))

    ema = build_ema(generator, cfg.train.get("ema", 0.0))

    compile_models(cfg.device, generator, critic)  # device.compile
    return Experiment(cfg, device, target, generator, critic, divergence, regularizer, schedule, opt_g, opt_d,
                      data_shape, generator_update, ema=ema, precision=precision, backend=backend)
