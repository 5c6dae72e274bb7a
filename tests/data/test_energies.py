"""Targets known only through an energy: normalising constants, metrics, the ramp, the poor start,
a short run from an energy, and the figure."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import invoke

from gan_anneal.data import DATASETS, build_dataset
from gan_anneal.data.energies import ENERGIES, Banana, Kidney
from gan_anneal.errors import UserError
from gan_anneal.objectives.schedules import build_schedule


def importance_log_z(target, n: int = 400_000, std: float = 2.5, seed: int = 0) -> tuple[float, float]:
    """log Z by importance sampling from N(0, std²I) (independent of the grid): (estimate, relative std error)."""
    g = torch.Generator().manual_seed(seed)
    x = std * torch.randn(n, 2, generator=g, dtype=torch.float64)
    log_q = -0.5 * (x**2).sum(1) / std**2 - math.log(2 * math.pi * std**2)
    log_w = -target.energy(x) - log_q
    if target.bounded:  # U2–U4 are normalisable on the box only
        lo, hi = target.box
        log_w = torch.where(((x > lo) & (x < hi)).all(1), log_w, torch.full_like(log_w, -math.inf))
    w = log_w.exp()
    return float(w.mean().log()), float(w.std() / math.sqrt(n) / w.mean())


@pytest.mark.parametrize("name", sorted(ENERGIES))
def test_normaliser_by_quadrature_matches_importance_sampling(name):
    target = ENERGIES[name]()
    estimate, rel_se = importance_log_z(target)
    assert abs(target.log_normaliser - estimate) < 4 * rel_se + 1e-3, (target.log_normaliser, estimate, rel_se)


def test_banana_normaliser_is_exact():
    target = Banana()
    assert target.log_normaliser == pytest.approx(target.exact_log_normaliser, abs=1e-4)


def test_energies_are_registered_with_configs():
    from gan_anneal.config import compose

    for name in ENERGIES:
        assert name in DATASETS.names()
        cfg = compose([f"dataset={name}"])
        target = build_dataset(dict(cfg.dataset))
        assert target.poor_start is not None and len(target.poor_start) == 2


def test_sample_draws_the_reference_not_the_target():
    torch.manual_seed(0)
    x = Kidney(box=(-4, 4)).sample(20_000)
    assert x.min() >= -4 and x.max() <= 4
    assert x.mean(0).abs().max() < 0.1  # uniform on the box: centred, while the kidney sits at x₁ ≈ 2
    assert x.var(0).sub(64 / 12).abs().max() < 0.2
    g = Kidney(reference="gaussian", reference_std=3.0).sample(20_000)
    assert g.std(0).sub(3.0).abs().max() < 0.1
    with pytest.raises(UserError, match="reference"):
        Kidney(reference="boxy")


def exact_samples(target, n: int, seed: int = 0) -> torch.Tensor:
    """Draws from the normalised target through its grid-cell masses (uniform within a fine cell)."""
    g = torch.Generator().manual_seed(seed)
    lo, hi = target.box
    bins = 400
    masses = target.bin_masses(torch.linspace(lo, hi, bins + 1, dtype=torch.float64)).reshape(-1)
    cells = torch.multinomial(masses.float(), n, replacement=True, generator=g)
    ij = torch.stack([cells // bins, cells % bins], 1).double()
    return lo + (ij + torch.rand(n, 2, generator=g, dtype=torch.float64)) * (hi - lo) / bins


def test_metrics_score_the_target_itself_as_perfect_and_a_blob_as_poor():
    target = Kidney()
    good = target.metrics(exact_samples(target, 50_000))
    assert good["kl_model_target"] < 0.02
    assert good["coverage"] > 0.97 and good["overlap"] > 0.95
    assert good["ess"] > 0.85
    blob = target.metrics(torch.tensor([2.0, 0.0]) + 0.05 * torch.randn(50_000, 2))
    assert blob["kl_model_target"] > 1.0
    assert blob["coverage"] < 0.2
    # self-normalised ESS only sees mismatch where the model has mass: a blob at the mode looks fine to it,
    # a model much broader than the target does not
    broad = target.metrics(2.0 * torch.randn(50_000, 2))
    assert broad["ess"] < 0.3 and good["ess"] > broad["ess"] + 0.5
    far = target.metrics(torch.tensor([-3.0, 0.0]) + 0.1 * torch.randn(5_000, 2))
    assert far["kl_model_target"] > 10 and far["coverage"] < 1e-6


def test_leaving_the_box_is_reported_apart_from_the_shape_inside_it():
    from gan_anneal.data.energies import U2

    target = U2()  # defined on the box only: no target mass outside
    x = exact_samples(target, 50_000)
    exact = target.metrics(x)
    leaked = x.clone()
    leaked[:1000, 0] += 10.0  # 2% of the samples pushed out of the box, the rest untouched
    m = target.metrics(leaked)
    assert exact["outside_box"] == 0 and m["outside_box"] == 0.02
    assert abs(m["kl_in_box"] - exact["kl_in_box"]) < 0.01 and exact["kl_in_box"] < 0.03
    # the full KL charges the 2% with log(0.02 / floor): large, and set by the floor rather than the model
    assert m["kl_model_target"] > exact["kl_model_target"] + 0.4


def test_u1_metrics_see_a_missing_lobe():
    from gan_anneal.data.energies import U1

    target = U1()
    x = exact_samples(target, 50_000)
    one_lobe = target.metrics(x[x[:, 0] > 0])
    assert 0.4 < one_lobe["coverage"] < 0.6
    assert one_lobe["kl_model_target"] > 0.5 > target.metrics(x)["kl_model_target"] + 0.4


def test_ramp_schedule():
    ramp = build_schedule({"name": "ramp", "start": 0.0, "end": 1.0, "fraction": 0.6, "negative": "symmetric"})
    assert ramp(0, 1000) == 0.0
    assert ramp(300, 1000) == pytest.approx(0.5)
    assert ramp(600, 1000) == 1.0 and ramp(999, 1000) == 1.0
    values = [ramp(t, 1000) for t in range(1000)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    down = build_schedule({"name": "ramp", "start": 2.0, "end": 1.0, "fraction": 1.0})
    assert down(500, 1000) == pytest.approx(1.5)
    with pytest.raises(UserError, match="fraction"):
        build_schedule({"name": "ramp", "fraction": 0.0})


def test_energy_regulariser_uses_lambda_as_beta():
    from gan_anneal.objectives.regularizers import Regularizer
    from gan_anneal.score.exact import ExactScore

    target = Kidney()
    reg = Regularizer("energy", data_score=ExactScore(target.log_prob))
    assert reg.coefficients(0.3) == (0.3, 0.3, 0.0)
    x = torch.randn(64, 2)
    score = ExactScore(target.log_prob)(x)
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(target.energy(xr).sum(), xr)
    assert torch.allclose(score, -grad)


def test_poor_start_is_a_tight_blob_off_the_mass():
    from gan_anneal.models import build_models

    torch.manual_seed(0)
    generator, _ = build_models({"name": "mlp", "hidden": 128, "depth": 2, "init": "blob",
                                 "init_center": [-3.0, 0.0], "init_scale": 0.1}, (2,))
    with torch.no_grad():
        x = generator(generator.sample_noise(20_000))
    assert torch.allclose(x.mean(0), torch.tensor([-3.0, 0.0]), atol=0.02)
    assert torch.allclose(x.std(0), torch.tensor([0.1, 0.1]), atol=0.02)
    with pytest.raises(UserError, match="init_center"):
        build_models({"name": "mlp", "init": "blob", "init_center": None}, (2,))
    with pytest.raises(UserError, match="model.init"):
        build_models({"name": "mlp", "init": "bolb"}, (2,))


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    from gan_anneal.config import compose
    from gan_anneal.runner import run_training

    run = tmp_path_factory.mktemp("energy") / "run"
    cfg = compose(["experiment=kidney_annealed", "train.steps=200", "train.progress=false", "device=cpu",
                   "train.eval_samples=5000", "train.sample_every=0", "train.checkpoint_every=100",
                   "train.log_every=20", "train.batch_size=128"])
    assert run_training(cfg, run) == "done"
    return run


def test_short_run_from_an_energy_writes_the_metrics(short_run):
    summary = json.loads((short_run / "summary.json").read_text())
    assert summary["status"] == "done"
    for key in ("kl_model_target", "coverage", "ess", "overlap"):
        assert math.isfinite(summary["metrics"][key])
    assert 0 <= summary["metrics"]["coverage"] <= 1 and 0 < summary["metrics"]["ess"] <= 1
    records = [json.loads(line) for line in (short_run / "metrics.jsonl").read_text().splitlines()]
    records = [r for r in records if "lam" in r]  # training records (eval/ records stand beside them)
    lams = [r["lam"] for r in records]
    # ramped 0 → 1 over the first 30% of the 200 steps (60), then held
    assert lams == sorted(lams) and lams[0] < 0.5 and lams[-1] == 1.0
    assert min(r["step"] for r in records if r["lam"] == 1.0) <= 80
    assert all(r["beta"] == r["lam"] == r["w_lik"] and r["w_ent"] == 0 for r in records)  # here λ plays β
    assert (short_run / "samples" / "final.png").exists()


def test_figure_command(short_run, tmp_path):


    out = tmp_path / "fig.png"
    result = invoke("figure", "kidney", str(short_run), str(short_run), "--out", str(out),
                    "--samples", "500")
    assert result.returncode == 0, result.output
    assert out.stat().st_size > 1000
    bad = invoke("figure", "kidney", str(tmp_path / "nowhere"), str(short_run))
    assert bad.returncode == 2 and "not a run directory" in " ".join(bad.output.split())
