"""Where a digit GAN step's time goes: each run kind of the miniature table, single-thread, by ablation.

For every divergence (jsd, rkl, wgan) and λ (0, +1 the data score, −1 the online model score) of
`experiment=mnist_cpu score=dsm`, the median time of one generator step (all its critic steps included) is
measured whole, then with one part switched off at a time: the critic's gradient penalty, the online model
score's DSM updates, the surrogate's score calls. The difference is that part's cost. A plain PyTorch JSD step
on copies of the same networks (bench.py's bare loop) is timed in the same run as the baseline, and every
row is also given relative to ganneal's JSD λ = 0 step.

    OMP_NUM_THREADS=1 python benchmarks/profile_steps.py [--steps 20] [--json out.json] [overrides ...]

Run it on an idle machine: a second torch process on two cores slows both several-fold.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

KINDS = [("jsd", 0.0), ("jsd", 1.0), ("jsd", -1.0), ("rkl", 0.0), ("rkl", 1.0), ("rkl", -1.0),
         ("wgan", 0.0), ("wgan", 1.0), ("wgan", -1.0)]


def build(divergence: str, lam: float, extra: list[str]):
    from gan_anneal.config import compose
    from gan_anneal.train.build import build_experiment

    cfg = compose(["experiment=mnist_cpu", "score=dsm", "device=cpu", "device.threads=1", "train.progress=false",
                   f"divergence={divergence}", "anneal=static", f"anneal.lam={lam}", *extra])
    return build_experiment(cfg, log=lambda msg: None)


def time_steps(step, n: int, warmup: int = 2) -> float:
    """Median seconds of one call over n calls, after warm-up."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


@contextmanager
def switched_off(obj, name: str, replacement):
    original = getattr(obj, name)
    setattr(obj, name, replacement)
    try:
        yield
    finally:
        setattr(obj, name, original)


def profile_kind(divergence: str, lam: float, n: int, extra: list[str]) -> dict:
    from gan_anneal.train.loop import train_step

    exp = build(divergence, lam, extra)
    counter = {"step": 100}

    def step():
        train_step(exp, counter["step"])
        counter["step"] += 1

    row = {"divergence": divergence, "lam": lam, "n_critic": int(exp.cfg.train.n_critic), "step_s": time_steps(step, n)}
    parts = {}
    if exp.cfg.divergence.get("penalty", "none") != "none" or divergence == "wgan":
        with switched_off(exp.divergence, "penalty", lambda *a: None):
            parts["penalty_s"] = row["step_s"] - time_steps(step, n)
    if exp.regularizer.model_score is not None:
        with switched_off(exp.regularizer, "observe_fake", lambda fake: None):
            parts["model_score_updates_s"] = row["step_s"] - time_steps(step, n)
    if lam != 0:
        with switched_off(exp.regularizer, "surrogate", lambda fake, *a, **k: fake.new_zeros(())):
            parts["surrogate_s"] = row["step_s"] - time_steps(step, n)
    row.update(parts)
    row["rest_s"] = row["step_s"] - sum(parts.values())
    return row


def bare_jsd(n: int, extra: list[str]) -> float:
    from bench import bare_stepper

    return time_steps(bare_stepper(build("jsd", 0.0, extra)), n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed generator steps per measurement")
    parser.add_argument("--kinds", default="", help="comma list like jsd:0,rkl:-1 (default: all nine)")
    parser.add_argument("--json", type=Path, help="write the rows here")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides applied to every kind (e.g. train.n_critic=2)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    kinds = ([(k.split(":")[0], float(k.split(":")[1])) for k in args.kinds.split(",")] if args.kinds else KINDS)
    bare = bare_jsd(args.steps, args.overrides)
    rows = []
    print(f"plain PyTorch JSD step: {bare * 1e3:.1f} ms")
    print(f"{'kind':<12}{'n_critic':>9}{'step ms':>10}{'×JSD0':>8}{'penalty':>10}{'model score':>13}"
          f"{'surrogate':>11}{'rest':>9}")
    for divergence, lam in kinds:
        row = profile_kind(divergence, lam, args.steps, args.overrides)
        rows.append(row)
        base = next((r["step_s"] for r in rows if r["divergence"] == "jsd" and r["lam"] == 0), None)
        row["x_jsd0"] = row["step_s"] / base if base else None

        def ms(key, row=row):
            return f"{row[key] * 1e3:.1f}" if key in row else "-"

        ratio = f"{row['x_jsd0']:.2f}" if row["x_jsd0"] else "-"
        print(f"{divergence + ' ' + format(lam, '+g'):<12}{row['n_critic']:>9}{ms('step_s'):>10}{ratio:>8}"
              f"{ms('penalty_s'):>10}{ms('model_score_updates_s'):>13}{ms('surrogate_s'):>11}{ms('rest_s'):>9}",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps({"bare_jsd_s": bare, "rows": rows, "overrides": args.overrides}, indent=2))


if __name__ == "__main__":
    main()
