"""Exponential moving average of the generator's weights (`train.ema`, a decay such as 0.999; 0 turns it off).

After every training step, θ_ema ← d·θ_ema + (1 − d)·θ with d = min(decay, (1 + k)/(10 + k)) at the k-th
update (the usual warm-up, so the average is not dominated by the random initial weights). Buffers (batch
norm's running statistics) are copied from the live generator. The averaged copy stays in eval mode, is saved
in every checkpoint, and is what the final metrics, the final picture and `ganneal evaluate` use when present.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from gan_anneal.errors import UserError


class EMA:
    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise UserError(f"train.ema must be 0 (off) or a decay in (0, 1) such as 0.999, got {decay}.")
        self.decay = float(decay)
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for averaged, live in zip(self.model.parameters(), model.parameters()):
            averaged.lerp_(live.detach(), 1.0 - d)
        for averaged, live in zip(self.model.buffers(), model.buffers()):
            averaged.copy_(live)

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])


def build_ema(generator: nn.Module, decay) -> EMA | None:
    decay = float(decay or 0.0)
    return EMA(generator, decay) if decay != 0.0 else None
