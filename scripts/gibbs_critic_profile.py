"""Why the flattest Gibbs row (β = 1/51) misses: profile a trained `experiment=gibbs` run's critic and model score.

At the optimum ρ = N(0, v) the RKL critic is F* = log μ/ρ, so dF*/dx = −x·(1 − 1/v), and the model score is −x/v.
This prints both next to what the run learnt, and how much of ρ lies beyond every data sample the critic saw.

    python scripts/gibbs_critic_profile.py train runs/g50 regularizer=entropy anneal.lam=50 [--quadratic]
    python scripts/gibbs_critic_profile.py profile runs/g50 [--quadratic]
    python scripts/gibbs_critic_profile.py score-noise 41        # the online model score on fixed N(0, 41) samples

--quadratic is a diagnostic, not a product option: it adds a learnable a·x² to the MLP critic, so that the critic's
family contains log N(0, 1)/N(0, v) everywhere, also where no data sample ever lands.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
from torch import nn

from gan_anneal.models import mlp


def add_quadratic_term() -> None:
    init, forward = mlp.MLPCritic.__init__, mlp.MLPCritic.forward

    def quadratic_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.quad = nn.Parameter(torch.zeros(1))

    mlp.MLPCritic.__init__ = quadratic_init
    mlp.MLPCritic.forward = lambda self, x: forward(self, x) + self.quad * (x * x).sum(-1)


def train(out: Path, overrides: list[str]) -> None:
    from gan_anneal.config import compose
    from gan_anneal.runner import run_training

    print(run_training(compose(["experiment=gibbs", "train.progress=false", *overrides]), out))


def profile(run: Path) -> None:
    from gan_anneal.experiments.critic_probe import load_run

    run_dir, exp, _ = load_run(run)  # the run's experiment with its generator; the critic and scores below
    state = run_dir.load_checkpoint()
    cfg = exp.cfg
    exp.critic.load_state_dict(state["critic"])
    exp.regularizer.load_state_dict(state["regularizer"])
    with torch.no_grad():
        x = exp.generator(exp.generator.sample_noise(200_000))
    var = x.var().item()
    # the largest |x| among all the data samples the critic saw: batch × critic steps draws of N(0, 1)
    draws = cfg.train.batch_size * cfg.train.n_critic * cfg.train.steps
    reach = math.sqrt(2 * math.log(draws))
    beyond = (x.abs() > reach).float().mean().item()
    print(f"model variance {var:.1f}; {draws:,} data samples reach |x| ≈ {reach:.1f}; "
          f"{100 * beyond:.0f}% of the model's samples lie beyond")
    grid = torch.tensor([-30., -20, -10, -5, -3, -1, 1, 3, 5, 10, 20, 30]).unsqueeze(1).requires_grad_(True)
    (slope,) = torch.autograd.grad(exp.critic(grid).sum(), grid)
    score = exp.regularizer.model_score(grid.detach()) if exp.regularizer.model_score is not None else None
    print("     x   critic dF/dx   optimum   model score   −x/v")
    for i, xi in enumerate(grid.detach().ravel().tolist()):
        s = f"{score[i].item():11.3f}" if score is not None else "          -"
        print(f"{xi:6.0f} {slope[i].item():14.2f} {-xi * (1 - 1 / var):9.2f} {s} {-xi / var:7.3f}")


def score_noise(variance: float, sigmas=(0.1, 0.5), steps: int = 15_000) -> None:
    """Train the online model score (as model_score in config.yaml: width 64, depth 2, Adam 1e-3, batch 512) on
    fixed N(0, variance) samples; report its bias and jitter over the last third against −x/(v + σ²)."""
    from gan_anneal.score.dsm import OnlineDenoisingScore, build_score_network

    grid = torch.tensor([-20., -10, -5, -3, -1, 0, 1, 3, 5, 10, 20]).unsqueeze(1)
    for sigma in sigmas:
        torch.manual_seed(0)
        score = OnlineDenoisingScore(build_score_network((1,), 64, 2, None), sigma, 1e-3)
        errors = []
        for step in range(steps):
            score.update(torch.randn(512, 1) * math.sqrt(variance))
            if step >= 2 * steps // 3 and step % 500 == 0:
                with torch.no_grad():
                    errors.append((score(grid) + grid / (variance + sigma ** 2)).ravel())
        errors = torch.stack(errors)
        print(f"σ = {sigma}: jitter {errors.std(0).mean():.3f}, largest bias {errors.mean(0).abs().max():.3f} "
              f"(the score itself at x = 3: {3 / variance:.3f})")


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--quadratic" in args:
        args.remove("--quadratic")
        add_quadratic_term()
    torch.set_num_threads(1)
    if len(args) < 2 or args[0] not in ("train", "profile", "score-noise"):
        sys.exit(__doc__)
    if args[0] == "train":
        train(Path(args[1]), args[2:])
    elif args[0] == "profile":
        profile(Path(args[1]))
    else:
        score_noise(float(args[1]))
