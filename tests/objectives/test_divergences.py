"""Each objective against closed forms: optimal critics, the divergences their bounds estimate, gradient signs."""

from __future__ import annotations

import math

import pytest
import torch

from gan_anneal.objectives.divergences import DIVERGENCES
from gan_anneal.objectives.penalties import wgan_gradient_penalty

# Two discrete distributions with rational masses, so "samples" that repeat each atom in proportion to its
# mass turn the losses' batch means into exact expectations.
P_COUNTS = torch.tensor([5, 3, 2])  # data μ
Q_COUNTS = torch.tensor([2, 2, 6])  # model ρ
P, Q = P_COUNTS.double() / 10.0, Q_COUNTS.double() / 10.0


def expand(per_atom: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    return torch.repeat_interleave(per_atom, counts)


def maximise_bound(divergence, steps: int = 400) -> tuple[torch.Tensor, float]:
    """Optimise a free critic output per atom; return it and the value of the bound."""
    f = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([f], lr=1, max_iter=steps, tolerance_grad=1e-12, tolerance_change=1e-14,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = divergence.critic_loss(expand(f, P_COUNTS), expand(f, Q_COUNTS))
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        value = -divergence.critic_loss(expand(f, P_COUNTS), expand(f, Q_COUNTS))
    return f.detach(), float(value)


def test_rkl_optimal_critic_is_minus_rho_over_mu_and_bound_is_reverse_kl():
    f, value = maximise_bound(DIVERGENCES.build("rkl"))
    d_star = -torch.exp(-f)  # the VA paper's critic D = −exp(h), h = −F
    assert torch.allclose(d_star, -Q / P, atol=1e-6)
    assert value == pytest.approx(float((Q * (Q / P).log()).sum()), abs=1e-8)  # KL(ρ‖μ)


def test_jsd_optimal_logit_is_log_mu_over_rho_and_bound_is_2jsd_minus_log4():
    f, value = maximise_bound(DIVERGENCES.build("jsd"))
    assert torch.allclose(f, (P / Q).log(), atol=1e-6)
    m = (P + Q) / 2
    jsd = 0.5 * float((P * (P / m).log()).sum() + (Q * (Q / m).log()).sum())
    assert value == pytest.approx(2 * jsd - math.log(4), abs=1e-8)


def test_jsd_generator_losses_non_saturating_and_saturating():
    logits = torch.tensor([-3.0, 0.0, 2.0])
    ns = DIVERGENCES.build("jsd").generator_loss(logits)
    sat = DIVERGENCES.build("jsd", saturating=True).generator_loss(logits)
    assert float(ns) == pytest.approx(float(-torch.log(torch.sigmoid(logits)).mean()), rel=1e-6)
    assert float(sat) == pytest.approx(float(torch.log(1 - torch.sigmoid(logits)).mean()), rel=1e-6)


@pytest.mark.parametrize("name", ["rkl", "jsd", "wgan"])
def test_generator_is_pushed_towards_higher_critic_output(name):
    """Every generator loss decreases where the critic says "more like data" (F larger)."""
    out = torch.tensor([0.3, -0.2, 1.0], requires_grad=True)
    DIVERGENCES.build(name).generator_loss(out).backward()
    assert (out.grad < 0).all()


@pytest.mark.parametrize("name", ["rkl", "jsd", "wgan"])
def test_critic_is_pushed_up_on_data_and_down_on_samples(name):
    real = torch.zeros(4, requires_grad=True)
    fake = torch.zeros(4, requires_grad=True)
    DIVERGENCES.build(name).critic_loss(real, fake).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()


def test_wgan_critic_loss_is_the_mean_difference():
    div = DIVERGENCES.build("wgan")
    assert float(div.critic_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.0, -2.0]))) == pytest.approx(-3.0)


@pytest.mark.parametrize("slope,expected", [(1.0, 0.0), (2.0, 1.0), (0.5, 0.25)])
def test_gradient_penalty_of_a_linear_critic(slope, expected):
    direction = torch.tensor([0.6, 0.8])  # unit norm
    critic = lambda x: (x * (slope * direction)).sum(1)  # noqa: E731  ‖∇‖ = slope everywhere
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    assert float(wgan_gradient_penalty(critic, real, fake)) == pytest.approx(expected, abs=1e-6)


def test_unknown_divergence_names_the_choices():
    from gan_anneal.errors import UserError

    with pytest.raises(UserError, match="Valid choices: .*jsd.*rkl.*wgan"):
        DIVERGENCES.build("nope")


@pytest.mark.parametrize("slope", [0.5, 2.0])
def test_zero_centred_penalties_of_a_linear_critic(slope):
    from gan_anneal.objectives.penalties import real_gradient_norm_penalty, zero_centred_gradient_penalty

    direction = torch.tensor([0.6, 0.8])
    critic = lambda x: (x * (slope * direction)).sum(1)  # noqa: E731
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    assert float(zero_centred_gradient_penalty(critic, real, fake)) == pytest.approx(slope**2, rel=1e-6)
    assert float(real_gradient_norm_penalty(critic, real, fake)) == pytest.approx(slope**2, rel=1e-6)


def test_rkl_penalty_is_configurable_and_validated():
    from gan_anneal.errors import UserError

    assert DIVERGENCES.build("rkl", penalty="gp0", penalty_weight=1.0).penalty_weight == 1.0
    with pytest.raises(UserError, match="gp0"):
        DIVERGENCES.build("rkl", penalty="bogus", penalty_weight=1.0)
