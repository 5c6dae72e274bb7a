"""Generator-gradient estimators for boundary-seeking GANs (Hjelm et al., 2018; reference/bgan.md §4, §5.3).

`PolicyGradient` — discrete BGAN. For each of N priors z, the generator's logits are computed once and M samples
x^(m|n) ~ g(x|z^(n)) are drawn. The critic's log-weight log w = F (every f-divergence row, §2.3) is turned into
self-normalised importance weights w̃ — softmax over the M axis per z (default, `weight_norm=per_z`) or over all
M·N samples (`weight_norm=batch`, the global-β ablation) — held fixed (stop-gradient), and

    loss = −(1/N) Σ_n Σ_m w̃(x^(m|n)) · log g(x^(m|n) | z^(n))        (log g summed over all dimensions)

`estimator=reinforce` is the reverse-KL / REINFORCE form (§4.5): reward r = log w − log Z with log Z an exponential
moving average of the batch log-mean-exp of F (its state is checkpointed), loss = −mean(r · log g).

`BoundaryLogZ` — continuous BGAN with the target of the authors' Theano default (§5.3 b): ½·(F(G(z)) − log Z)², with
the same moving-average log Z. (`reparam` with a bgan_* divergence is the paper's ½·F² with target 0.)

Both log diagnostics the authors log: ESS per z (= M for uniform weights), weight variance, log Z, E[F_fake].
"""

from __future__ import annotations

import math

import torch

from gan_anneal.errors import UserError

Tensor = torch.Tensor


class _RunningLogZ:
    """Exponential moving average of log-mean-exp(F) over a batch: the baseline / log β estimate."""

    def __init__(self, gamma: float):
        if not 0.0 <= gamma < 1.0:
            raise UserError(f"the log-normaliser's moving-average factor must be in [0, 1), got {gamma}")
        self.gamma = float(gamma)
        self.log_z: Tensor | float | None = None  # a float64 tensor on the device: no host sync per step

    def update(self, log_w: Tensor) -> Tensor | float:
        """Return the estimate to use for this batch (the previous one), then fold this batch in."""
        batch = torch.logsumexp(log_w.detach().flatten().double(), 0) - math.log(log_w.numel())
        current = batch if self.log_z is None else self.log_z
        self.log_z = batch if self.log_z is None else self.gamma * self.log_z + (1 - self.gamma) * batch
        return current

    def state_dict(self) -> dict:
        return {"log_z": None if self.log_z is None else float(self.log_z)}

    def load_state_dict(self, state: dict) -> None:
        self.log_z = state.get("log_z")


def normalised_weights(log_w: Tensor, weight_norm: str) -> Tensor:
    """w̃ from log w of shape (M, N): per z (softmax over M) or over the batch, scaled so Σ_m w̃ = 1 on average."""
    if weight_norm == "per_z":
        return torch.softmax(log_w, dim=0)
    n = log_w.shape[1]
    return torch.softmax(log_w.flatten(), dim=0).view_as(log_w) * n


def weight_diagnostics(log_w: Tensor) -> dict[str, Tensor]:
    """ESS per z (mean_n 1/Σ_m w̃², w̃ normalised per z), Var(M·w̃), Var(log w), log Z per z, E[F]: 0-dim tensors,
    made plain numbers only on logging steps (no host sync inside a step)."""
    m = log_w.shape[0]
    log_w = log_w.detach()
    w = torch.softmax(log_w, dim=0)
    return {"ess": (1.0 / (w**2).sum(0)).mean(),
            "weight_var": (m * w).var(unbiased=False),
            "log_w_var": log_w.var(unbiased=False),
            "log_z": (torch.logsumexp(log_w, 0) - math.log(m)).mean(),
            "f_fake": log_w.mean()}


class PolicyGradient:
    def __init__(self, samples_per_z: int = 20, weight_norm: str = "per_z", estimator: str = "bgan",
                 logz_gamma: float = 0.95):
        if int(samples_per_z) < 1:
            raise UserError(f"bgan.samples_per_z must be ≥ 1, got {samples_per_z}")
        if weight_norm not in ("per_z", "batch"):
            raise UserError(f"bgan.weight_norm must be per_z or batch, got '{weight_norm}'")
        if estimator not in ("bgan", "reinforce"):
            raise UserError(f"generator_update.estimator must be bgan or reinforce, got '{estimator}'")
        self.samples_per_z, self.weight_norm, self.estimator = int(samples_per_z), weight_norm, estimator
        self.baseline = _RunningLogZ(logz_gamma)

    def sample(self, generator, n: int, device) -> tuple[Tensor, Tensor, Tensor]:
        """(x, log g(x|z), log w): x is (M·N, ...) detached; log g (M, N) differentiable; log w filled by `loss`."""
        if not hasattr(generator, "logits") or not hasattr(generator, "log_prob"):
            raise UserError("generator_update=policy_gradient needs a discrete generator (model=discrete_dcgan or "
                            "text_resnet, which expose logits(z) and log_prob(x, logits)).")
        m = self.samples_per_z
        logits = generator.logits(generator.sample_noise(n, device))  # once per z
        repeated = logits.unsqueeze(0).expand(m, *logits.shape).reshape(m * n, *logits.shape[1:])
        x = generator.sample(repeated.detach())
        log_g = generator.log_prob(x, repeated).view(m, n)
        return x, log_g, logits

    def loss(self, generator, critic, divergence, n: int, device) -> tuple[Tensor, None, dict]:
        if getattr(generator, "relaxed", False):
            raise UserError("generator_update=policy_gradient needs model.relaxed=false (it samples the generator).")
        x, log_g, _ = self.sample(generator, n, device)
        with torch.no_grad():
            log_w = divergence.log_weight(critic(x)).view(self.samples_per_z, n).float()
        extras = weight_diagnostics(log_w)
        if self.estimator == "bgan":
            w_tilde = normalised_weights(log_w, self.weight_norm)
            loss = -(w_tilde * log_g).sum(0).mean()
        else:
            log_z = self.baseline.update(log_w)
            loss = -((log_w - log_z) * log_g).mean()
            extras["log_z_ema"] = log_z
        return loss, None, extras

    def state_dict(self) -> dict:
        return self.baseline.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.baseline.load_state_dict(state)


class BoundaryLogZ:
    """Continuous BGAN regressed to a running log-normaliser: ½·mean((log w(G(z)) − log Z)²)."""

    def __init__(self, logz_gamma: float = 0.995):
        self.baseline = _RunningLogZ(logz_gamma)

    def loss(self, generator, critic, divergence, n: int, device) -> tuple[Tensor, Tensor, dict]:
        fake = generator(generator.sample_noise(n, device))
        log_w = divergence.log_weight(critic(fake))
        log_z = self.baseline.update(log_w)
        return 0.5 * ((log_w - log_z) ** 2).mean(), fake, {"log_z_ema": log_z, "f_fake": log_w.detach().mean()}

    def state_dict(self) -> dict:
        return self.baseline.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.baseline.load_state_dict(state)
