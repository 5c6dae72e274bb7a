"""Aggregate the energy runs (annealed vs plain, several seeds) into the markdown table of docs/energies.md.

usage: python scripts/energies_table.py runs/energies [--recompute]
--recompute re-evaluates each run's final metrics with the current metric code: it restores the RNG state saved
with the last checkpoint, so it draws exactly the samples the training loop evaluated, and rewrites `metrics`
in summary.json (the old values are kept under `metrics_previous`).
Run directories are named <energy>_<annealed|plain>_s<seed> (see docs/energies.md for the commands).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

KEYS = [("kl_model_target", "KL(model‖target) ↓"), ("kl_in_box", "KL in the box ↓"), ("outside_box", "outside ↓"),
        ("coverage", "coverage ↑"), ("ess", "ESS/n ↑")]


def recompute(run_path: Path) -> None:
    import torch

    from gan_anneal.data import build_dataset
    from gan_anneal.models import build_models
    from gan_anneal.results.checkpoint import load_checkpoint, set_rng_state
    from gan_anneal.results.rundir import RunDir
    from gan_anneal.train.build import as_dict

    run = RunDir(run_path)
    cfg = run.read_config()
    target = build_dataset(as_dict(cfg.dataset))
    generator, _ = build_models(as_dict(cfg.model), target.sample(1).shape[1:])
    state = load_checkpoint(run.checkpoint)
    generator.load_state_dict(state["generator"])
    set_rng_state(state["rng"])  # the state the loop had when it drew its final evaluation samples
    generator.eval()
    with torch.inference_mode():
        n, batch = cfg.train.eval_samples, 10_000
        samples = torch.cat([generator(generator.sample_noise(min(batch, n - i))) for i in range(0, n, batch)])
    summary = run.read_summary()
    run.update_summary(metrics=target.metrics(samples, cfg.metrics), metrics_previous=summary.get("metrics"))


def main(root: str, redo: bool = False) -> None:
    from gan_anneal.experiments.energy_figure import schedule_label
    from gan_anneal.results.rundir import RunDir

    if redo:
        for summary in sorted(Path(root).glob("*_s*/summary.json")):
            if json.loads(summary.read_text()).get("status") == "done":
                recompute(summary.parent)
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for summary in sorted(Path(root).glob("*_s*/summary.json")):
        match = re.fullmatch(r"(\w+?)_(annealed|plain)_s(\d+)", summary.parent.name)
        data = json.loads(summary.read_text())
        if match and data.get("status") == "done":
            groups[(match.group(1), match.group(2))].append({"seed": int(match.group(3)),
                                                               "schedule": schedule_label(RunDir(summary.parent)),
                                                               **data["metrics"]})
    print("| energy | λ schedule | seeds | " + " | ".join(label for _, label in KEYS) + " |")
    print("|---|---|---|" + "---|" * len(KEYS))
    for (energy, _mode), runs in sorted(groups.items()):
        cells = []
        for key, _ in KEYS:
            values = [r[key] for r in runs]
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} ± {sd:.3f}")
        schedules = " / ".join(sorted({r["schedule"] for r in runs}))
        print(f"| {energy} | {schedules} | {len(runs)} | " + " | ".join(cells) + " |")
    print()
    print("Per seed (KL · KL in the box · outside · coverage):")
    print()
    for (energy, mode), runs in sorted(groups.items()):
        per = ", ".join(f"s{r['seed']}: {r['kl_model_target']:.3f} · {r['kl_in_box']:.3f} · "
                        f"{100 * r['outside_box']:.1f}% · {r['coverage']:.2f}"
                        for r in sorted(runs, key=lambda r: r["seed"]))
        print(f"- {energy} {mode}: {per}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--recompute"]
    main(args[0] if args else "runs/energies", redo="--recompute" in sys.argv)
