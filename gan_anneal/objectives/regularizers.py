"""Likelihood and entropy regularisation of the generator through score surrogates (Tao et al., 2019).

The generator loss becomes  L_adv − w_lik·R_lik(G(z)) − w_ent·R_ent(G(z)),  with two surrogates whose
*gradients* equal those of the rewarded quantities (their values mean nothing; never report them):

  likelihood term  R_lik = mean_batch Σ_dims G(z) ⊙ sg(S_μ(G(z)))     ∇R_lik = ∇ E[log μ(G(z))]
  entropy term     R_ent = −mean_batch Σ_dims G(z) ⊙ sg(S_ρ(G(z)))    ∇R_ent = ∇ H(ρ)
                   (S_ρ, the model's own score, is a denoising network trained online on generator samples)

With the RKL-GAN's KL(ρ‖μ) = −H(ρ) − E_ρ[log μ], the loss KL − w_lik·E[log μ] − w_ent·H has the optimum
ρ ∝ μ^β with β = (1 + w_lik)/(1 + w_ent). Each regulariser maps the scheduled λ to the two weights
(docs/design.md decision 1):

  regularizer=likelihood  λ ≥ 0: w_lik = λ                      (β = 1 + λ, sharper)
  regularizer=entropy     λ ≥ 0: w_ent = λ                      (β = 1/(1 + λ), flatter)
  λ < 0, anneal.negative:
    entropy (default)  the *other* term with weight |λ|: likelihood → w_ent = |λ| (β = 1/(1+|λ|)),
                       entropy → w_lik = |λ| (β = 1 + |λ|). Stable: the model score's repulsion weakens as the
                       samples spread.
    data               the same term at a negative weight with the same β: w = β − 1 or 1/β − 1 ∈ (−1, 0).
                       The data score's repulsion grows with the distance from the data: unstable past |w| ≈ ½.
    raw                w = λ literally (needs λ > −1).
  regularizer=energy      w_lik = λ = β (the critic sees a broad reference ν; λ is the inverse temperature)

The entropy regulariser's weights are the likelihood regulariser's, swapped: one table, read both ways.
"""

from __future__ import annotations

from typing import Callable, Iterable

import torch

from gan_anneal.errors import UserError
from gan_anneal.legacy import renamed

NEGATIVE_MODES = ("entropy", "data", "raw")
FORCES = ("unit", "critic")  # regularizer.force: what a normalised term's force w is measured in

Weights = tuple[float, float]  # (w_lik, w_ent)


REDUCTIONS = ("sum", "mean")  # regularizer.reduction: over the data dimensions (docs/design.md decision 2)


def score_surrogate(x: torch.Tensor, score: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """xᵀ·stopgrad(score) averaged over the batch, summed over data dimensions (β = 1 + λ exact) or averaged over
    them (mean: λ per dimension, a force 1/D as strong)."""
    per_sample = (x * score.detach()).flatten(1)
    return (per_sample.sum(1) if reduction == "sum" else per_sample.mean(1)).mean()


def check_negative(negative: str) -> str:
    negative = renamed("anneal.negative", negative)  # an older run's name for it
    if negative not in NEGATIVE_MODES:
        raise UserError(f"Unknown anneal.negative '{negative}'. Valid choices: {', '.join(NEGATIVE_MODES)} "
                        "(entropy: the other regulariser with weight |λ|, stable; data: the same one at a negative "
                        "weight; raw: w = λ, needs λ > −1).")
    return negative


def likelihood_weights(lam: float, negative: str) -> Weights:
    """(w_lik, w_ent) of regularizer=likelihood at λ."""
    if lam >= 0:
        return lam, 0.0
    if negative == "entropy":
        return 0.0, -lam
    if negative == "data":
        return 1.0 / (1.0 - lam) - 1.0, 0.0
    if lam <= -1:
        raise UserError(f"λ = {lam:g} gives β = {1 + lam:g} ≤ 0 under anneal.negative=raw; raw needs λ > −1. "
                        "Use anneal.negative=entropy (the default) for λ ≤ −1.")
    return lam, 0.0


def entropy_weights(lam: float, negative: str) -> Weights:
    """(w_lik, w_ent) of regularizer=entropy: the likelihood table with the two terms swapped."""
    w_lik, w_ent = likelihood_weights(lam, negative)
    return w_ent, w_lik


def energy_weights(lam: float, negative: str) -> Weights:
    return lam, 0.0


def no_weights(lam: float, negative: str) -> Weights:
    return 0.0, 0.0


WEIGHT_MAPS: dict[str, Callable[[float, str], Weights]] = {
    "none": no_weights, "likelihood": likelihood_weights, "entropy": entropy_weights, "energy": energy_weights}


def tempering(name: str, lam: float, weights: Weights) -> float:
    """β of the Gibbs optimum μ^β reached with these weights (for energy targets λ is β itself)."""
    return lam if name == "energy" else (1.0 + weights[0]) / (1.0 + weights[1])


class Regularizer:
    """λ → (β, w_lik, w_ent), and the weighted surrogate of the terms this run uses.

    `data_score` and `model_score` are built only for the terms the run's schedule ever weights (build.py):
    a run whose λ never goes negative trains no model score.
    """

    def __init__(self, name: str = "none", negative: str = "entropy", data_score=None, model_score=None,
                 normalize: bool = False, momentum: float = 0.99, force: str = "unit", reduction: str = "sum"):
        if name not in WEIGHT_MAPS:
            raise UserError(f"Unknown regularizer '{name}'. Valid choices: {', '.join(WEIGHT_MAPS)}.")
        self.name, self.negative = name, check_negative(negative)
        self.data_score, self.model_score = data_score, model_score
        # regularizer.normalize (docs/design.md decision 2): divide each term by the running mean of its score's
        # per-sample norm, so that w is a force in the units of a critic whose input gradient is O(1). λ then
        # weighs forces; β = 1 + λ no longer holds.
        self.normalize, self.momentum = normalize, momentum
        if force not in FORCES:
            raise UserError(f"regularizer.force must be one of {', '.join(FORCES)}, got '{force}'.")
        self.force = force
        if reduction not in REDUCTIONS:
            raise UserError(f"regularizer.reduction must be one of {', '.join(REDUCTIONS)}, got '{reduction}'.")
        self.reduction = reduction
        self.score_norms = {"lik": 0.0, "ent": 0.0, "critic": 0.0}
        # model_score.cadence: the model score learns from every critic step's batch (critic), or from one batch
        # per generator step (generator: ρ only moves there, but the score then lags behind it)
        self.track_every_critic_step = True

    def weights(self, lam: float) -> Weights:
        return WEIGHT_MAPS[self.name](lam, self.negative)

    def coefficients(self, lam: float) -> tuple[float, float, float]:
        """λ → (β, w_lik, w_ent)."""
        weights = self.weights(lam)
        return tempering(self.name, lam, weights), *weights

    def terms_used(self, lams: Iterable[float]) -> tuple[bool, bool]:
        """Whether the likelihood and the entropy term get a non-zero weight at any of these λ."""
        used = [self.weights(lam) for lam in set(lams)]
        return any(w != 0 for w, _ in used), any(w != 0 for _, w in used)

    def observe_fake(self, fake: torch.Tensor) -> None:
        """Called with fresh generator samples once per generator step (or at every critic step, with
        model_score.cadence=critic): the model score tracks ρ all run long."""
        if self.model_score is not None:
            self.model_score.update(fake)

    def surrogate(self, fake: torch.Tensor, w_lik: float, w_ent: float,
                  adversarial: torch.Tensor | None = None) -> torch.Tensor:
        """w_lik·R_lik + w_ent·R_ent, asking only the score models whose weight is non-zero. With normalize and
        force=critic, `adversarial` (the generator's adversarial loss on `fake`) sets the unit of force."""
        total = fake.new_zeros(())
        if w_lik:
            total = total + w_lik * self._term("lik", fake, self.data_score(fake))
        if w_ent:
            total = total - w_ent * self._term("ent", fake, self.model_score(fake))
        if self.normalize and self.force == "critic" and adversarial is not None and fake.requires_grad:
            (grad,) = torch.autograd.grad(adversarial, fake, retain_graph=True)
            scale = self._running("critic", (grad * grad.shape[0]).flatten(1).norm(dim=1).mean())
            total = total * scale.to(total.dtype)
        return total

    def _running(self, key: str, value: torch.Tensor) -> torch.Tensor:
        """The running mean (momentum self.momentum) of a per-sample norm: a float64 tensor on the samples' device,
        so no step waits for the device; the same IEEE arithmetic as a Python float."""
        value = value.detach().double()
        previous = self.score_norms[key]
        fresh = isinstance(previous, float) and previous == 0.0  # a Python float until the first update
        self.score_norms[key] = value if fresh else self.momentum * previous + (1 - self.momentum) * value
        return self.score_norms[key]

    def _term(self, key: str, fake: torch.Tensor, score: torch.Tensor) -> torch.Tensor:
        value = score_surrogate(fake, score, self.reduction)
        if not self.normalize:
            return value
        norm = self._running(key, score.flatten(1).norm(dim=1).mean())
        return value / norm.clamp_min(1e-12).to(value.dtype)

    def state_dict(self) -> dict:
        state = self.model_score.state_dict() if self.model_score is not None else {}
        norms = {k: float(v) for k, v in self.score_norms.items()}  # a checkpoint may wait for the device
        return {**state, "score_norms": norms} if self.normalize else state

    def load_state_dict(self, state: dict) -> None:
        state = dict(state or {})
        self.score_norms.update(state.pop("score_norms", {}))
        if self.model_score is not None and state:
            self.model_score.load_state_dict(state)


def coefficient_map(name: str, negative: str = "entropy") -> Callable[[float], tuple[float, float, float]]:
    """The λ → (β, w_lik, w_ent) map of a regulariser, without building any score model (plots, checks)."""
    return Regularizer(name, negative).coefficients
