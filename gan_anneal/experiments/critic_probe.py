"""Fresh-critic evaluation (BGAN's Table 2 protocol, reference/bgan.md §6.1 and §8.2).

For a finished run: load its config and checkpoint, freeze the generator, and for each measure train a *new* critic
of the run's own critic architecture from scratch on the training split against generator samples. Then report the
bound it reaches, −L_D, as mean ± std over test batches (batch `test_batch` real samples against `test_batch` × M
generator samples, M per z). Lower is better: the generator is closer to the data under that measure.

    js    the Jensen–Shannon row (f-GAN scaling: 2·JSD in nats, max 2 ln 2 ≈ 1.386)
    rkl   the reverse-KL row, KL(Q‖P)
    w     WGAN-GP critic (interpolation penalty λ = 10): E_P[F] − E_Q[F]

A discrete generator is probed on its *samples* (`sample_discrete`), also when it was trained relaxed (WGAN-GP on
σ(logits)): that is the paper's "WGAN-GP (samples)" row; `inputs="probs"` probes the relaxed outputs instead.
Targets without a test split (the 2-D toys) use fresh samples for both phases.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from gan_anneal.config import comma_list
from gan_anneal.errors import UserError
from gan_anneal.legacy import upgrade
from gan_anneal.models import build_models
from gan_anneal.objectives.divergences import build_divergence
from gan_anneal.optimizers import adam
from gan_anneal.progress import StepProgress
from gan_anneal.results.checkpoint import load_checkpoint
from gan_anneal.results.rundir import RunDir
from gan_anneal.train.build import as_dict, build_experiment

PROBE_DIVERGENCES = {"js": {"name": "fgan_js"}, "rkl": {"name": "fgan_rkl"}, "w": {"name": "wgan", "gp_weight": 10.0}}
# Adam (0.5, 0.999) for the f-critics, (0, 0.9) for WGAN-GP. The reverse-KL bound's data term −e^(−F) is unbounded
# below: a critic trained fast (1e-3) memorises the training digits and a single test digit with F ≪ 0 can send a
# batch's bound to −100 (seen on mnist_binary), so its critic learns more slowly.
PROBE_LR = {"js": 1e-3, "rkl": 1e-4, "w": 1e-4}
PROBE_LABELS = {"js": "JS (2·JSD)", "rkl": "reverse KL", "w": "Wasserstein"}


def _generator_sampler(generator, inputs: str):
    if inputs == "samples" and hasattr(generator, "sample_discrete"):
        return lambda z: generator.sample_discrete(z)
    if inputs == "probs" and hasattr(generator, "probs"):
        return lambda z: generator.probs(generator.logits(z)).detach()
    return lambda z: generator(z).detach()


def _test_batches(target, batch: int, fallback_batches: int):
    if hasattr(target, "test_batches"):
        yield from target.test_batches(batch)
    else:
        for _ in range(fallback_batches):
            yield target.sample(batch)


def load_run(run_dir: str | Path, device: str = "cpu", checkpoint: str = "last"):
    """Rebuild a run's experiment from config.yaml and checkpoints/last.pt, or best.pt with checkpoint="best"
    (generator in eval mode)."""

    run = RunDir(run_dir).require(checkpoint=True)
    path = run.checkpoint_file(checkpoint)  # before the build: a missing best.pt fails at once
    cfg = upgrade(run.read_config())
    cfg.device.name = device
    exp = build_experiment(cfg, log=lambda msg: None)
    state = load_checkpoint(path, map_location=exp.device)
    exp.generator.load_state_dict(state["generator"])
    exp.generator.eval().requires_grad_(False)
    return run, exp, int(state.get("step", 0))


def train_probe(exp, measure: str, steps: int, *, batch_size: int = 64, lr: float = 1e-4,
                betas=(0.5, 0.999), seed: int = 0, inputs: str = "samples", penalty: str | None = None,
                penalty_weight: float = 1.0, progress=None):
    """A fresh critic for `measure`, trained for `steps` against the frozen generator. Returns (critic, divergence).
    `progress(done)` is called every 25 steps."""

    if measure not in PROBE_DIVERGENCES:
        raise UserError(f"Unknown probe '{measure}'. Valid: {', '.join(PROBE_DIVERGENCES)}.")
    torch.manual_seed(seed)
    _, critic = build_models(as_dict(exp.cfg.model), exp.data_shape, as_dict(exp.cfg.divergence))
    critic = critic.to(exp.device).train()
    settings = dict(PROBE_DIVERGENCES[measure])
    if penalty and measure != "w":  # e.g. gp0 / roth on the f-critics (W always has its interpolation penalty)
        settings.update(penalty=penalty, penalty_weight=penalty_weight)
    divergence = build_divergence(settings)
    if measure == "w":
        betas = (0.0, 0.9)  # Gulrajani et al.'s Adam setting for the gradient-penalty critic
    opt = adam(critic.parameters(), lr=lr, betas=betas)

    def every_25(done: int) -> None:
        if progress is not None and (done % 25 == 0 or done == steps):
            progress(done)

    fit_critic(exp, critic, divergence, opt, steps, batch_size, _generator_sampler(exp.generator, inputs), every_25)
    return critic.eval(), divergence


def fit_critic(exp, critic, divergence, opt, steps: int, batch_size: int, fake=None, progress=None) -> None:
    """`steps` optimiser steps of `critic` on the divergence's critic loss and penalty against the frozen generator:
    real batches from the run's target, fake ones `fake(noise)` (default: the generator's samples); `progress(done)`
    after every step. One loop for the fresh-critic probes and pixel descent's further-trained critic."""
    g = exp.generator
    fake = fake or g
    for done in range(1, steps + 1):
        real = exp.target.sample(batch_size)
        with torch.no_grad():
            x = fake(g.sample_noise(batch_size, exp.device))
        loss = divergence.critic_loss(critic(real), critic(x))
        penalty = divergence.penalty(critic, real, x)
        opt.zero_grad(set_to_none=True)
        (loss if penalty is None else loss + penalty).backward()
        opt.step()
        if progress is not None:
            progress(done)


@torch.no_grad()
def bound_on_test(exp, critic, divergence, *, test_batch: int = 100, samples_per_z: int = 10,
                  inputs: str = "samples", fallback_batches: int = 10) -> list[float]:
    g = exp.generator
    draw = _generator_sampler(g, inputs)
    values = []
    for real in _test_batches(exp.target, test_batch, fallback_batches):
        z = g.sample_noise(len(real), exp.device)
        fake = torch.cat([draw(z) for _ in range(samples_per_z)])  # M samples per z
        values.append(float(divergence.estimate(critic(real), critic(fake))))
    return values


def _merge_eval_json(run_path: Path, update: dict) -> dict:

    run = RunDir(run_path)
    current = run.read_evaluations()
    current["probes"] = {**current.get("probes", {}), **update}
    run.write_evaluations(current)
    return current


def trained_with(cfg) -> str:
    """A row label for the table: the divergence, and the estimator when it is not plain back-propagation."""
    label = str(cfg.divergence.name)
    update = cfg.get("generator_update", {}) or {}
    if update.get("name") not in (None, "reparam"):
        label += f" · {update.get('name')}" + (f" ({update.get('estimator')})" if update.get("estimator") else "")
    if cfg.model.get("relaxed"):
        label += " · relaxed"
    return label


def _probe_keys(rows: dict[str, dict]) -> list[str]:
    keys = {k for r in rows.values() for k in r}
    return sorted(keys, key=lambda k: (list(PROBE_DIVERGENCES).index(k.split("+")[0]), k))


def _label(key: str) -> str:
    measure, _, penalty = key.partition("+")
    return PROBE_LABELS[measure] + (f" ({penalty})" if penalty else "")


def probe_table(rows: dict[str, dict], title: str = "fresh-critic probes (lower is better)"):
    """A rich table in the paper's layout: rows = how the generator was trained, columns = the measure."""

    measures = [m for m in _probe_keys(rows)]
    table = Table(title=title, header_style="bold")
    table.add_column("trained with")
    for m in measures:
        table.add_column(_label(m), justify="right")
    for label, row in rows.items():
        table.add_row(label, *(f"{row[m]['mean']:.3f} (±{row[m]['std']:.3f})" if m in row else "–" for m in measures))
    return table


def run_probes(run_dir, measures: list[str], steps: int, *, batch_size: int = 64, test_batch: int = 100,
               samples_per_z: int = 10, lr: float | None = None, inputs: str = "samples", seed: int = 0,
               device: str = "cpu", penalty: str | None = None, penalty_weight: float = 1.0,
               console=None, checkpoint: str = "last") -> dict:
    """Probe a run with a fresh critic per measure; merge the results into eval.json; print a rich table.

    `penalty` (gp0, roth) regularises the JS / reverse-KL probe critics; their results are then stored under
    "<measure>+<penalty>" so they sit beside the unpenalised ones. Returns {key: {"mean", "std", "median", ...}}."""

    measures = comma_list(measures) if isinstance(measures, str) else [m.strip() for m in measures if m.strip()]
    unknown = [m for m in measures if m not in PROBE_DIVERGENCES]
    if unknown or not measures:
        raise UserError(f"Unknown probe(s) {unknown or measures}. Valid: {', '.join(PROBE_DIVERGENCES)}.")
    if int(steps) < 1:
        raise UserError(f"--probe-steps must be ≥ 1, got {steps}")
    if inputs not in ("samples", "probs"):
        raise UserError(f"probe inputs must be samples or probs, got '{inputs}'")
    run, exp, step = load_run(run_dir, device, checkpoint)
    results = {}
    for measure in measures:
        t0 = time.perf_counter()
        rate = PROBE_LR[measure] if lr is None else lr
        with StepProgress(f"probe {measure}: a fresh critic", int(steps), log=(console or Console()).print) as bar:
            critic, divergence = train_probe(exp, measure, int(steps), batch_size=batch_size, lr=rate, seed=seed,
                                             inputs=inputs, penalty=penalty, penalty_weight=penalty_weight,
                                             progress=bar.update)
        values = bound_on_test(exp, critic, divergence, test_batch=test_batch, samples_per_z=samples_per_z,
                               inputs=inputs)
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1))
        key = f"{measure}+{penalty}" if penalty and measure != "w" else measure
        results[key] = {"mean": mean, "std": std, "median": sorted(values)[len(values) // 2],
                            "min": min(values), "n_batches": len(values),
                            "penalty": f"{penalty} × {penalty_weight}" if penalty and measure != "w" else
                            ("interpolation GP × 10" if measure == "w" else "none"), "steps": int(steps),
                            "batch_size": batch_size, "test_batch": test_batch, "samples_per_z": samples_per_z,
                            "lr": rate, "inputs": inputs, "seed": seed, "generator_step": step,
                            "split": "train (critic) / test (bound)" if hasattr(exp.target, "test_batches")
                            else "fresh samples", "seconds": round(time.perf_counter() - t0, 1)}
    _merge_eval_json(run.path, results)
    (console or Console()).print(probe_table({trained_with(exp.cfg): results},
                                             title=f"fresh-critic probes, {steps} steps (lower is better)"))
    return results


def collect_probe_rows(run_dirs, labels=None) -> dict[str, dict]:
    """{row label: probes} read from each run's eval.json (for a table across runs)."""

    rows = {}
    for i, run_dir in enumerate(run_dirs):
        run = RunDir(run_dir)
        probes = run.read_evaluations().get("probes", {})
        label = labels[i] if labels else trained_with(run.read_config())
        rows[label] = probes
    return rows


def markdown_table(rows: dict[str, dict]) -> str:
    measures = _probe_keys(rows)
    lines = ["| trained with | " + " | ".join(_label(m) for m in measures) + " |",
             "|---|" + "---|" * len(measures)]
    for label, row in rows.items():
        cells = [f"{row[m]['mean']:.3f} (±{row[m]['std']:.3f})" if m in row else "–" for m in measures]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
