"""A run directory → its eval.json: the run's generator rebuilt from its checkpoint, measured by `Fidelity`, the
numbers kept beside every earlier evaluation of the run with the protocol that made them.
"""

from __future__ import annotations

import time
from pathlib import Path

from omegaconf import OmegaConf

from gan_anneal.errors import UserError
from gan_anneal.evaluate.fidelity import Fidelity
from gan_anneal.evaluate.options import EvalOptions
from gan_anneal.metric_names import REFERENCE_METRICS
from gan_anneal.results.evaluations import add_evaluation
from gan_anneal.results.rundir import RunDir


def load_generator(run_dir: Path, cfg, data_shape, device, which: str, checkpoint: str = "last"):
    """The run's generator from its last (or best) checkpoint: the EMA copy when kept (unless which=raw), else the
    raw one."""

    from gan_anneal.models import build_models  # deferred: loads torch; this module stays torch-free at import

    # deferred: loads torch; this module stays torch-free at import
    from gan_anneal.results.checkpoint import load_checkpoint

    run = RunDir(run_dir)
    state = load_checkpoint(run.checkpoint_file(checkpoint), map_location="cpu")
    generator, _ = build_models(OmegaConf.to_container(cfg.model, resolve=True), data_shape)
    ema = state.get("ema") or {}
    if which == "ema" and not ema:
        raise UserError(f"--generator ema: {run_dir} kept no EMA of its generator (it trained with train.ema=0). "
                        "Use --generator raw or auto.")
    used = "ema" if ema and which in ("auto", "ema") else "raw"
    generator.load_state_dict(ema["model"] if used == "ema" else state["generator"])
    return generator.to(device).eval().requires_grad_(False), used, int(state["step"])


def evaluate_run(run_dir: str | Path, options: EvalOptions, log=print) -> dict:
    """Compute the metrics of a run's checkpoint and keep them in <run>/eval.json beside every other evaluation
    (results/evaluations.py); returns this protocol's entry."""

    run = RunDir(run_dir)
    cfg = run.read_config()
    started = time.perf_counter()
    fidelity = Fidelity(cfg, options, log)
    generator, used, step = load_generator(run.path, cfg, fidelity.target.shape, fidelity.device, options.generator,
                                           options.checkpoint)
    log(f"evaluating {used} generator ({options.checkpoint} checkpoint, step {step}) on {options.num_samples} "
        f"samples against {fidelity.target.name}/{options.reference_split} ({len(fidelity.reference)} images) with "
        f"{options.extractor}" + (" (reference statistics cached)" if fidelity.cached_before
                                  and REFERENCE_METRICS & set(options.metrics) else ""))
    values = fidelity.measure(generator)
    protocol = {**fidelity.protocol(options.num_samples), "generator": used, "checkpoint": options.checkpoint,
                "checkpoint_step": step, "run_status": run.read_summary().get("status"),
                "seconds": round(time.perf_counter() - started, 2), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    record, key = add_evaluation(run.read_evaluations(), {"metrics": values, "protocol": protocol})
    run.write_evaluations(record)
    others = len(record["evaluations"]) - 1
    if others:
        log(f"kept beside {others} other evaluation{'s' if others > 1 else ''} of this run in {run.eval_file} "
            f"({key})")
    return record["fidelity"]
