"""Tao et al. (2019) Fig. 6 layout: target · initial model · with annealing · without annealing, side by side.

Everything is read from the two run directories (config.yaml, summary.json, checkpoints/last.pt). The initial
model is not stored: it is rebuilt from the run's config and seed exactly as `build_experiment` built it before
the first step (same seed, same order of random draws), so it is the start both runs shared.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gan_anneal.errors import UserError
from gan_anneal.evaluate.run_eval import load_generator
from gan_anneal.results.rundir import RunDir
from gan_anneal.train.build import as_dict, build_experiment


def _load(run_dir: str) -> RunDir:
    return RunDir(run_dir).require(checkpoint=True)


def schedule_label(run: RunDir) -> str:
    """How a run set λ, in words: 'λ ramp 0→1 over 30%', 'λ = 1 throughout'."""
    a = run.read_config().anneal
    if a.name == "ramp":
        return f"λ ramp {a.start:g}→{a.end:g} over {a.fraction:.0%}"
    if a.name == "static":
        return f"λ = {a.lam:g} throughout"
    return f"anneal={a.name}"


def _label(run: RunDir) -> str:
    metrics = run.read_summary().get("metrics", {})
    numbers = []
    if metrics.get("outside_box"):  # report leaking apart from the shape inside the box (see data/energies.py)
        numbers.append(f"KL in box {metrics['kl_in_box']:.2f} · {100 * metrics['outside_box']:.1f}% outside")
    elif "kl_model_target" in metrics:
        numbers.append(f"KL {metrics['kl_model_target']:.2f}")
    if "coverage" in metrics:
        numbers.append(f"cov {metrics['coverage']:.2f}")
    return schedule_label(run) + ("\n" + " · ".join(numbers) if numbers else "")


def energy_figure(run_a: str, run_b: str, out: str | Path, n_samples: int = 3000, seed: int = 0) -> Path:
    """run_a: with annealing; run_b: without. Writes a PNG and returns its path."""
    # deferred: matplotlib is slow to import and only this path needs it
    from gan_anneal.figures import pyplot as _pyplot
    from gan_anneal.figures import save_figure  # deferred: matplotlib is slow to import and only this path needs it

    runs = [_load(run_a), _load(run_b)]
    cfgs = [r.read_config() for r in runs]
    datasets = [as_dict(c.dataset) for c in cfgs]
    if datasets[0] != datasets[1]:
        raise UserError(f"The two runs train different targets ({datasets[0].get('name')} and "
                        f"{datasets[1].get('name')}); the figure compares two runs on the same one.")
    for cfg in cfgs:
        cfg.device.name = "cpu"
        cfg.train.progress = False

    initial = build_experiment(cfgs[0], log=lambda msg: None)  # the generator before step 0
    target = initial.target
    if not hasattr(target, "draw"):
        raise UserError(f"dataset '{datasets[0].get('name')}' is not an energy target (dataset=energy_*); "
                        "the figure draws energy experiments.")

    def draw(generator) -> torch.Tensor:
        torch.manual_seed(seed)
        generator.eval()
        with torch.no_grad():
            return generator(generator.sample_noise(n_samples))

    trained = []
    for run, cfg in zip(runs, cfgs):
        generator, _, _ = load_generator(run.path, cfg, initial.data_shape, torch.device("cpu"), "raw")
        trained.append(draw(generator))

    plt = _pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(11, 3.2), dpi=80)
    target.draw(axes[0], None, f"target ({datasets[0]['name']})")
    target.draw(axes[1], draw(initial.generator), "initial model")
    target.draw(axes[2], trained[0], "w/ annealing: " + _label(runs[0]))
    target.draw(axes[3], trained[1], "w/o annealing: " + _label(runs[1]))
    return save_figure(fig, out)
