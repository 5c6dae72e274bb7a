"""The headline toy step (`ganneal train divergence=rkl anneal=oa`) with each Adam implementation, in one run.

PyTorch's default Adam on a CPU (a Python loop over parameters) is the baseline; ganneal builds the fused one
(gan_anneal/optimizers.py). The variants take turns in blocks of steps so that machine noise hits all of
them alike; the first block is warm-up. Prints steps/s per block and the ratio to the baseline.

    python benchmarks/optimizer_step.py [--blocks 4] [--steps 150]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

import gan_anneal
from gan_anneal.train.build import build_experiment
from gan_anneal.train.loop import train_step

VARIANTS = {"default (for-loop)": {"foreach": False}, "foreach": {"foreach": True}, "fused (ganneal)": {"fused": True}}


def experiment(options: dict, overrides: list[str]):
    with initialize_config_dir(str(Path(gan_anneal.__file__).parent / "conf"), version_base=None):
        cfg = compose("config", overrides=overrides)
    exp = build_experiment(cfg, lambda line: None)
    betas = tuple(cfg.optim.betas)
    exp.opt_g = torch.optim.Adam(exp.generator.parameters(), lr=cfg.optim.lr_g, betas=betas, **options)
    exp.opt_d = torch.optim.Adam(exp.critic.parameters(), lr=cfg.optim.lr_d, betas=betas, **options)
    if exp.regularizer.model_score is not None:
        score = exp.regularizer.model_score
        score.optimizer = torch.optim.Adam(score.net.parameters(), lr=cfg.model_score.lr, **options)
    return exp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("overrides", nargs="*", default=["divergence=rkl", "anneal=oa"])
    args = parser.parse_args()
    exps = {name: experiment(options, args.overrides) for name, options in VARIANTS.items()}
    rates: dict[str, list[float]] = {name: [] for name in exps}
    done = dict.fromkeys(exps, 0)
    for _ in range(args.blocks):
        for name, exp in exps.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                train_step(exp, done[name])
                done[name] += 1
            rates[name].append(args.steps / (time.perf_counter() - start))
    base = sum(rates["default (for-loop)"][1:])
    print(f"{' '.join(args.overrides)} · {torch.get_num_threads()} thread(s) · torch {torch.__version__}")
    for name, values in rates.items():
        blocks = " ".join(f"{v:5.1f}" for v in values[1:])
        print(f"{name:20s} steps/s {blocks}   ratio {sum(values[1:]) / base:.2f}")


if __name__ == "__main__":
    main()
