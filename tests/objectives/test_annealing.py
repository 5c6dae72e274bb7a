"""Variational annealing: schedules, the λ → (β, w_lik, w_ent) map, the score surrogate, score estimators, the Gibbs optimum."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import invoke

from gan_anneal.errors import UserError
from gan_anneal.objectives.regularizers import coefficient_map, score_surrogate
from gan_anneal.objectives.schedules import build_schedule

PAPER_LAMBDAS = [-50, -10, -1, -0.1, -0.01, 0, 0.01, 0.1, 1, 10, 50]
T = 1000


def values(name: str, **settings) -> list[float]:
    schedule = build_schedule({"name": name, **settings})
    return [schedule(step, T) for step in range(T + 1)]


def test_pma_is_positive_nma_negative_and_both_shrink_to_zero_in_the_hold_window():
    pma, nma = values("pma", lam=2.0), values("nma", lam=2.0)
    assert pma[0] == pytest.approx(2.0) and nma[0] == pytest.approx(-2.0)
    assert all(v >= 0 for v in pma) and all(v <= 0 for v in nma)
    assert all(a >= b for a, b in zip(pma, pma[1:]))  # monotone
    assert all(v == 0 for v in pma[900:]) and all(v == 0 for v in nma[900:])  # hold = 10%


def test_oa_changes_sign_with_shrinking_swings():
    oa = values("oa", lam=1.0, cycles=4)
    signs = [math.copysign(1, v) for v in oa[:900] if abs(v) > 1e-9]
    assert sum(a != b for a, b in zip(signs, signs[1:])) >= 7  # 4 cycles: 8 sign changes
    peaks = [max(abs(v) for v in oa[i:i + 225]) for i in range(0, 900, 225)]
    assert all(a > b for a, b in zip(peaks, peaks[1:]))
    assert all(v == 0 for v in oa[900:])


def test_warmup_and_exponential_decay():
    pma = values("pma", lam=1.0, warmup=0.2, hold=0.0, decay="exp", decay_rate=5.0)
    assert all(v == 0 for v in pma[:200]) and pma[200] == pytest.approx(1.0)
    assert pma[600] == pytest.approx(math.exp(-2.5), rel=1e-6)  # halfway through the active span


def test_static_none_and_ramp():
    assert set(values("static", lam=-0.5)) == {-0.5}
    assert set(values("none")) == {0.0}
    ramp = values("ramp", start=0.0, end=1.0, fraction=0.5)
    assert ramp[0] == 0 and ramp[250] == pytest.approx(0.5) and all(v == 1.0 for v in ramp[500:])


def test_bad_schedule_settings_are_user_errors():
    with pytest.raises(UserError, match="warmup"):
        build_schedule({"name": "oa", "warmup": 0.6, "hold": 0.5})
    with pytest.raises(UserError, match="decay"):
        build_schedule({"name": "pma", "decay": "cosine"})


def test_likelihood_map_positive_lambda_sharpens_with_the_data_score():
    lik = coefficient_map("likelihood")
    assert lik(1.0) == (2.0, 1.0, 0.0) and lik(0.0) == (1.0, 0.0, 0.0)


@pytest.mark.parametrize("lam", [-50, -10, -1, -0.1, -0.01])
def test_negative_lambda_goes_through_the_other_regulariser_by_default(lam):
    """anneal.negative=entropy: likelihood λ < 0 rewards the entropy with |λ|, and vice versa (β = 1/(1+|λ|), 1+|λ|)."""
    beta, w_lik, w_ent = coefficient_map("likelihood")(lam)
    assert (w_lik, w_ent) == (0.0, -lam) and beta == pytest.approx(1 / (1 + abs(lam)))
    beta, w_lik, w_ent = coefficient_map("entropy")(lam)
    assert (w_lik, w_ent) == (-lam, 0.0) and beta == pytest.approx(1 + abs(lam))
    # the two regularisers are one table read both ways: likelihood at λ = entropy at −λ for λ < 0
    assert coefficient_map("likelihood")(lam)[1:] == coefficient_map("entropy")(-lam)[1:]


def test_beta_follows_from_the_optimum_of_the_weighted_free_energy():
    """KL(ρ‖μ) − w_lik·E[log μ] − w_ent·H(ρ) over Gaussians ρ = N(0, v), μ = N(0, 1): the minimising variance is 1/β."""
    v = torch.logspace(-3, 3, 200_001, dtype=torch.float64)
    for name in ("likelihood", "entropy"):
        for lam in PAPER_LAMBDAS:
            beta, w_lik, w_ent = coefficient_map(name)(lam)
            entropy = 0.5 * torch.log(2 * math.pi * math.e * v)
            expected_log_mu = -0.5 * math.log(2 * math.pi) - 0.5 * v
            kl = -entropy - expected_log_mu
            objective = kl - w_lik * expected_log_mu - w_ent * entropy
            best = float(v[objective.argmin()])
            assert best == pytest.approx(1 / beta, rel=1e-3), (name, lam)


def test_data_route_keeps_the_same_regulariser_at_a_negative_weight():
    lik = coefficient_map("likelihood", "data")
    beta, w_lik, w_ent = lik(-1.0)
    assert beta == pytest.approx(0.5) and w_lik == pytest.approx(-0.5) and w_ent == 0
    for lam in PAPER_LAMBDAS:  # the whole of the paper's grid stays well posed
        beta, w_lik, w_ent = lik(lam)
        assert beta > 0 and w_lik > -1 and w_lik == pytest.approx(beta - 1) and w_ent == 0
    assert lik(-0.01)[1] == pytest.approx(-0.01, rel=0.02)  # consistent with λ near 0
    beta, w_lik, w_ent = coefficient_map("entropy", "data")(-1.0)
    assert beta == pytest.approx(2.0) and w_ent == pytest.approx(-0.5) and w_lik == 0
    assert coefficient_map("likelihood", "symmetric")(-1.0) == lik(-1.0)  # the old name of `data`, in stored runs


def test_raw_negative_mode_uses_lambda_literally_and_rejects_lambda_below_minus_one():
    raw = coefficient_map("likelihood", "raw")
    assert raw(-0.5) == (0.5, -0.5, 0.0)
    with pytest.raises(UserError, match="λ > −1"):
        raw(-1.0)
    with pytest.raises(UserError, match="anneal.negative"):
        coefficient_map("likelihood", "nope")


def test_entropy_map_flattens_for_positive_lambda():
    beta, w_lik, w_ent = coefficient_map("entropy")(1.0)
    assert beta == pytest.approx(0.5) and (w_lik, w_ent) == (0.0, 1.0)
    assert coefficient_map("energy")(0.3) == (0.3, 0.3, 0.0)


def test_entropy_surrogate_gradient_equals_gradient_of_the_entropy():
    """With the exact model score, ∇θ of −G(z)ᵀ·sg(S_ρ(G(z))) is ∇θ H(ρ_θ): for G(z) = a·z, H = log|a| + const."""
    from gan_anneal.objectives.regularizers import Regularizer

    a = torch.tensor(1.7, requires_grad=True)
    z = torch.randn(200_000, 1, generator=torch.Generator().manual_seed(0))
    reg = Regularizer("entropy", model_score=lambda x: -x / a.detach() ** 2)  # score of N(0, a²)
    (grad,) = torch.autograd.grad(reg.surrogate(a * z, 0.0, 1.0), a)
    assert float(grad) == pytest.approx(1 / 1.7, rel=0.02)  # d/da log a


def test_only_the_terms_a_schedule_weights_get_a_score_model(train_run):
    """A positive-only schedule trains no model score; one that goes negative trains it from the first step."""
    from gan_anneal.config import compose
    from gan_anneal.train.build import build_experiment

    base = ["train.steps=50", "device=cpu"]
    pma = build_experiment(compose([*base, "anneal=pma"]), log=lambda m: None).regularizer
    assert pma.data_score is not None and pma.model_score is None
    nma = build_experiment(compose([*base, "anneal=nma"]), log=lambda m: None).regularizer
    assert nma.data_score is None and nma.model_score is not None
    oa = build_experiment(compose([*base, "anneal=oa"]), log=lambda m: None).regularizer
    assert oa.data_score is not None and oa.model_score is not None
    none = build_experiment(compose([*base, "anneal=none"]), log=lambda m: None).regularizer
    assert none.data_score is None and none.model_score is None

    outcome, run = train_run("anneal=oa", "train.steps=40", "train.log_every=1", "train.eval_samples=200", name="oa")
    assert outcome == "done"
    records = [r for r in run.read_metrics() if "loss_d" in r]
    assert any(r["w_lik"] > 0 and r["w_ent"] == 0 for r in records)  # OA uses both terms in turn
    assert any(r["w_ent"] > 0 and r["w_lik"] == 0 for r in records)
    assert all({"lam", "beta", "w_lik", "w_ent"} <= set(r) for r in records)


def test_surrogate_gradient_equals_gradient_of_log_density():
    """∇θ G(z)ᵀ·sg(S(G(z))) = ∇θ log μ(G(z)) for an analytic μ (a ring of Gaussians) and a tiny G."""
    from gan_anneal.data.targets import ring
    from gan_anneal.score.exact import ExactScore

    torch.manual_seed(0)
    target = ring(std=0.7)
    g = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    z = torch.randn(64, 3)

    x = g(z)
    grads_surrogate = torch.autograd.grad(score_surrogate(x, ExactScore(target.log_prob)(x)), list(g.parameters()))
    grads_direct = torch.autograd.grad(target.log_prob(g(z)).mean(), list(g.parameters()))
    for a, b in zip(grads_surrogate, grads_direct):
        assert torch.allclose(a, b, atol=1e-5)
    # ...but not the value: the surrogate is no likelihood
    with torch.no_grad():
        value = float(score_surrogate(x, ExactScore(target.log_prob)(x)))
        assert not math.isclose(value, float(target.log_prob(x).mean()))


def test_dsm_score_agrees_with_the_exact_score_where_the_mixture_has_mass(tmp_path):
    from gan_anneal.data.targets import ring
    from gan_anneal.score.dsm import pretrained_data_score
    from gan_anneal.score.exact import ExactScore

    torch.manual_seed(0)
    target = ring(n_modes=3, radius=1.5, std=0.5)
    spec = {"dataset": "ring3", "sigma": 0.1, "steps": 3000, "hidden": 128, "depth": 3, "lr": 1e-3,
            "batch_size": 512, "seed": 0}
    messages = []
    dsm = pretrained_data_score(target, (2,), spec, tmp_path, torch.device("cpu"), log=messages.append)
    x = target.sample(4000)
    x = x[target.log_prob(x) > target.log_prob(x).median()]  # the denser half: where a score can be learnt
    # DSM with noise σ estimates the score of μ smoothed by N(0, σ²) (Tweedie): compare with that, in closed form
    exact = ExactScore(target.smoothed(0.1).log_prob)(x)
    estimate = dsm(x)
    cosine = torch.nn.functional.cosine_similarity(estimate, exact, dim=1)
    relative_l2 = ((estimate - exact) ** 2).sum(1).mean().sqrt() / (exact**2).sum(1).mean().sqrt()
    assert float(cosine.median()) > 0.97 and float(relative_l2) < 0.35  # measured: 0.985 and 0.28

    # a second build with the same spec loads the cache instead of training
    again = pretrained_data_score(target, (2,), spec, tmp_path, torch.device("cpu"), log=messages.append)
    assert "training" in messages[0] and "held-out DSM loss" in messages[-2] and "loaded" in messages[-1]
    assert "held-out DSM loss" in messages[-1]  # the record stored beside the network, shown again on load
    assert torch.equal(again(x), estimate)


def test_dsm_pretraining_stops_on_its_held_out_loss_and_stores_the_record(tmp_path):
    """lr = 0: the held-out loss never improves, so training stops after `patience` evaluations past the first."""
    import json

    from gan_anneal.data.images import digits
    from gan_anneal.score.dsm import pretrained_data_score

    target = digits()
    spec = {"dataset": "digits", "sigma": 0.1, "steps": 1000, "hidden": 32, "depth": 2, "conv_hidden": 4,
            "lr": 0.0, "batch_size": 8, "seed": 0, "held_out": 64, "eval_every": 5, "patience": 2}
    messages = []
    pretrained_data_score(target, (1, 8, 8), spec, tmp_path, torch.device("cpu"), log=messages.append)
    (record_file,) = tmp_path.glob("dsm-*.json")
    record = json.loads(record_file.read_text())
    assert record["steps_run"] == 15 and record["stopped_early"] and record["held_out"] == 64
    assert [step for step, _, _ in record["curve"]] == [5, 10, 15]
    assert f"{record['held_out_loss']:.4g}" in messages[-1] and "stopped" in messages[-1]
    rest, held = target.split_off(64, 0)  # held out means never trained on: the two partition the data set
    held_uint8 = ((held + 1) * 127.5).round().to(torch.uint8)
    assert len(rest) + len(held) == len(target) and len(held) == 64
    assert torch.equal(torch.cat([rest.images, held_uint8]).long().sum(0), target.images.long().sum(0))


@pytest.mark.parametrize("divergence", ["rkl", "jsd", "wgan"])
@pytest.mark.parametrize("regularizer", ["likelihood", "entropy"])
def test_every_divergence_regularizer_anneal_combination_trains(train_run, divergence, regularizer):
    for anneal in ["none", "static", "pma", "nma", "oa", "ramp"]:
        outcome, run = train_run(f"divergence={divergence}", f"regularizer={regularizer}", f"anneal={anneal}",
                                 "anneal.lam=0.5" if anneal == "static" else f"anneal={anneal}",
                                 "train.steps=4", "train.log_every=2", "train.eval_samples=200",
                                 name=f"{divergence}-{regularizer}-{anneal}")
        assert outcome == "done", (anneal, run.read_summary())
        records = [r for r in run.read_metrics() if "loss_d" in r]
        assert records and all({"lam", "beta", "w_lik", "w_ent"} <= set(r) for r in records)


def test_gibbs_optimum_at_a_small_budget(tmp_path):
    """Catches sign errors: sharpening, flattening and the negative map all move the variance the right way."""
    from gan_anneal.experiments.gibbs import run_gibbs_check

    grid = [("likelihood", "entropy", 3.0), ("likelihood", "entropy", -1.0), ("entropy", "entropy", 1.0)]
    rows = run_gibbs_check(tmp_path, grid=grid, steps=500, jobs=2)  # two single-thread processes; errors ≤ 1.5% here
    measured = {(r.regularizer, r.lam): r for r in rows}
    assert all(r.status == "done" for r in rows)
    assert measured[("likelihood", 3.0)].predicted_var == pytest.approx(0.25)
    for r in rows:
        assert r.rel_error < 0.10, (r.regularizer, r.lam, r.measured_var, r.predicted_var)
    assert (tmp_path / "gibbs.md").exists() and (tmp_path / "gibbs.png").exists()


def test_snapshot_metrics_feed_the_learning_dynamics_plot(train_run, tmp_path):


    runs = []
    for anneal in ("none", "oa"):
        outcome, run = train_run(f"anneal={anneal}", "train.steps=20", "train.log_every=5", "train.sample_every=10",
                                 "train.snapshot_samples=300", "train.eval_samples=300", name=anneal)
        assert outcome == "done"
        evals = [r for r in run.read_metrics() if "eval/modes_covered" in r]
        assert [r["step"] for r in evals] == [10, 20]  # a snapshot at 10, the final metrics at 20
        runs.append(str(run.path))
    out = tmp_path / "curves.png"
    result = invoke("curves", *runs, "-k", "eval/kl_target_model", "-k", "lam", "--out", str(out))
    assert result.returncode == 0, result.output
    assert out.stat().st_size > 1000
    result = invoke("curves", *runs, "-k", "eval/nope")
    assert result.returncode == 2 and "Logged:" in result.output


def test_normalised_surrogate_is_a_unit_force_whatever_the_score_scale():
    """regularizer.normalize: the per-sample force w·S/mean‖S‖ does not depend on the score's scale (a σ = 0.05
    mixture's score is ~100× a critic's input gradient), and the running norm is saved for an exact resume."""
    from gan_anneal.objectives.regularizers import Regularizer

    x = torch.randn(256, 2, requires_grad=True)
    forces = []
    for scale in (1.0, 400.0):
        reg = Regularizer("likelihood", normalize=True, data_score=lambda v, s=scale: -s * v)
        (grad,) = torch.autograd.grad(reg.surrogate(x, 1.0, 0.0), x)
        forces.append(grad * len(x))  # the batch mean divides each sample's force by the batch size
        assert float(forces[-1].norm(dim=1).mean()) == pytest.approx(1.0, rel=1e-5)
        state = reg.state_dict()
        again = Regularizer("likelihood", normalize=True)
        again.load_state_dict(state)
        assert {k: float(v) for k, v in again.score_norms.items()} == {k: float(v) for k, v in reg.score_norms.items()}
    assert torch.allclose(forces[0], forces[1], atol=1e-6)
    plain = Regularizer("likelihood", data_score=lambda v: -400.0 * v)
    (grad,) = torch.autograd.grad(plain.surrogate(x, 1.0, 0.0), x)
    assert float((grad * len(x)).norm(dim=1).mean()) > 100  # unnormalised: the raw score's size


def test_critic_force_unit_scales_the_term_by_the_adversarial_per_sample_force():
    """regularizer.force=critic: a term of weight w pushes each sample with w × the mean per-sample force of the
    generator's adversarial loss (here a linear critic whose force is ‖c‖ = 5 for every sample)."""
    from gan_anneal.objectives.regularizers import Regularizer

    x = torch.randn(256, 2, requires_grad=True)
    c = torch.tensor([3.0, 4.0])
    adversarial = -(x * c).sum(1).mean()
    reg = Regularizer("likelihood", normalize=True, force="critic", data_score=lambda v: -400.0 * v)
    (grad,) = torch.autograd.grad(reg.surrogate(x, 0.5, 0.0, adversarial=adversarial), x)
    assert float((grad * len(x)).norm(dim=1).mean()) == pytest.approx(0.5 * 5.0, rel=1e-5)
    assert reg.score_norms["critic"] == pytest.approx(5.0, rel=1e-6)
    with pytest.raises(UserError, match="regularizer.force"):
        Regularizer("likelihood", normalize=True, force="newton")


@pytest.mark.slow
def test_lambda_minus_ten_lands_on_the_gibbs_variance_through_the_entropy_route(train_run):
    """β = 1/11 for likelihood at λ = −10 (default route): variance 11 within 15% (measured 11.16, 80 s here)."""
    outcome, run = train_run("experiment=gibbs", "regularizer=likelihood", "anneal.lam=-10", "device.threads=1")
    assert outcome == "done"
    summary = run.read_summary()
    assert summary["final_coefficients"]["w_ent"] == 10 and summary["final_coefficients"]["w_lik"] == 0
    assert summary["metrics"]["sample_var"] == pytest.approx(11.0, rel=0.15)


def test_reduction_auto_sums_over_flat_data_and_averages_over_images(make_cfg):
    from gan_anneal.train.build import surrogate_reduction

    assert make_cfg().regularizer.reduction == "auto"
    assert surrogate_reduction("auto", (2,)) == "sum"  # the toys and the Gibbs check: β = 1 + λ exact
    assert surrogate_reduction("auto", (1, 32, 32)) == "mean"
    assert surrogate_reduction("sum", (1, 32, 32)) == "sum" and surrogate_reduction("mean", (2,)) == "mean"


@pytest.mark.parametrize("lam, warned", [(1e9, True), (-1e4, True), (50.0, False), (-50.0, False)])
def test_a_lambda_far_beyond_the_checked_range_trains_with_a_warning(make_cfg, lam, warned):
    from gan_anneal.train.build import build_experiment

    messages = []
    build_experiment(make_cfg("anneal=static", f"anneal.lam={lam}", "train.steps=4", "device=cpu"),
                     log=messages.append)
    assert any("far beyond |λ| ≤ 50" in m for m in messages) == warned
