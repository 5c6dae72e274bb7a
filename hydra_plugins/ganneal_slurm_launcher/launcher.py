"""Hydra's submitit SLURM launcher, split at its wait, with ganneal's job ledger around the submission.

What it adds to `submitit_slurm`:
- jobs whose folder already holds a finished run, or has a live SLURM job (results/slurm_jobs.py), are not
  submitted again, so typing a sweep again after the login shell died submits only what is missing;
- the decision and the submission happen under the sweep's submit lock: a second launch at once waits for it;
- `wait=false` returns once the jobs are queued (submit and leave); requeues and resumes happen on the cluster.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)


def wait_for_queue(job_ids: list[str], every_s: float = 10.0) -> None:
    """Return once SLURM holds none of these jobs (submitted by an earlier launch of the same sweep)."""
    import time

    from gan_anneal.results.slurm_jobs import LIVE_STATES, queue_states

    while job_ids:
        job_ids = [j for j, state in queue_states(job_ids).items() if state in LIVE_STATES]
        if job_ids:
            log.info(f"\twaiting for {len(job_ids)} job(s) an earlier launch submitted: {', '.join(job_ids)}")
            time.sleep(every_s)


def finished(folder: Path, cfg: DictConfig) -> str | None:
    """'done' or 'diverged' when the folder's run would end at once (finished, and evaluated where the job would
    evaluate it); None when the job has work to do or would be refused."""
    from gan_anneal.results.continuation import launch_action

    run_cfg = cfg.copy()
    with open_dict(run_cfg):
        del run_cfg["hydra"]
    action = launch_action(folder, run_cfg)
    return action if action in ("done", "diverged") else None


class GannealSlurmLauncher(SlurmLauncher):
    def __init__(self, wait: bool = True, **params: Any) -> None:
        super().__init__(**params)
        self.wait = bool(wait)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from gan_anneal.results.collect import record_job
        from gan_anneal.results.slurm_jobs import live_jobs, record_submissions, submit_lock

        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        with submit_lock(sweep_dir):
            live = live_jobs(sweep_dir)
            chosen, skipped, elsewhere = [], [], []
            for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
                cfg = self.job_config(overrides, idx)
                folder = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)  # the folder Hydra gives it
                state = live.get(str(folder))
                why = f"SLURM job {state[0]} is {state[1]}" if state else finished(folder, cfg)
                if state:
                    elsewhere.append(state[0])
                if why:
                    skipped.append(JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED, _return_value=why))
                    record_job(sweep_dir, folder, state[1] if state else why)
                    log.info(f"\t#{idx} : {os.path.relpath(folder, sweep_dir)}: {why}, not submitted")
                else:
                    chosen.append((idx, list(overrides), folder))
            jobs = self.submit(chosen) if chosen else []
            record_submissions(sweep_dir, {str(folder): job.job_id for (_, _, folder), job in zip(chosen, jobs)})
        for (idx, _, folder), job in zip(chosen, jobs):
            log.info(f"\t#{idx} : SLURM job {job.job_id} → {folder}")
            if not self.wait:
                record_job(sweep_dir, folder, "queued")
        if not self.wait:
            return skipped
        results = [job.results()[0] for job in jobs]
        wait_for_queue(elsewhere)  # this block's jobs that an earlier launch submitted
        return [*skipped, *results]

    def job_config(self, overrides: Sequence[str], idx: int) -> DictConfig:
        """The job's config as Hydra will compose it (once per job: its folder and whether it is done come from it)."""
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(cfg.hydra.job):
            cfg.hydra.job.num = idx
        return cfg

    def submit(self, chosen: list[tuple[int, list[str], Path]]) -> list:
        """Hydra's SlurmLauncher.launch up to its wait: the executor, then one array of the chosen jobs."""
        import submitit

        params = dict(self.params)
        init = {"folder": params.pop("submitit_folder"), "slurm_max_num_timeout": params.pop("max_num_timeout")}
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        job_params = [(overrides, "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state())
                      for idx, overrides, _ in chosen]
        return executor.map_array(self, *zip(*job_params))
