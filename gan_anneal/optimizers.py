"""Adam as every training loop here builds it: PyTorch's fused kernel wherever it has one for the device.

Why fused: the toy MLPs take 11 optimiser steps per generator step (5 critic, 1 generator, 5 online model-score
steps with RKL and OA), and the per-parameter Python loop of the default implementation cost about a tenth of
the headline run (`ganneal train divergence=rkl anneal=oa`: 1.08–1.18× the steps/s with fused in three runs of
benchmarks/optimizer_step.py). Same algorithm, one kernel per parameter; it rounds differently at the last bit.
"""

from __future__ import annotations

from typing import Iterable

import torch

FUSED_DEVICES = ("cpu", "cuda")


def adam(params: Iterable[torch.nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    params = list(params)
    fused = bool(params) and all(p.device.type in FUSED_DEVICES and p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), fused=fused)
