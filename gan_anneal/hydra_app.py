"""The Hydra entry point behind `ganneal train`: Hydra's own machinery gives run and sweep directories and
launcher plugins (joblib, submitit) for multirun; the `.hydra/` record is ganneal's, written once a run starts."""

from __future__ import annotations

import os
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import hydra
from filelock import FileLock, Timeout
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gan_anneal.config import CONF_DIR, comma_list
from gan_anneal.evaluate.options import resolve_options
from gan_anneal.evaluate.run_eval import evaluate_run
from gan_anneal.results.collect import record_job
from gan_anneal.results.evaluations import has_metrics
from gan_anneal.runner import console, last_error, run_training

OUTCOMES: list[str] = []  # outcomes of the jobs run in this process, read by the CLI for its exit code
NAME_LIMIT = 120  # characters of a multirun job folder's name


SWEPT_ENV = "GANNEAL_SWEPT"  # the keys a multirun sweeps, set by `ganneal train -m`, inherited by launcher workers


def job_folder_name(num, task_overrides) -> str:
    """A multirun job's folder: its number and the values of the keys the command sweeps, e.g.
    `3_anneal.lam=1,divergence=rkl` (all of the job's overrides when the swept keys are not known)."""

    swept = set(comma_list(os.environ.get(SWEPT_ENV))) or None
    chosen = [o for o in map(str, task_overrides or [])
              if swept is None or o.split("=", 1)[0].lstrip("+~") in swept]
    name = f"{num}_{','.join(chosen)}" if chosen else str(num)
    return name.replace("/", "_")[:NAME_LIMIT]


OmegaConf.register_new_resolver("ganneal_job_folder", job_folder_name, replace=True)


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def hydra_train(cfg: DictConfig) -> str:

    hydra_cfg = HydraConfig.get()
    if parallel_launcher_jobs(hydra_cfg) > 1 and not cfg.device.get("threads"):
        cfg.device.threads = 1  # parallel single-thread jobs beat one multi-thread job on small CPU models
    with gpu_slot(cfg, hydra_cfg):
        outcome = run_training(cfg, hydra_cfg.runtime.output_dir, record=hydra_record(cfg, hydra_cfg))
    if hydra_cfg.mode == RunMode.MULTIRUN:  # read back by the command that launched the sweep

        record_job(hydra_cfg.sweep.dir, hydra_cfg.runtime.output_dir, outcome, last_error())
    if outcome == "done" and cfg.evaluate.get("after_training"):
        evaluate_after_training(hydra_cfg.runtime.output_dir, cfg.evaluate)
    OUTCOMES.append(outcome)
    if outcome in ("interrupted", "terminated"):  # Ctrl-C / SIGTERM stops the whole sweep, not just this job
        raise SweepInterrupted(f"stopped at job {hydra_cfg.job.get('num', 0)}; its checkpoint is kept", outcome)
    return outcome


def hydra_record(cfg: DictConfig, hydra_cfg) -> dict:
    """What Hydra would write to `.hydra/` (hydra.output_subdir is null, so it writes nothing): ganneal writes it
    only when a run starts or continues, so a refused command leaves the directory as it was (results/rundir.py)."""
    return {"config.yaml": cfg, "hydra.yaml": OmegaConf.create({"hydra": hydra_cfg}),
            "overrides.yaml": OmegaConf.create(list(hydra_cfg.overrides.task))}


class SweepInterrupted(KeyboardInterrupt):
    """Raised after a job has checkpointed on SIGINT/SIGTERM, so Hydra launches no further jobs."""

    def __init__(self, message: str, outcome: str = "interrupted"):
        super().__init__(message)
        self.outcome = outcome


def parallel_launcher_jobs(hydra_cfg) -> int:
    """How many jobs the joblib launcher runs side by side (1 for every other launcher)."""

    if hydra_cfg.runtime.choices.get("hydra/launcher") != "joblib":
        return 1
    n_jobs = int(hydra_cfg.launcher.get("n_jobs") or 1)
    return (os.cpu_count() or 1) if n_jobs < 0 else n_jobs


@contextmanager
def gpu_slot(cfg: DictConfig, hydra_cfg):
    """Parallel joblib jobs on a machine with G GPUs: each job holds one of the launcher's N worker slots (a file
    lock in the sweep dir) and trains on GPU slot % G, so the jobs spread round-robin over the GPUs and never
    more than ceil(N / G) share one. A run that names its GPU (device=cuda:K), a CPU run, one GPU, or one job at
    a time: nothing to choose. The GPU is recorded in summary.json's backend."""
    slots = parallel_launcher_jobs(hydra_cfg)
    if slots < 2 or cfg.device.name not in ("auto", "cuda"):
        yield None
        return
    import torch  # here, not at the top: `ganneal --help` and bad input stay torch-free

    gpus = torch.cuda.device_count()
    if gpus < 2:
        yield None
        return

    folder = Path(str(hydra_cfg.sweep.dir)) / ".gpu_slots"
    folder.mkdir(parents=True, exist_ok=True)
    first = int(hydra_cfg.job.get("num") or 0) % slots
    while True:  # a job waits only if more jobs run than the launcher has workers (another command's sweep)
        for slot in [(first + k) % slots for k in range(slots)]:
            lock = FileLock(str(folder / f"{slot}.lock"))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            try:
                torch.cuda.set_device(slot % gpus)
                yield slot % gpus
            finally:
                lock.release()
            return
        time.sleep(1.0)


def evaluate_after_training(run_dir: str, cfg_evaluate) -> None:
    """IS / FID of a finished job into its eval.json, unless it is there already. A failed evaluation leaves the
    run done and writes eval_error.txt; the next launch of the sweep evaluates again."""

    path = Path(run_dir)
    if has_metrics(path, cfg_evaluate.get("metrics"), cfg_evaluate.get("num_samples"), cfg_evaluate.get("extractor")):
        return

    try:
        evaluate_run(path, resolve_options(path), log=lambda message: console.print(f"[dim]{message}[/]"))
        (path / "eval_error.txt").unlink(missing_ok=True)
    except Exception as error:  # noqa: BLE001 -- recorded with the run; the sweep reports it as not evaluated
        (path / "eval_error.txt").write_text(traceback.format_exc())
        console.print(f"[bold red]evaluation failed:[/] {type(error).__name__}: {error} ({path / 'eval_error.txt'})")
