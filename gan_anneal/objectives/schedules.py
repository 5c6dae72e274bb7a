"""Annealing schedules: pure functions (step, total steps) → λ. Nothing to save on resume.

With s = step / total on the generator-iteration clock (docs/design.md decision 4):
    static  λ
    pma     +λ₀·d(s)                  positive, shrinking to 0
    nma     −λ₀·d(s)                  negative, shrinking to 0
    oa      λ₀·d(s)·cos(2π·n·s)       changes sign, with shrinking swings
    ramp    start → end over a fraction of training, then held (the energy experiments: λ plays β)
d(s) = 1 − s (linear) or exp(−k·s). Dynamic schedules are 0 during the warm-up and in the final hold
window, so the last part of training targets μ itself; the schedule runs over the time in between.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable

from gan_anneal.errors import UserError
from gan_anneal.registry import Registry

Schedule = Callable[[int, int], float]
SCHEDULES: Registry[Schedule] = Registry("anneal schedule")


def _decay(u: float, kind: str, rate: float) -> float:
    if kind == "linear":
        return 1.0 - u
    if kind == "exp":
        return math.exp(-rate * u)
    raise UserError(f"Unknown anneal.decay '{kind}'. Valid choices: linear, exp.")


def _dynamic(shape: Callable[[float, float], float], step: int, total: int, *, lam: float, decay: str,
             decay_rate: float, warmup: float, hold: float, cycles: float) -> float:
    s = step / max(total, 1)
    span = 1.0 - warmup - hold
    if s < warmup or s >= 1.0 - hold or span <= 0:
        return 0.0
    u = (s - warmup) / span
    return lam * _decay(u, decay, decay_rate) * shape(u, cycles)


def _check_window(warmup: float, hold: float) -> None:
    if not (0 <= warmup < 1 and 0 <= hold < 1 and warmup + hold < 1):
        raise UserError(
            f"anneal.warmup ({warmup}) and anneal.hold ({hold}) are fractions of training: each in [0, 1) "
            "and together below 1."
        )


def _register_dynamic(name: str, shape: Callable[[float, float], float]) -> None:
    @SCHEDULES.register(name)
    def factory(lam: float = 1.0, decay: str = "linear", decay_rate: float = 5.0, warmup: float = 0.0,
                hold: float = 0.1, cycles: float = 4, **_ignored) -> Schedule:
        _check_window(warmup, hold)
        _decay(0.0, decay, decay_rate)  # validate the name now, not mid-run
        return partial(_dynamic, shape, lam=float(lam), decay=decay, decay_rate=float(decay_rate),
                       warmup=float(warmup), hold=float(hold), cycles=float(cycles))


_register_dynamic("pma", lambda u, n: 1.0)
_register_dynamic("nma", lambda u, n: -1.0)
_register_dynamic("oa", lambda u, n: math.cos(2 * math.pi * n * u))


def _constant(step: int, total: int, *, value: float) -> float:
    return value


@SCHEDULES.register("none")
def _none(**_ignored) -> Schedule:
    return partial(_constant, value=0.0)


@SCHEDULES.register("static")
def _static(lam: float = 0.0, **_ignored) -> Schedule:
    return partial(_constant, value=float(lam))


def _ramp(step: int, total: int, *, start: float, end: float, fraction: float) -> float:
    s = step / max(total, 1)
    return end if s >= fraction else start + (end - start) * s / fraction


@SCHEDULES.register("ramp")
def _ramp_factory(start: float = 0.0, end: float = 1.0, fraction: float = 0.6, **_ignored) -> Schedule:
    if not 0 < fraction <= 1:
        raise UserError(f"anneal.fraction must be in (0, 1], got {fraction}.")
    return partial(_ramp, start=float(start), end=float(end), fraction=float(fraction))


def build_schedule(settings: dict) -> Schedule:
    settings = dict(settings)
    settings.pop("negative", None)  # read by the regulariser's λ → (β, w) map, not by the schedule
    return SCHEDULES.build(settings.pop("name"), **settings)
