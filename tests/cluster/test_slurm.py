"""Against a real one-node SLURM cluster (scripts/slurm_cluster.sh): sweeps as SLURM jobs, preemption and time
limits with bit-exact resumes, submit and leave, no second copy of a queued job, shared caches under concurrency.

`pytest -m slurm` (root and apt: the fixture brings the cluster up; it skips with the script's reason otherwise).
Job states come from SLURM's accounting (sacct, with slurmdbd on MariaDB)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

# the cluster's set-up and a requeued job's wait carry their own limits (up to 900 s each), longer than the suite's
pytestmark = [pytest.mark.slurm, pytest.mark.timeout(3600)]
ROOT = Path(__file__).resolve().parents[2]
# a toy run long enough to be interrupted: about 10-60 s of one core, depending on the machine
TOY = ["device.threads=1", "train.log_every=50", "train.checkpoint_every=100000"]


@pytest.fixture(scope="module")
def cluster():
    result = subprocess.run([str(ROOT / "scripts" / "slurm_cluster.sh"), "up"], capture_output=True, text=True,
                            timeout=900)
    if result.returncode == 2:
        pytest.skip(f"no local SLURM cluster: {result.stderr.strip()}")
    assert result.returncode == 0, result.stdout + result.stderr


def ganneal(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gan_anneal.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def job_ids(sweep: Path) -> dict[str, str]:
    from gan_anneal.results.slurm_jobs import read_ledger

    return read_ledger(sweep)


def accounting(job_id: str) -> list[str]:
    """The states sacct records for the job, one per start (a requeued job has a REQUEUED line per restart)."""
    out = subprocess.run(["sacct", "-n", "-X", "--duplicates", "-P", "-o", "State", "-j", job_id],
                         capture_output=True, text=True, check=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def wait_until(predicate, timeout: float, what: str, every: float = 1.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def hurry_requeued(job_id: str) -> None:
    """SLURM holds a requeued job for about two minutes (its BeginTime); the tests, as the admin, let it start now.
    A test-speed shortcut only: what happens to the job is unchanged."""
    out = subprocess.run(["squeue", "-h", "-o", "%T %r", "-j", job_id], capture_output=True, text=True).stdout
    if "BeginTime" in out:
        subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], capture_output=True)


def finished(run: Path, job_id: str) -> bool:
    hurry_requeued(job_id)
    return status(run) == "done"


def logged_step(run: Path) -> int:
    from gan_anneal.results.rundir import RunDir

    return RunDir(run).current_step() if (run / "summary.json").exists() else 0


def status(run: Path) -> str:
    try:
        return json.loads((run / "summary.json").read_text()).get("status", "")
    except (OSError, ValueError):
        return ""


def final_parameters(run: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    return {f"{net}.{k}": v for net in ("generator", "critic") for k, v in state[net].items()}


def assert_same_parameters(run: Path, reference: Path) -> None:
    got, want = final_parameters(run), final_parameters(reference)
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want), "the resumed run's parameters differ from the reference"


def tabulated_columns(out: Path) -> set[str]:
    """The JSD columns `ganneal table` fills with an FID."""
    import csv

    table = ganneal("table", str(out), "--format", "csv")
    assert table.returncode == 0, table.stderr
    rows = csv.DictReader(line for line in table.stdout.splitlines() if line and not line.startswith('"'))
    return {r["column"] for r in rows if r["metric"] == "fid" and r["divergence"] == "jsd" and r["status"] != "missing"}


def submit_one(sweep: Path, *overrides: str) -> tuple[Path, str]:
    """One toy job submitted and left (hydra/launcher=slurm wait=false): its folder and SLURM job id."""
    result = ganneal("train", "-m", "hydra/launcher=slurm", "hydra.launcher.wait=false", "seed=0", *TOY,
                     *overrides, f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stdout + result.stderr
    (folder, job_id), *_ = sorted(job_ids(sweep).items())
    return Path(folder), job_id


def start_reference(tmp_path: Path, *overrides: str) -> tuple[subprocess.Popen, Path]:
    """The same toy run, uninterrupted, outside SLURM, started now (it trains while the SLURM job does)."""
    folder = tmp_path / "reference"
    process = subprocess.Popen([sys.executable, "-m", "gan_anneal.cli", "train", "seed=0", *TOY, *overrides,
                                f"hydra.run.dir={folder}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    return process, folder


def reference_done(reference: tuple[subprocess.Popen, Path]) -> Path:
    process, folder = reference
    assert process.wait(timeout=600) == 0, process.stderr.read()
    return folder


def test_a_named_sweep_runs_each_job_as_a_slurm_job_and_tabulates(cluster, tmp_path):
    out = tmp_path / "sweep"
    result = ganneal("sweep", "cifar10_table_smoke", "--launcher", "slurm", "--divergences", "jsd", "--columns",
                     "0,PMA", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    ids = job_ids(out)
    assert len(ids) == 2
    for job_id in ids.values():
        assert wait_until(lambda j=job_id: accounting(j)[-1:] == ["COMPLETED"], 60, f"sacct COMPLETED for {job_id}")
    assert tabulated_columns(out) == {"0", "PMA"}
    again = ganneal("sweep", "cifar10_table_smoke", "--launcher", "slurm", "--divergences", "jsd", "--columns",
                    "0,PMA", "--out", str(out))
    assert again.returncode == 0 and "2 skip" in again.stdout, again.stdout
    assert job_ids(out) == ids  # nothing submitted again


@pytest.mark.parametrize("interrupt", ["usr2", "requeue"])
def test_a_preempted_job_checkpoints_is_requeued_and_ends_bit_exact(cluster, tmp_path, interrupt):
    """usr2: submitit's preemption signal (`scancel --signal=USR2`): the job checkpoints and submitit requeues it.
    requeue: SLURM's own (`scontrol requeue`, SIGTERM): the job checkpoints and SLURM requeues it."""
    steps = "train.steps=5000"
    reference = start_reference(tmp_path, steps)
    run, job_id = submit_one(tmp_path / "sweep", steps)
    wait_until(lambda: logged_step(run) >= 500, 300, "the job to train 500 steps")
    if interrupt == "usr2":
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    else:
        subprocess.run(["scontrol", "requeue", job_id], check=True)
    wait_until(lambda: "checkpoint written" in (run / "train.log").read_text(), 60, "the checkpoint on the signal")
    wait_until(lambda: finished(run, job_id), 600, "the requeued job to finish", every=2)
    states = accounting(job_id)
    assert "REQUEUED" in states[:-1] and states[-1] in ("COMPLETED", "RUNNING"), states
    assert "resuming from step" in (run / "train.log").read_text()
    assert_same_parameters(run, reference_done(reference))


def test_a_job_at_its_time_limit_checkpoints_and_is_requeued_by_the_shipped_defaults(cluster, tmp_path):
    """hydra/launcher=slurm requeues a timed-out job (max_num_timeout) where Hydra's submitit_slurm would end it:
    a 1-minute limit, signalled 30 s ahead, on a run of a few minutes' training, so it meets its limit every time."""
    steps = "train.steps=12000"
    reference = start_reference(tmp_path, steps)
    run, job_id = submit_one(tmp_path / "sweep", steps, "hydra.launcher.timeout_min=1",
                             "hydra.launcher.signal_delay_s=30")
    wait_until(lambda: finished(run, job_id), 900, "the job to finish across its time limits", every=2)
    states = accounting(job_id)
    log = (run / "train.log").read_text()
    assert states.count("REQUEUED") >= 1, states
    assert "stopped by SIGUSR2" in log and "resuming from step" in log
    assert_same_parameters(run, reference_done(reference))


def test_submit_and_leave_returns_at_once_and_a_second_launch_submits_no_copy(cluster, tmp_path):
    out = tmp_path / "sweep"
    args = ["sweep", "cifar10_table_smoke", "--launcher", "slurm", "--no-wait", "--divergences", "jsd",
            "--columns", "0,PMA,NMA", "--out", str(out)]
    started = time.time()
    first = ganneal(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert time.time() - started < 60
    ids = job_ids(out)
    assert len(ids) == 3
    second = ganneal(*args)  # while the jobs are queued or running, or just finished
    assert second.returncode == 0, second.stdout + second.stderr
    assert job_ids(out) == ids, "a job was submitted twice"
    for run in map(Path, ids):
        wait_until(lambda r=run: status(r) == "done" and (r / "eval.json").exists(), 300, f"{run} to finish")
    runs = ganneal("runs", str(out))
    assert runs.returncode == 0 and runs.stdout.count("done") == 3, runs.stdout
    assert tabulated_columns(out) == {"0", "PMA", "NMA"}


def test_parallel_jobs_on_an_empty_cache_train_the_data_score_once(cluster, tmp_path):
    cache = tmp_path / "cache"
    result = subprocess.run(
        [sys.executable, "-m", "gan_anneal.cli", "train", "-m", "hydra/launcher=slurm", "seed=0,1,2,3",
         "anneal=static", "anneal.lam=1", "score=dsm", "score.steps=300", "train.steps=50", "device.threads=1",
         f"score.cache_dir={cache}", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stdout + result.stderr
    logs = [p.read_text() for p in (tmp_path / "sweep").glob("*/train.log")]
    assert len(logs) == 4
    trained = sum("data score: training" in log for log in logs)
    assert trained == 1, f"{trained} jobs trained the data score"
    assert sum("data score: loaded" in log for log in logs) == 3
    assert len(list(cache.glob("dsm-*.pt"))) == 1


def test_two_launches_at_once_submit_each_job_once(cluster, tmp_path):
    out = tmp_path / "sweep"
    args = [sys.executable, "-m", "gan_anneal.cli", "sweep", "cifar10_table_smoke", "--launcher", "slurm",
            "--no-wait", "--divergences", "jsd", "--columns", "0,PMA", "--out", str(out)]
    both = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    lines = (out / "slurm_jobs.jsonl").read_text().splitlines()
    assert len(lines) == 2, lines  # one submission per job folder: the second launch waited and found them queued
    for run in map(Path, job_ids(out)):
        wait_until(lambda r=run: status(r) == "done", 300, f"{run} to finish")


def test_stopping_the_waiting_command_leaves_the_jobs_running_and_typing_it_again_submits_no_copy(cluster, tmp_path):
    sweep = tmp_path / "sweep"
    command = [sys.executable, "-m", "gan_anneal.cli", "train", "-m", "hydra/launcher=slurm", "seed=0,1", *TOY,
               "train.steps=3000", f"hydra.sweep.dir={sweep}"]
    waiting = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wait_until(lambda: len(job_ids(sweep)) == 2, 120, "the two submissions")
    waiting.send_signal(signal.SIGINT)  # the login shell dies, or Ctrl-C
    waiting.communicate(timeout=60)
    ids = job_ids(sweep)
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert job_ids(sweep) == ids and len((sweep / "slurm_jobs.jsonl").read_text().splitlines()) == 2
    assert all(status(Path(folder)) == "done" for folder in ids)
