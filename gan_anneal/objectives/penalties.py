"""Critic regularisers that act on input gradients."""

from __future__ import annotations

import torch


def _input_gradients(critic, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    out = critic(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1)


def _interpolates(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    n = min(len(real), len(fake))
    real, fake = real[:n], fake[:n].detach()
    eps = torch.rand((n,) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    return eps * real + (1 - eps) * fake


def wgan_gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al., 2017): E[(‖∇D(x̂)‖ − 1)²] on per-sample interpolates of real and fake."""
    grad = _input_gradients(critic, _interpolates(real, fake))
    return ((grad.norm(dim=1) - 1) ** 2).mean()


def zero_centred_gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E‖∇F(x̂)‖² on interpolates (Thanh-Tung et al., 2019): keeps an f-divergence critic smooth between the
    supports, so its output stays finite when data and samples do not overlap."""
    grad = _input_gradients(critic, _interpolates(real, fake))
    return (grad**2).sum(dim=1).mean()


def real_gradient_norm_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """A zero-centred gradient-norm penalty on real data, E‖∇F(x)‖² (the simple form of Roth et al., 2017)."""
    grad = _input_gradients(critic, real)
    return (grad**2).sum(dim=1).mean()
