"""Likelihood and entropy regularisation of the generator through score surrogates (Tao et al., 2019).

The generator loss becomes  L_adv − w(t)·R(G(z)),  where R is a surrogate whose *gradient* equals that of
the rewarded quantity (its value means nothing; never report it as a likelihood):

  likelihood   R = mean_batch Σ_dims G(z) ⊙ sg(S_μ(G(z)))      ∇R = ∇ E[log μ(G(z))]
  entropy      R = −mean_batch Σ_dims G(z) ⊙ sg(S_ρ(G(z)))     ∇R = ∇ H(ρ) (the model score S_ρ is tracked online)
  energy       the likelihood surrogate with the exact score −∇ψ of an unnormalised target; here λ plays β

Each regulariser maps the scheduled λ to the inverse temperature β of the Gibbs optimum μ^β and to the
weight w (DESIGN.md decision 1):
  likelihood   λ ≥ 0: β = 1 + λ;            λ < 0: symmetric β = 1/(1+|λ|), raw β = 1 + λ;   w = β − 1
  entropy      λ ≥ 0: β = 1/(1 + λ);        λ < 0: symmetric β = 1 + |λ|,   raw β = 1/(1 + λ); w = 1/β − 1
  energy       β = λ, w = λ
"""

from __future__ import annotations

import math

import torch

from gan_anneal.errors import UserError

NEGATIVE_MODES = ("symmetric", "raw")


def score_surrogate(x: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
    """xᵀ·stopgrad(score), summed over data dimensions and averaged over the batch."""
    return (x * score.detach()).flatten(1).sum(1).mean()


class Regularizer:
    name = "none"

    def coefficients(self, lam: float) -> tuple[float, float]:
        """λ → (β, w)."""
        return 1.0, 0.0

    def observe_fake(self, fake: torch.Tensor) -> None:
        """Called with fresh generator samples at every critic step."""

    def surrogate(self, fake: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("the 'none' regulariser has weight 0 and is never asked for a surrogate")

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def _check_negative(negative: str) -> None:
    if negative not in NEGATIVE_MODES:
        raise UserError(f"Unknown anneal.negative '{negative}'. Valid choices: {', '.join(NEGATIVE_MODES)}.")


def _raw_beta_guard(beta: float, lam: float) -> float:
    if beta <= 0 or not math.isfinite(beta):
        raise UserError(f"λ = {lam} gives β = {beta} under anneal.negative=raw; raw needs λ > −1.")
    return beta


class LikelihoodRegularizer(Regularizer):
    name = "likelihood"

    def __init__(self, score, negative: str = "symmetric"):
        _check_negative(negative)
        self.score, self.negative = score, negative

    def coefficients(self, lam: float) -> tuple[float, float]:
        if lam >= 0:
            beta = 1.0 + lam
        elif self.negative == "symmetric":
            beta = 1.0 / (1.0 + abs(lam))
        else:
            beta = _raw_beta_guard(1.0 + lam, lam)
        return beta, beta - 1.0

    def surrogate(self, fake: torch.Tensor) -> torch.Tensor:
        return score_surrogate(fake, self.score(fake))


class EntropyRegularizer(Regularizer):
    name = "entropy"

    def __init__(self, model_score, negative: str = "symmetric"):
        _check_negative(negative)
        self.model_score, self.negative = model_score, negative

    def coefficients(self, lam: float) -> tuple[float, float]:
        if lam >= 0:
            beta = 1.0 / (1.0 + lam)
        elif self.negative == "symmetric":
            beta = 1.0 + abs(lam)
        else:
            beta = _raw_beta_guard(1.0 / (1.0 + lam) if lam > -1 else -1.0, lam)
        return beta, 1.0 / beta - 1.0

    def observe_fake(self, fake: torch.Tensor) -> None:
        self.model_score.update(fake)

    def surrogate(self, fake: torch.Tensor) -> torch.Tensor:
        return -score_surrogate(fake, self.model_score(fake))

    def state_dict(self) -> dict:
        return self.model_score.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.model_score.load_state_dict(state)


class EnergyRegularizer(LikelihoodRegularizer):
    """For targets known only through an energy: the critic sees a broad reference ν, so the optimum is
    ∝ ν·exp(−λψ) and λ is the inverse temperature itself."""

    name = "energy"

    def coefficients(self, lam: float) -> tuple[float, float]:
        return lam, lam


_BY_NAME = {"none": Regularizer, "likelihood": LikelihoodRegularizer, "entropy": EntropyRegularizer,
            "energy": EnergyRegularizer}


def coefficient_map(name: str, negative: str = "symmetric"):
    """The λ → (β, w) map of a regulariser, without building its score model (for plots and checks)."""
    if name not in _BY_NAME:
        raise UserError(f"Unknown regularizer '{name}'. Valid choices: {', '.join(_BY_NAME)}.")
    cls = _BY_NAME[name]
    return (cls() if cls is Regularizer else cls(None, negative)).coefficients
