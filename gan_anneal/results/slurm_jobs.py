"""The SLURM jobs a sweep submitted, per job folder: `<sweep dir>/slurm_jobs.jsonl`, one line per submission.

A login shell can die, and `ganneal sweep` can be typed again while its jobs are still queued: the ledger and
SLURM's own queue (`squeue`) say which folders already have a live job, so a second launch submits no second copy.
Writers hold `<sweep dir>/.submit.lock` (filelock) while they decide and submit, so two launches at once queue up
behind each other instead of both submitting.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from filelock import FileLock

LEDGER = "slurm_jobs.jsonl"
ON_THE_CLUSTER = ("queued", "running")  # a job's state while SLURM holds it (live_jobs), an outcome for reports
SUBMIT_LOCK = ".submit.lock"
# squeue's states of a job that will still run (or is running): anything else has ended
LIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
               "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT"}


def submit_lock(sweep_dir: str | Path):
    """The lock a launch holds from deciding what to submit until its submissions are recorded."""

    Path(sweep_dir).mkdir(parents=True, exist_ok=True)
    return FileLock(str(Path(sweep_dir) / SUBMIT_LOCK))


def read_ledger(sweep_dir: str | Path) -> dict[str, str]:
    """{job folder: its latest SLURM job id}."""
    path = Path(sweep_dir) / LEDGER
    latest: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
                latest[entry["folder"]] = str(entry["job_id"])
            except (json.JSONDecodeError, KeyError):
                continue  # a line cut short by a crash: the job it named is found by its folder next time
    return latest


def record_submissions(sweep_dir: str | Path, submitted: dict[str, str]) -> None:
    """Append {folder, job_id, time} for each submitted job (O_APPEND lines: readers never see half a line)."""
    lines = "".join(json.dumps({"folder": str(folder), "job_id": str(job_id), "time": round(time.time(), 3)}) + "\n"
                    for folder, job_id in submitted.items())
    with open(Path(sweep_dir) / LEDGER, "a") as handle:
        handle.write(lines)


def queue_states(job_ids: list[str]) -> dict[str, str]:
    """{job id: state} for those of `job_ids` that SLURM's queue still holds (array tasks one by one)."""
    if not job_ids:
        return {}
    try:
        result = subprocess.run(["squeue", "--noheader", "--array", "--format=%i %T", f"--jobs={','.join(job_ids)}"],
                                capture_output=True, text=True, timeout=60)
    except FileNotFoundError:  # no SLURM client here (the sweep folder was copied off the cluster)
        return {}
    states = {}
    for line in result.stdout.splitlines():  # squeue exits 1 when every id has left the queue: no lines
        job_id, _, state = line.strip().partition(" ")
        states[job_id] = state
    return states


def live_jobs(sweep_dir: str | Path) -> dict[str, tuple[str, str]]:
    """{job folder: (job id, 'queued' or 'running')} for the folders whose latest job SLURM still holds."""
    latest = read_ledger(sweep_dir)
    states = queue_states(sorted(set(latest.values())))
    return {folder: (job_id, "queued" if states[job_id] == "PENDING" else "running")
            for folder, job_id in latest.items() if states.get(job_id) in LIVE_STATES}
