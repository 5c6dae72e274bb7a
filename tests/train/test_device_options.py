"""The fast path's device options change nothing numerically beyond their documented tolerances.

Tolerances (docs/benchmarks.md), measured on one training step from the same seed and initial weights:
  device.precision=fp32 (default), device.channels_last on an MLP   bit-for-bit
  device.channels_last on a DCGAN           losses within 1e-4 relative; first Adam update direction cos ≥ 0.99
  device.precision=bf16                     losses within 3e-2 relative; first Adam update direction cos ≥ 0.9
  device.precision=fp16 (gradient scaler)   losses within 1e-2 relative; first Adam update direction cos ≥ 0.9;
                                            the gradient penalty is computed in fp32
  device.compile (slow)                     losses within 1e-4 relative; first Adam update direction cos ≥ 0.99
Adam's first update is about lr·sign(g), so a few gradient entries near zero may flip sign under a different
summation order: the update direction's cosine, not elementwise equality, is the meaningful comparison.
"""

from __future__ import annotations

import pytest
import torch

MLP = ("model.hidden=32", "model.depth=2", "train.batch_size=64")
DCGAN = ("dataset=digits", "model.base=8", "model.z_dim=16", "train.batch_size=16")


def one_step(make_cfg, *overrides):
    from gan_anneal.train.build import build_experiment
    from gan_anneal.train.loop import train_step

    exp = build_experiment(make_cfg("device=cpu", *overrides), log=lambda msg: None)
    nets = {"g": exp.generator, "d": exp.critic}
    before = {f"{n}.{k}": p.detach().clone() for n, m in nets.items() for k, p in m.named_parameters()}
    torch.manual_seed(1)
    out = train_step(exp, 0)
    after = {f"{n}.{k}": p.detach() for n, m in nets.items() for k, p in m.named_parameters()}
    delta = torch.cat([(after[k] - before[k]).flatten() for k in before])
    losses = {k: float(out[k]) for k in ("loss_d", "loss_g", "penalty")}
    return exp, losses, delta, after


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def assert_close(ref, got, rel: float, min_cos: float):
    _, loss_ref, delta_ref, _ = ref
    _, loss_got, delta_got, _ = got
    for key in loss_ref:
        assert loss_got[key] == pytest.approx(loss_ref[key], rel=rel, abs=1e-6), (key, loss_ref, loss_got)
    assert cosine(delta_ref, delta_got) >= min_cos


def test_fp32_defaults_are_bit_for_bit(make_cfg):
    _, loss_a, _, params_a = one_step(make_cfg, *MLP)
    _, loss_b, _, params_b = one_step(make_cfg, *MLP, "device.precision=fp32", "device.channels_last=true")
    assert loss_a == loss_b
    assert all(torch.equal(params_a[k], params_b[k]) for k in params_a)


def test_fp32_experiment_has_no_autocast(make_cfg):
    exp, *_ = one_step(make_cfg, *MLP)
    assert not exp.precision.enabled and not exp.precision.scalers


def test_channels_last_dcgan_matches_within_tolerance(make_cfg):
    ref = one_step(make_cfg, *DCGAN)
    got = one_step(make_cfg, *DCGAN, "device.channels_last=true")
    assert got[0].critic.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert_close(ref, got, rel=1e-4, min_cos=0.99)


@pytest.mark.parametrize("model", [MLP, DCGAN], ids=["mlp", "dcgan"])
def test_bf16_autocast_matches_fp32_within_tolerance(make_cfg, model):
    ref = one_step(make_cfg, *model)
    got = one_step(make_cfg, *model, "device.precision=bf16")
    assert_close(ref, got, rel=3e-2, min_cos=0.9)
    assert all(p.dtype == torch.float32 for p in got[3].values())  # the master weights stay fp32


def test_fp16_with_scaler_and_fp32_gradient_penalty(make_cfg):
    overrides = (*DCGAN, "divergence=wgan")
    ref = one_step(make_cfg, *overrides)
    got = one_step(make_cfg, *overrides, "device.precision=fp16")
    assert_close(ref, got, rel=1e-2, min_cos=0.9)
    exp = got[0]
    assert len(exp.precision.scalers) == 2  # one gradient scaler per optimiser

    # the penalty is evaluated outside autocast: fp32 all the way through
    real = exp.target.sample(8)
    fake = exp.generator(exp.generator.sample_noise(8, exp.device)).detach()
    penalty = exp.divergence.penalty(exp.critic, real, fake)
    assert penalty.dtype == torch.float32 and torch.isfinite(penalty)


def test_regulariser_under_bf16_stays_fp32(make_cfg):
    ref = one_step(make_cfg, *MLP, "anneal=static", "anneal.lam=1", "score=exact")
    got = one_step(make_cfg, *MLP, "anneal=static", "anneal.lam=1", "score=exact", "device.precision=bf16")
    assert_close(ref, got, rel=3e-2, min_cos=0.9)


def test_unknown_precision_is_a_user_error(make_cfg):
    from gan_anneal.errors import UserError

    with pytest.raises(UserError, match="device.precision"):
        one_step(make_cfg, *MLP, "device.precision=fp8")


def test_fp16_scaler_state_is_checkpointed_and_resumed(train_run, make_cfg):
    overrides = (*MLP, "device=cpu", "device.precision=fp16", "train.steps=6", "train.log_every=2",
                 "train.checkpoint_every=2", "train.eval_samples=100")
    _, run = train_run(*overrides, name="fp16", should_stop=lambda step: step == 4)
    from gan_anneal.results.checkpoint import load_checkpoint

    state = load_checkpoint(run.checkpoint)
    assert set(state["precision"]) == {"0", "1"} and "scale" in state["precision"]["0"]
    outcome, _ = train_run(name="fp16", cfg=run.read_config())
    assert outcome == "done"


@pytest.mark.slow
def test_compile_matches_within_tolerance(make_cfg):
    ref = one_step(make_cfg, *MLP)
    got = one_step(make_cfg, *MLP, "device.compile=true")
    assert_close(ref, got, rel=1e-4, min_cos=0.99)
