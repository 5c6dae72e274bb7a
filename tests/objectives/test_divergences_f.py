"""The f-divergence family of BGAN (reference/bgan.md §2.3): every row's optimal critic is F* = log p/q (so the
importance weight w = e^F is the density ratio, Theorem 1) and its bound reaches the closed-form divergence.
Checked on discrete distributions (a free F per atom, maximised with LBFGS) and on 1-D Gaussians (a quadratic
critic, which contains log p/q exactly, with expectations by quadrature)."""

from __future__ import annotations

import math

import pytest
import torch

from gan_anneal.objectives.divergences import DIVERGENCES, F_ROWS

P_COUNTS = torch.tensor([5, 3, 2])
Q_COUNTS = torch.tensor([2, 2, 6])
P, Q = P_COUNTS.double() / 10, Q_COUNTS.double() / 10


def closed_form(row: str, p: torch.Tensor, q: torch.Tensor, dx: torch.Tensor | float = 1.0) -> float:
    """The divergence each row's bound estimates, for densities (or masses) p, q on a common grid."""
    m = (p + q) / 2
    kl = lambda a, b: float((dx * a * (a / b).log()).sum())  # noqa: E731
    jsd = 0.5 * kl(p, m) + 0.5 * kl(q, m)
    return {"gan": 2 * jsd - math.log(4), "js": 2 * jsd, "kl": kl(p, q), "rkl": kl(q, p),
            "sh": float((dx * (p.sqrt() - q.sqrt()) ** 2).sum())}[row]


def maximise(loss_fn, params: torch.Tensor, iters: int = 500) -> None:
    opt = torch.optim.LBFGS([params], lr=1, max_iter=iters, tolerance_grad=1e-12, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = loss_fn(params)
        loss.backward()
        return loss

    opt.step(closure)


@pytest.mark.parametrize("prefix", ["bgan", "fgan"])
@pytest.mark.parametrize("row", list(F_ROWS))
def test_discrete_optimal_critic_is_log_ratio_and_bound_is_closed_form(prefix, row):
    div = DIVERGENCES.build(f"{prefix}_{row}")
    f = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    loss = lambda f: div.critic_loss(torch.repeat_interleave(f, P_COUNTS), torch.repeat_interleave(f, Q_COUNTS))  # noqa
    maximise(loss, f)
    assert torch.allclose(f.detach(), (P / Q).log(), atol=1e-5), (row, f)
    assert torch.allclose(div.log_weight(f.detach()).exp(), P / Q, atol=1e-5)  # w* = p/q (Theorem 1)
    with torch.no_grad():
        value = float(div.estimate(torch.repeat_interleave(f, P_COUNTS), torch.repeat_interleave(f, Q_COUNTS)))
    assert value == pytest.approx(closed_form(row, P, Q), abs=1e-7)


def gaussian_pdf(x, mu, sigma):
    return torch.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


GRID = torch.linspace(-14.0, 14.0, 8001, dtype=torch.float64)
DX = float(GRID[1] - GRID[0])
MU_P, SD_P, MU_Q, SD_Q = 0.0, 1.0, 0.7, 1.3
PG, QG = gaussian_pdf(GRID, MU_P, SD_P), gaussian_pdf(GRID, MU_Q, SD_Q)


def gaussian_closed_form(row: str) -> float:
    kl = lambda m1, s1, m2, s2: math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5  # noqa: E731
    if row == "kl":
        return kl(MU_P, SD_P, MU_Q, SD_Q)
    if row == "rkl":
        return kl(MU_Q, SD_Q, MU_P, SD_P)
    if row == "sh":  # 2 − 2·Bhattacharyya coefficient
        s2 = SD_P**2 + SD_Q**2
        return 2 - 2 * math.sqrt(2 * SD_P * SD_Q / s2) * math.exp(-((MU_P - MU_Q) ** 2) / (4 * s2))
    return closed_form(row, PG, QG, DX)  # no closed form for JSD between Gaussians: quadrature


@pytest.mark.parametrize("row", list(F_ROWS))
def test_gaussian_quadratic_critic_recovers_log_ratio_and_divergence(row):
    div = DIVERGENCES.build(f"bgan_{row}")
    # E_P[g] and E_Q[g] by quadrature: the loss's sample means become weighted sums (weights p·dx, q·dx)
    wp, wq = PG * DX * len(GRID), QG * DX * len(GRID)

    def loss(c):
        f = c[0] + c[1] * GRID + c[2] * GRID**2
        return (div.row.neg(f) * wq).mean() - (div.row.pos(f) * wp).mean()

    c = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    maximise(loss, c)
    log_ratio = (PG / QG).log()
    inside = GRID.abs() < 4  # where both densities have mass
    fitted = (c[0] + c[1] * GRID + c[2] * GRID**2).detach()
    assert torch.allclose(fitted[inside], log_ratio[inside], atol=1e-3), row
    assert float(-loss(c).detach()) == pytest.approx(gaussian_closed_form(row), abs=1e-5)


def test_generator_losses_boundary_proxy_minimax():
    f = torch.tensor([-2.0, 0.0, 3.0])
    div = DIVERGENCES.build("bgan_gan")
    assert float(div.generator_loss(f)) == pytest.approx(float(0.5 * (f**2).mean()))
    proxy = DIVERGENCES.build("fgan_gan", generator_loss="proxy").generator_loss(f)
    assert float(proxy) == pytest.approx(float(torch.nn.functional.softplus(-f).mean()))  # −log D(G(z))
    minimax = DIVERGENCES.build("fgan_gan").generator_loss(f)
    assert float(minimax) == pytest.approx(-float(torch.nn.functional.softplus(f).mean()))  # log(1 − D)
    # the boundary loss's gradient vanishes at the decision boundary F = 0, the proxy loss's does not
    x = torch.zeros(1, requires_grad=True)
    div.generator_loss(x).backward()
    assert float(x.grad) == 0.0


def test_losses_are_finite_for_extreme_logits():
    big = torch.tensor([-200.0, 200.0])
    for row in F_ROWS:
        div = DIVERGENCES.build(f"bgan_{row}")
        assert torch.isfinite(div.critic_loss(big, big)), row


def test_configs_and_top_level_generator_loss():
    from gan_anneal.config import compose
    from gan_anneal.errors import UserError

    for name, default in (("bgan_js", "boundary"), ("fgan_sh", "minimax")):  # every option: test_config.py
        cfg = compose([f"divergence={name}"])
        assert (cfg.divergence.name, cfg.divergence.generator_loss) == (name, default)
    cfg = compose(["divergence=fgan_kl", "generator_loss=proxy"])
    assert cfg.divergence.generator_loss == "proxy"
    assert DIVERGENCES.build(**{k: v for k, v in cfg.divergence.items()}).generator_loss_kind == "proxy"
    with pytest.raises(UserError, match="f-divergence configs"):
        compose(["divergence=jsd", "generator_loss=proxy"])


def test_continuous_bgan_trains_on_ring8(train_run):
    outcome, run = train_run("divergence=bgan_gan", "dataset=ring8", "train.steps=40", "train.batch_size=64",
                             "train.log_every=10", "train.checkpoint_every=40", "train.eval_samples=500")
    assert outcome == "done"
    assert run.read_summary()["status"] == "done"


def test_boundary_logz_update_regresses_to_running_normaliser_and_checkpoints(train_run):
    from gan_anneal.results.checkpoint import load_checkpoint

    outcome, run = train_run("divergence=bgan_js", "generator_update.name=boundary_logz", "train.steps=30",
                             "train.batch_size=64", "train.log_every=10", "train.checkpoint_every=30",
                             "train.eval_samples=500")
    assert outcome == "done"
    state = load_checkpoint(run.checkpoint)
    assert math.isfinite(state["generator_update"]["log_z"])
