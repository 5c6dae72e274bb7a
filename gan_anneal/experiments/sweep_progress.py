"""A sweep's progress for people: a line per job as it moves or ends, and the whole sweep's ETA.

It reads the jobs' own folders (summary.json, eval.json) on a timer, so it works for every launcher (in-process,
joblib workers, SLURM). The ETA comes from measured costs: the mean seconds (training and evaluation) of the
finished runs of the same kind in the sweep's folder (committed records of earlier sessions included); a kind
with none yet is priced by RELATIVE_COST, scaled by the finished runs' measured speed.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Callable

from gan_anneal.results.rundir import RunDir

# A run's cost relative to JSD at λ = 0 on the CPU digit GAN (benchmarks/profile_steps.py, docs/performance.md):
# keyed by divergence and the terms a schedule uses (0: none, +: the data score, −: the online model score, ±: both).
RELATIVE_COST = {
    ("jsd", "0"): 1.0, ("jsd", "+"): 1.55, ("jsd", "-"): 2.06, ("jsd", "±"): 2.6,
    ("rkl", "0"): 4.85, ("rkl", "+"): 5.7, ("rkl", "-"): 9.0, ("rkl", "±"): 9.5,
    ("wgan", "0"): 5.0, ("wgan", "+"): 5.3, ("wgan", "-"): 10.4, ("wgan", "±"): 10.9,
}
TERMS = {"pma": "+", "nma": "-", "oa": "±"}


def kind(job) -> tuple[str, str]:
    if job.anneal == "static":
        terms = "0" if not job.lam else ("+" if job.lam > 0 else "-")
    else:
        terms = TERMS.get(job.anneal, "±")
    return job.divergence, terms


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def job_seconds(folder: Path) -> float | None:
    """What a finished job cost: its training wall time plus its evaluation's."""
    summary = _read(folder / "summary.json")
    if summary.get("status") != "done" or "wall_time_s" not in summary:
        return None
    evaluation = RunDir(folder).read_evaluations().get("fidelity", {}).get("protocol", {}).get("seconds", 0.0)
    return float(summary["wall_time_s"]) + float(evaluation or 0.0)


def estimate(jobs: list, done_seconds: dict[str, float]) -> dict[str, float | None]:
    """Seconds each job costs: the mean of its kind's finished jobs, else RELATIVE_COST scaled by them."""
    by_kind: dict[tuple, list[float]] = {}
    for job in jobs:
        if job.path in done_seconds:
            by_kind.setdefault(kind(job), []).append(done_seconds[job.path])
    scales = [sum(v) / len(v) / RELATIVE_COST[k] for k, v in by_kind.items() if k in RELATIVE_COST]
    scale = sum(scales) / len(scales) if scales else None
    costs = {}
    for job in jobs:
        measured = by_kind.get(kind(job))
        if measured:
            costs[job.path] = sum(measured) / len(measured)
        else:
            costs[job.path] = scale * RELATIVE_COST[kind(job)] if scale and kind(job) in RELATIVE_COST else None
    return costs


def format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min" if seconds >= 3600 else f"{seconds // 60} min {seconds % 60:02d} s"


def measured_cost(jobs: list, parallel: int) -> str:
    """The measured cost of these jobs (training and evaluation, whichever session ran them), as one line."""
    seconds = [s for s in (job_seconds(Path(job.path)) for job in jobs) if s is not None]
    return (f"measured: {len(seconds)} of {len(jobs)} runs finished, {format_seconds(sum(seconds))} of job time "
            f"(≈ {format_seconds(sum(seconds) / max(1, parallel))} of wall time at {parallel} side by side)")


class SweepProgress:
    """Every `every_s` seconds: a line for each job that moved (step or status), then the sweep's ETA."""

    def __init__(self, jobs: list, parallel: int, log: Callable[[str], None], every_s: float = 60.0,
                 measured: list | None = None):
        """`jobs`: the ones this launch runs; `measured`: all whose finished runs price the rest (default: jobs)."""
        self.jobs, self.parallel, self.log, self.every_s = jobs, max(1, parallel), log, every_s
        self.measured = measured or jobs
        self.seen: dict[str, tuple] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.started = time.time()

    def __enter__(self) -> "SweepProgress":
        self.poll(quiet=True)  # what is already there (finished earlier) is not news
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def _loop(self) -> None:
        while not self.stop.wait(self.every_s):
            self.poll()

    def poll(self, quiet: bool = False) -> str | None:
        done, lines, left = {}, [], 0.0
        for job in self.measured:
            seconds = job_seconds(Path(job.path))
            if seconds is not None:
                done[job.path] = seconds
        for job in self.jobs:
            folder = Path(job.path)
            summary = _read(folder / "summary.json")
            seconds = done.get(job.path)
            step = RunDir(folder).current_step() if summary.get("status") == "running" else summary.get("steps")
            state = (summary.get("status"), step)
            if state != self.seen.get(job.path) and state[0] is not None:
                self.seen[job.path] = state
                total = summary.get("total_steps", "?")
                lines.append(f"  {job.label}: {state[0]}, step {state[1]}/{total}"
                             + (f" ({format_seconds(seconds)})" if seconds is not None else ""))
        costs = estimate(list({j.path: j for j in [*self.measured, *self.jobs]}.values()), done)
        unknown = 0
        for job in self.jobs:
            if job.path in done:
                continue
            summary = _read(Path(job.path) / "summary.json")
            fraction = min(1.0, (RunDir(job.path).current_step() or 0) / max(1, summary.get("total_steps") or 1))
            if costs[job.path] is None:
                unknown += 1
            else:
                left += costs[job.path] * (1.0 - fraction)
        finished = sum(job.path in done for job in self.jobs)
        eta = ("ETA unknown until a run finishes" if unknown and unknown == len(self.jobs) - finished
               else f"about {format_seconds(left / self.parallel)} left" + (f" (+{unknown} unpriced)" if unknown else ""))
        status = f"sweep: {finished}/{len(self.jobs)} done, {format_seconds(time.time() - self.started)} so far, {eta}"
        if not quiet and lines:
            for line in lines:
                self.log(line)
            self.log(status)
        return status
