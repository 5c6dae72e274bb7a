"""Adversarial objectives, written on the critic's raw output F (a logit-like scalar per sample).

Every f-divergence row follows the BGAN parameterisation (Hjelm et al., 2018, Table 1): the output
activation is chosen so that the optimal critic is F*(x) = log p(x)/q(x) and the importance weight is
log w = F. The critic minimises  L_D = E_Q[f*(T(F))] − E_P[T(F)]; the rows are data, not classes.

The VA paper's objectives are rows of this table:
  rkl  — reverse-KL row, minimax generator. Its critic D = −exp(h) with h = −F, so D* = −ρ/μ.
  jsd  — GAN row, non-saturating generator (saturating selectable).
and `wgan` (WGAN-GP) stands beside them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from gan_anneal.errors import UserError
from gan_anneal.objectives.penalties import (
    real_gradient_norm_penalty,
    wgan_gradient_penalty,
    zero_centred_gradient_penalty,
)
from gan_anneal.registry import Registry

Tensor = torch.Tensor
LOG2 = math.log(2.0)
EXP_LIMIT = 50.0  # exp(50) ≈ 5e21 stays finite in fp32; beyond that the run is diverging anyway


def _exp(x: Tensor) -> Tensor:
    return torch.exp(x.clamp(max=EXP_LIMIT))


@dataclass(frozen=True)
class FRow:
    """One f-divergence: T(F) on data samples ("pos") and f*(T(F)) on model samples ("neg")."""

    name: str
    pos: Callable[[Tensor], Tensor]
    neg: Callable[[Tensor], Tensor]
    estimates: str  # what −L_D converges to at the optimal critic


F_ROWS: dict[str, FRow] = {
    row.name: row
    for row in [
        FRow("gan", lambda f: -F.softplus(-f), F.softplus, "2·JSD(P,Q) − log 4"),
        FRow("js", lambda f: LOG2 - F.softplus(-f), lambda f: F.softplus(f) - LOG2, "2·JSD(P,Q)"),
        FRow("kl", lambda f: f + 1, _exp, "KL(P‖Q)"),
        FRow("rkl", lambda f: -_exp(-f), lambda f: f - 1, "KL(Q‖P)"),
        FRow("sh", lambda f: 1 - _exp(-f / 2), lambda f: _exp(f / 2) - 1, "squared Hellinger ∫(√p − √q)²"),
    ]
}

GENERATOR_LOSSES = ("minimax", "proxy", "boundary")
CRITIC_PENALTIES = {"roth": real_gradient_norm_penalty, "gp0": zero_centred_gradient_penalty}


class Divergence:
    """Turns raw critic outputs into losses. Holds settings only, never state."""

    name: str = "divergence"
    has_importance_weights: bool = False

    def critic_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        raise NotImplementedError

    def generator_loss(self, fake_out: Tensor) -> Tensor:
        raise NotImplementedError

    def penalty(self, critic, real: Tensor, fake: Tensor) -> Tensor | None:
        return None

    def log_weight(self, out: Tensor) -> Tensor:
        raise UserError(f"divergence '{self.name}' has no importance weights; choose an f-divergence")

    def estimate(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        """The variational bound the critic maximises (−L_D): a divergence estimate at the optimum."""
        return -self.critic_loss(real_out, fake_out)


class FDivergence(Divergence):
    has_importance_weights = True

    def __init__(self, name: str, row: str, generator_loss: str = "minimax", penalty: str = "none",
                 penalty_weight: float = 0.0):
        if row not in F_ROWS:
            raise UserError(f"Unknown f-divergence row '{row}'. Valid: {', '.join(F_ROWS)}.")
        if generator_loss not in GENERATOR_LOSSES:
            raise UserError(
                f"Unknown generator_loss '{generator_loss}'. Valid: {', '.join(GENERATOR_LOSSES)}."
            )
        if penalty not in ("none", *CRITIC_PENALTIES):
            raise UserError(f"Unknown critic penalty '{penalty}'. Valid: none, {', '.join(CRITIC_PENALTIES)}.")
        self.name, self.row, self.generator_loss_kind = name, F_ROWS[row], generator_loss
        self.penalty_kind, self.penalty_weight = penalty, float(penalty_weight)

    def critic_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return self.row.neg(fake_out).mean() - self.row.pos(real_out).mean()

    def generator_loss(self, fake_out: Tensor) -> Tensor:
        if self.generator_loss_kind == "minimax":
            return -self.row.neg(fake_out).mean()
        if self.generator_loss_kind == "proxy":
            return -self.row.pos(fake_out).mean()
        return 0.5 * (fake_out**2).mean()  # boundary seeking: drive log w = F to 0

    def penalty(self, critic, real: Tensor, fake: Tensor) -> Tensor | None:
        if self.penalty_kind == "none" or self.penalty_weight == 0:
            return None
        return self.penalty_weight * CRITIC_PENALTIES[self.penalty_kind](critic, real, fake)

    def log_weight(self, out: Tensor) -> Tensor:
        return out


class WassersteinGP(Divergence):
    name = "wgan"

    def __init__(self, name: str = "wgan", gp_weight: float = 10.0):
        self.name, self.gp_weight = name, float(gp_weight)

    def critic_loss(self, real_out: Tensor, fake_out: Tensor) -> Tensor:
        return fake_out.mean() - real_out.mean()

    def generator_loss(self, fake_out: Tensor) -> Tensor:
        return -fake_out.mean()

    def penalty(self, critic, real: Tensor, fake: Tensor) -> Tensor | None:
        if self.gp_weight == 0:
            return None
        return self.gp_weight * wgan_gradient_penalty(critic, real, fake)


DIVERGENCES: Registry[Divergence] = Registry("divergence")


@DIVERGENCES.register("rkl")
def _rkl(generator_loss: str = "minimax", **settings) -> Divergence:
    return FDivergence("rkl", "rkl", generator_loss, **settings)


@DIVERGENCES.register("jsd")
def _jsd(saturating: bool = False, generator_loss: str | None = None, **settings) -> Divergence:
    loss = generator_loss or ("minimax" if saturating else "proxy")
    return FDivergence("jsd", "gan", loss, **settings)


@DIVERGENCES.register("wgan")
def _wgan(gp_weight: float = 10.0) -> Divergence:
    return WassersteinGP("wgan", gp_weight)


def _register_family(prefix: str, default_loss: str) -> None:
    for row in F_ROWS:
        name = f"{prefix}_{row}"

        def factory(generator_loss: str = default_loss, _name=name, _row=row, **settings) -> Divergence:
            return FDivergence(_name, _row, generator_loss, **settings)

        DIVERGENCES.register(name)(factory)


_register_family("bgan", "boundary")  # boundary-seeking generator: ½·F(G(z))²
_register_family("fgan", "minimax")  # f-GAN (Nowozin et al., 2016): the generator minimises the bound


def build_divergence(settings: dict) -> Divergence:
    settings = dict(settings)
    return DIVERGENCES.build(settings.pop("name"), **settings)
