"""BGAN's stability demonstration (reference/bgan.md §6.5, §8.14): descend the generator losses directly on samples.

1. Load a trained run (e.g. `ganneal train divergence=jsd`, the proxy-loss GAN) and freeze its generator.
2. Train its critic further for `critic_steps` steps against the frozen generator.
3. Starting from the same generator samples x₀, run plain gradient descent on x itself with
   (a) the proxy loss −log D(x) = −T(F(x)) and (b) the boundary-seeking loss ½·F(x)²,
   clamping to the data box, and save snapshots of both trajectories.

The proxy loss keeps pushing samples towards larger F, beyond the data; the boundary loss stops at F = 0.

    ganneal pixel-descent RUN_DIR --critic-steps 1000 --steps 300 --lr 0.01
"""

from __future__ import annotations

import json

import torch
from rich.table import Table

from gan_anneal.errors import UserError
from gan_anneal.experiments.critic_probe import fit_critic, load_run
from gan_anneal.objectives.divergences import build_divergence
from gan_anneal.optimizers import adam
from gan_anneal.progress import StepProgress
from gan_anneal.results.checkpoint import load_checkpoint
from gan_anneal.train.build import as_dict


def pixel_descent(run_dir, *, critic_steps: int = 1000, steps: int = 300, lr: float = 0.01, n: int = 2000,
                  snapshots: int = 4, seed: int = 0, device: str = "cpu") -> dict:

    run, exp, gen_step = load_run(run_dir, device)
    if hasattr(exp.generator, "sample_discrete"):
        raise UserError("pixel descent needs a continuous generator; this run's samples are discrete.")
    state = load_checkpoint(run.checkpoint, map_location=exp.device)
    critic = exp.critic
    critic.load_state_dict(state["critic"])
    settings = as_dict(exp.cfg.divergence)
    try:
        losses = {kind: build_divergence({**settings, "generator_loss": kind}) for kind in ("proxy", "boundary")}
    except TypeError:
        raise UserError(f"divergence '{settings['name']}' has no proxy/boundary generator losses; use an "
                        "f-divergence run (jsd, rkl, bgan_*, fgan_*).") from None
    torch.manual_seed(seed)
    opt = adam(critic.parameters(), lr=exp.cfg.optim.lr_d, betas=exp.cfg.optim.betas)
    g = exp.generator
    with StepProgress("pixel descent: the critic against the frozen generator", critic_steps) as bar:
        # 2. the critic, trained further against the frozen generator
        fit_critic(exp, critic, exp.divergence, opt, critic_steps, exp.cfg.train.batch_size, progress=bar.update)
    critic.eval().requires_grad_(False)

    with torch.no_grad():
        x0 = g(g.sample_noise(n, exp.device))
    lo, hi = getattr(exp.target, "box", (-1.0, 1.0))
    out = run.path / "pixel_descent"
    record: dict = {"critic_steps": critic_steps, "steps": steps, "lr": lr, "n": n, "generator_step": gen_step,
                    "clamp": [lo, hi], "trajectories": {}}
    marks = sorted({0, *[round(steps * (i + 1) / snapshots) for i in range(snapshots)]})
    for kind, div in losses.items():  # 3. gradient descent on the samples themselves
        x = x0.clone().requires_grad_(True)
        trace = []
        for t in range(steps + 1):
            f = critic(x)
            fd = f.detach()
            if t in marks:
                stats = {"step": t, "mean_F": float(fd.mean()), "mean_abs_F": float(fd.abs().mean()),
                         "moved": float((x.detach() - x0).flatten(1).norm(dim=1).mean())}
                if hasattr(exp.target, "log_prob"):
                    stats["mean_log_p"] = float(exp.target.log_prob(x.detach()).mean())
                trace.append(stats)
                exp.target.save_picture(x.detach(), out / f"{kind}_step_{t:04d}.png", f"{kind} loss · step {t}")
            if t == steps:
                break
            (grad,) = torch.autograd.grad(div.generator_loss(f) * len(x), x)  # per-sample gradients
            with torch.no_grad():
                x -= lr * grad
                x.clamp_(lo, hi)
        record["trajectories"][kind] = trace
    (out / "pixel_descent.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def trajectory_table(record: dict) -> Table:
    """Both trajectories as one rich table: the proxy loss's F keeps growing, the boundary loss's |F| shrinks."""
    table = Table(title="pixel-space descent (lower |F| = closer to the decision boundary)")
    for col in ("loss", "step", "mean F", "moved", "mean log p"):
        table.add_column(col, justify="right")
    for kind, trace in record["trajectories"].items():
        for s in trace:
            table.add_row(kind, str(s["step"]), f"{s['mean_F']:+.3f}", f"{s['moved']:.3f}",
                          f"{s['mean_log_p']:.3f}" if "mean_log_p" in s else "–")
    return table
