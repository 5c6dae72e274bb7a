"""train.penalty_every = k: the critic's gradient penalty on every k-th critic step only, weighted k (lazy
regularisation), so its expected gradient per critic step is unchanged."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.parametrize("every, n_critic, steps, expected_calls", [(1, 5, 2, 10), (5, 5, 3, 3), (2, 5, 2, 5)])
def test_the_penalty_runs_on_every_kth_critic_step_weighted_k(make_cfg, every, n_critic, steps, expected_calls):
    from gan_anneal.train.build import build_experiment
    from gan_anneal.train.loop import train_step

    exp = build_experiment(make_cfg("divergence=rkl", f"train.n_critic={n_critic}", f"train.penalty_every={every}",
                                    "train.batch_size=32", "device=cpu"), log=lambda m: None)
    original, seen = exp.divergence.penalty, []

    def counted(critic, real, fake):
        value = original(critic, real, fake)
        seen.append(float(value.detach()))
        return value

    exp.divergence.penalty = counted
    for step in range(steps):
        record = train_step(exp, step)
        assert float(record["penalty"]) == pytest.approx(every * seen[-1], rel=1e-6)  # this step's last, weighted
        assert torch.isfinite(torch.as_tensor(float(record["loss_d"])))
    assert len(seen) == expected_calls
