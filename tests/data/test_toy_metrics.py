"""Toy targets and their metrics on inputs whose answers are known."""

from __future__ import annotations

import math

import pytest
import torch

from gan_anneal.data.targets import gauss1d, grid, ring
from gan_anneal.data.toy_metrics import histogram_kl, mode_metrics, toy_metrics


def test_ring_and_grid_geometry():
    r = ring()
    assert r.modes.shape == (8, 2)
    assert torch.allclose(r.modes.norm(dim=1), torch.full((8,), 2.0), atol=1e-6)
    g = grid()
    assert g.modes.shape == (25, 2) and float(g.modes.abs().max()) == pytest.approx(4.0)


def test_log_prob_of_gauss1d_is_the_normal_density():
    x = torch.linspace(-3, 3, 7)[:, None]
    expected = -0.5 * x[:, 0] ** 2 - 0.5 * math.log(2 * math.pi)
    assert torch.allclose(gauss1d().log_prob(x), expected, atol=1e-6)


@pytest.mark.parametrize("target", [ring(), grid(), gauss1d()], ids=["ring8", "grid25", "gauss1d"])
def test_bin_masses_match_monte_carlo(target):
    torch.manual_seed(0)
    lo, hi = target.box
    edges = torch.linspace(lo, hi, 21, dtype=torch.float64)
    masses = target.bin_masses(edges)
    assert float(masses.sum()) == pytest.approx(1.0, abs=1e-4)
    x = target.sample(200_000).double()
    idx = ((x - lo) / (hi - lo) * 20).long().clamp(0, 19)
    flat = idx[:, 0] if x.shape[1] == 1 else idx[:, 0] * 20 + idx[:, 1]
    empirical = torch.bincount(flat, minlength=masses.numel()).double() / len(x)
    assert torch.allclose(empirical, masses.reshape(-1), atol=4e-3)


def test_modes_covered_and_hq_fraction_on_constructed_samples():
    r = ring()
    on_seven = r.modes[:7].repeat_interleave(100, dim=0)  # 700 samples exactly at 7 of the 8 modes
    far = torch.full((300, 2), 10.0)
    m = mode_metrics(torch.cat([on_seven, far]), r.modes, r.std)
    assert m["modes_covered"] == 7 and m["modes_total"] == 8
    assert m["hq_fraction"] == pytest.approx(0.7)
    # a mode with only a few samples is not covered: 0.2 · 1000/8 = 25 needed
    sparse = torch.cat([on_seven, r.modes[7:].repeat(10, 1), far[:290]])
    assert mode_metrics(sparse, r.modes, r.std)["modes_covered"] == 7


def test_histogram_kl_is_near_zero_for_target_samples_and_large_for_collapse():
    torch.manual_seed(0)
    r = ring()
    good = histogram_kl(r.sample(50_000), r, bins=60)
    collapsed = histogram_kl(r.modes[:1].repeat(50_000, 1) + 0.05 * torch.randn(50_000, 2), r, bins=60)
    assert good["kl_model_target"] < 0.05 and good["kl_target_model"] < 0.05
    assert collapsed["kl_target_model"] > 1.5  # ≈ log 8 for one mode of eight


def test_gauss1d_metrics_report_mean_and_variance():
    torch.manual_seed(0)
    m = toy_metrics(0.5 + 2.0 * torch.randn(100_000, 1), gauss1d())
    assert m["sample_mean"] == pytest.approx(0.5, abs=0.03)
    assert m["sample_var"] == pytest.approx(4.0, rel=0.03)
    assert "modes_covered" not in m


def test_smoothed_mixture_is_the_convolution_with_gaussian_noise():
    """μ * N(0, σ²) for N(0, 1) is N(0, 1 + σ²); for the ring, smoothed samples = samples + σ·noise."""
    smoothed = gauss1d().smoothed(0.5)
    x = torch.linspace(-3, 3, 7)[:, None]
    expected = -0.5 * x[:, 0] ** 2 / 1.25 - 0.5 * math.log(2 * math.pi * 1.25)
    assert torch.allclose(smoothed.log_prob(x), expected, atol=1e-6)
    torch.manual_seed(0)
    r = ring()
    noisy = r.sample(200_000) + 0.3 * torch.randn(200_000, 2)
    assert float(noisy.var(0).mean()) == pytest.approx(float(r.smoothed(0.3).sample(200_000).var(0).mean()), rel=0.01)


def test_exact_score_smoothing_applies_to_mixtures_and_energies_keep_their_exact_score(make_cfg):
    from gan_anneal.train.build import build_experiment

    x = torch.tensor([[2.5, 0.0]])
    for sigma in (0.3, 0.1):  # 0.1: the toys' default, what score=dsm at its default noise estimates
        exp = build_experiment(make_cfg("anneal=static", "anneal.lam=1", f"score.smoothing={sigma}"),
                               log=lambda m: None)
        # the ring's mode at (2, 0) pulls with the smoothed strength (x − m)/(0.05² + σ²), not /0.05²
        assert float(exp.regularizer.data_score(x)[0, 0]) == pytest.approx(-0.5 / (0.05**2 + sigma**2), rel=1e-3)
    messages = []
    exp = build_experiment(make_cfg("dataset=energy_kidney", "regularizer=likelihood", "anneal=static",
                                    "anneal.lam=1", "score.smoothing=0.3"), log=messages.append)
    assert any("exact score" in m for m in messages)
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(exp.target.log_prob(xr).sum(), xr)
    assert torch.allclose(exp.regularizer.data_score(x), grad)


def test_the_toy_picture_names_target_and_samples_in_a_legend():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gan_anneal.data import build_dataset
    from gan_anneal.data.toy_pictures import draw_samples

    target = build_dataset({"name": "ring8"})
    fig, ax = plt.subplots()
    draw_samples(ax, target, target.sample(500))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("target (contours") and labels[1] == "model samples"
    assert ax.collections  # the contour lines and the scatter are drawn
    plt.close(fig)
