"""The exact score ∇ₓ log μ(x) of an analytic (possibly unnormalised) log-density, by autograd."""

from __future__ import annotations

from typing import Callable

import torch


class ExactScore:
    def __init__(self, log_density: Callable[[torch.Tensor], torch.Tensor]):
        self.log_density = log_density

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.log_density(x).sum(), x)
        return grad
