"""Sweeps: Hydra multirun with the basic, joblib and submitit-local launchers, the named sweeps and
`ganneal sweep`'s resume after a kill, and the CIFAR-10 table pipeline at smoke size (fabricated data,
stand-in extractor)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import invoke, job_dir

TINY = ["train.steps=10", "train.eval_samples=200", "train.progress=false", "train.sample_every=0",
        "train.log_every=5", "train.checkpoint_every=5"]


def assert_complete(run: Path) -> dict:
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "checkpoints/last.pt"):
        assert (run / name).is_file(), f"{run} lacks {name}"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "done" and summary["metrics"]["modes_total"] == 8
    return summary


# Hydra multirun, three launchers ---------------------------------------------------------------------------

def test_basic_multirun_2x3_grid_and_table(tmp_path):
    sweep = tmp_path / "grid"
    result = invoke("train", "-m", "divergence=jsd,wgan", "anneal=static", "anneal.lam=-1,0,1", *TINY,
                    f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.output
    assert "6 done" in result.output
    names = [f"{i}_divergence={d},anneal.lam={lam}" for i, (d, lam) in
             enumerate((d, lam) for d in ("jsd", "wgan") for lam in (-1, 0, 1))]  # folders named by the swept keys
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == sorted(names)
    for name in names:
        assert_complete(sweep / name)
    table = invoke("table", str(sweep), "--format", "markdown", "--metric", "hq_fraction")
    assert table.returncode == 0, table.output
    lines = table.output.splitlines()
    assert "| model | λ=-1 | λ=0 | λ=1 |" in lines
    assert sum(line.startswith(("| JSD-GAN", "| W-GAN")) for line in lines) == 2 and "missing" not in table.output


def test_joblib_multirun_reads_outcomes_from_summaries(tmp_path):
    sweep = tmp_path / "joblib"
    result = invoke("train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1", "anneal=static",
                    "anneal.lam=0,1", *TINY, f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.output
    assert "4 done" in result.output  # the jobs ran in joblib's workers: counted from their summary.json
    assert job_dir(sweep, 3).name == "3_seed=1,anneal.lam=1"  # workers name their folders alike
    for i in range(4):
        assert_complete(job_dir(sweep, i))
        config = yaml.safe_load((job_dir(sweep, i) / "config.yaml").read_text())
        assert config["device"]["threads"] == 1  # n_jobs > 1: one torch thread per job
    table = invoke("table", str(sweep), "-f", "csv", "--metric", "modes_covered")
    assert table.returncode == 0 and ",2,ok," in table.output  # two seeds per cell


def test_submitit_local_multirun(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = tmp_path / "submitit"
    result = invoke("train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
                    "divergence=jsd,rkl", *TINY, f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.output
    assert "2 done" in result.output
    for i in range(2):
        assert_complete(job_dir(sweep, i))
    assert (sweep / ".submitit").is_dir()
    table = invoke("table", str(sweep), "-f", "markdown")
    assert table.returncode == 0 and "RKL-GAN" in table.output and "JSD-GAN" in table.output


def test_multirun_failure_is_recorded_and_others_kept(tmp_path):
    sweep = tmp_path / "mixed"
    # optim.lr_g=1e9 makes the generator blow up: that job diverges or fails, the other finishes
    result = invoke("train", "-m", "optim.lr_g=1e-3,1e30", "optim.lr_d=1e-3", *TINY, "train.log_every=1",
                    f"hydra.sweep.dir={sweep}")
    statuses = sorted(json.loads((job_dir(sweep, i) / "summary.json").read_text())["status"] for i in range(2))
    assert statuses[0] == "done" or statuses[1] == "done"
    if statuses != ["done", "done"]:
        assert result.returncode == 1


# Named sweeps ------------------------------------------------------------------------------------------------

def test_named_sweeps_plan_the_42_run_grid(tmp_path):
    from gan_anneal.experiments.sweep import available_sweeps, load_sweep, plan_jobs

    assert {"cifar10_table", "cifar10_table_smoke", "toy_table"} <= set(available_sweeps())
    for name in ("cifar10_table", "cifar10_table_smoke"):
        jobs = plan_jobs(load_sweep(name), tmp_path)
        assert len(jobs) == 42 and len({j.path for j in jobs}) == 42
        assert [j.column for j in jobs[:14]] == ["-50", "-10", "-1", "-0.1", "-0.01", "0", "0.01", "0.1", "1", "10",
                                                 "50", "PMA", "NMA", "OA"]
    jobs = plan_jobs(load_sweep("toy_table"), tmp_path)  # the toy table: 3 × 6 columns × 3 seeds
    assert len(jobs) == 54 and [j.column for j in jobs[:18:3]] == ["-0.1", "0", "0.1", "PMA", "NMA", "OA"]
    assert jobs[1].path == str(tmp_path / "rkl" / "static_-0.1_seed1") and jobs[-1].path.endswith("wgan/oa_seed2")
    assert "anneal.lam=-0.1" in jobs[1].overrides and "divergence=rkl" in jobs[1].overrides
    assert len(plan_jobs(load_sweep("toy_table"), tmp_path, seeds=[0])) == 18
    mnist = load_sweep("mnist_table")  # make mnist-table: 4 columns at seeds 0-3 (and 4-7, next test), the grid at seed 0
    verdict = plan_jobs(mnist, tmp_path, columns=["0", "PMA", "NMA", "OA"])
    grid = plan_jobs(mnist, tmp_path, seeds=[0])
    assert len(verdict) == 48 and len(grid) == 42 and len({j.path for j in verdict} | {j.path for j in grid}) == 78
    assert "experiment=mnist_cpu" in grid[0].overrides and mnist.evaluate["extractor"] == "ganneal-mnist"


def test_mnist_table_more_seeds_are_the_same_cells_at_other_seeds(tmp_path):
    """The extra seeds land inside the table's folder, where `ganneal table` pairs them with its cells: the same
    overrides and evaluation as the table's cell of that column, the verdict's columns only, new seeds."""
    from gan_anneal.experiments.sweep import load_sweep, plan_jobs

    table, more = load_sweep("mnist_table"), load_sweep("mnist_table_seeds_4-7")
    assert Path(more.out).parent == Path(table.out) and not set(more.seeds) & set(table.seeds)
    same_cell = {(j.divergence, j.column): j.overrides for j in plan_jobs(table, tmp_path)}
    jobs = plan_jobs(more, tmp_path / "seeds_4-7")
    assert {j.column for j in jobs} == {"0", "PMA", "NMA", "OA"} and len(jobs) == 16
    for job in jobs:  # each extra run is its table cell's command at another seed
        differs = set(job.overrides) ^ set(same_cell[(job.divergence, job.column)])
        assert {o.split("=")[0] for o in differs} == {"seed"}, differs


def test_sweep_bad_input_and_missing_prerequisites():
    assert invoke("sweep", "nonesuch").returncode == 2
    result = invoke("sweep", "toy_table", "--columns=7")
    assert result.returncode == 2 and "not in sweep" in result.output
    result = invoke("sweep", "toy_table", "train.stepz=3")
    assert result.returncode == 2
    if not __import__("torch").cuda.is_available():
        result = invoke("sweep", "cifar10_table", "--check", "dataset.root=/nonexistent")
        assert result.returncode == 2
        assert "GPU" in result.output and "cifar-10-batches-py" in result.output and "Inception" in result.output


def test_sweep_killed_halfway_resumes_without_redoing_finished_runs(tmp_path):
    out = tmp_path / "toy"
    args = ["toy_table", "--out", str(out), "--jobs", "1", "--divergences", "jsd", "--columns=-0.1,0,0.1", "--seeds", "0",
            "train.steps=400", "train.log_every=25", "train.checkpoint_every=25", "train.eval_samples=200"]
    process = subprocess.Popen([sys.executable, "-m", "gan_anneal.cli", "sweep", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"})
    first = out / "jsd" / "static_-0.1_seed0" / "summary.json"
    second = out / "jsd" / "static_0_seed0" / "summary.json"
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if (first.is_file() and json.loads(first.read_text()).get("status") == "done"
                and (second.parent / "metrics.jsonl").is_file()):  # the second run is training
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 143, output
    assert json.loads(first.read_text())["status"] == "done"
    assert json.loads(second.read_text())["status"] == "interrupted", output
    assert not (out / "jsd" / "static_0.1_seed0").exists()
    done_mtime = first.stat().st_mtime_ns
    metrics_before = (first.parent / "metrics.jsonl").read_text()

    result = invoke("sweep", *args)
    assert result.returncode == 0, result.output
    assert "1 skip, 1 resume, 1 train" in result.output
    assert first.stat().st_mtime_ns == done_mtime and (first.parent / "metrics.jsonl").read_text() == metrics_before
    for name in ("static_-0.1_seed0", "static_0_seed0", "static_0.1_seed0"):
        assert_complete(out / "jsd" / name)
    records = [json.loads(line) for line in (out / "jsd" / "static_0_seed0" / "metrics.jsonl").read_text()
               .splitlines()]
    steps = [r["step"] for r in records if "loss_d" in r]  # training records (the loop may add eval/ records)
    assert steps == sorted(set(steps)) and steps[-1] == 400  # resumed, not restarted or logged twice
    again = invoke("sweep", *args)
    assert again.returncode == 0 and "3 skip" in again.output


def test_each_job_decides_from_its_folder(tmp_path):
    from gan_anneal.config import compose
    from gan_anneal.experiments.sweep import load_sweep, next_action, plan_jobs
    from gan_anneal.results.rundir import RunDir
    from gan_anneal.runner import run_training

    spec = load_sweep("toy_table")
    job = plan_jobs(spec, tmp_path, TINY, divergences=["jsd"], columns=["0"])[0]
    assert next_action(job, spec) == "train"
    assert run_training(compose(job.overrides), job.path) == "done"
    assert next_action(job, spec) == "skip"
    longer = plan_jobs(spec, tmp_path, [*TINY, "train.steps=20"], divergences=["jsd"], columns=["0"])[0]
    assert next_action(longer, spec) == "resume"  # a larger train.steps extends the run
    other = plan_jobs(spec, tmp_path, [*TINY, "optim.lr_g=5e-4"], divergences=["jsd"], columns=["0"])[0]
    assert next_action(other, spec) == "differs"  # other settings: reported, retrained only with --retry
    run = RunDir(job.path)
    for status in ("failed", "diverged"):
        run.update_summary(status=status)
        assert next_action(job, spec) == status
    run.update_summary(status="interrupted")
    assert next_action(job, spec) == "resume"


def test_a_job_with_other_settings_is_reported_and_retrained_only_with_retry(tmp_path):
    out = tmp_path / "toy"
    args = ["toy_table", "--out", str(out), "--jobs", "1", "--divergences", "jsd", "--columns=0", "--seeds", "0",
            *TINY]
    assert invoke("sweep", *args).returncode == 0
    stale = invoke("sweep", *args, "optim.lr_g=5e-4")
    assert stale.returncode == 1 and "other settings" in stale.output and "--retry" in stale.output
    assert "1 other settings, left as it was" in stale.output and "1 done" not in stale.output  # the summary says so too
    run = out / "jsd" / "static_0_seed0"
    assert "lr_g: 0.001" in (run / "config.yaml").read_text()  # left as it was
    retried = invoke("sweep", *args, "optim.lr_g=5e-4", "--retry")
    assert retried.returncode == 0, retried.output
    assert "lr_g: 0.0005" in (run / "config.yaml").read_text()
    manifest = yaml.safe_load((out / "sweep.yaml").read_text())
    assert len(manifest["runs"]) == 54  # a filtered launch keeps the whole grid in the manifest


def test_named_sweep_through_the_joblib_launcher(tmp_path):
    out = tmp_path / "toy"
    result = invoke("sweep", "toy_table", "--out", str(out), "--launcher", "joblib", "--jobs", "2", "--divergences",
                    "jsd", "--columns=0,OA", "--seeds", "0", *TINY)
    assert result.returncode == 0, result.output
    for name in ("static_0_seed0", "oa_seed0"):
        assert_complete(out / "jsd" / name)
        assert yaml.safe_load((out / "jsd" / name / "config.yaml").read_text())["device"]["threads"] == 1
        assert (out / "jsd" / name / ".hydra" / "overrides.yaml").is_file()  # a Hydra job, in its own folder


# The CIFAR-10 table pipeline at smoke size -------------------------------------------------------------------

def test_cifar10_table_smoke_pipeline(tmp_path):
    out = tmp_path / "smoke"
    result = invoke("sweep", "cifar10_table_smoke", "--out", str(out), "--divergences", "rkl,jsd", "--columns=0,OA")
    assert result.returncode == 0, result.output
    for divergence in ("rkl", "jsd"):
        for name in ("static_0_seed0", "oa_seed0"):
            run = out / divergence / name
            assert json.loads((run / "summary.json").read_text())["status"] == "done"
            fidelity = json.loads((run / "eval.json").read_text())["fidelity"]
            assert {"is_mean", "fid"} <= set(fidelity["metrics"])
            assert fidelity["protocol"]["feature_extractor"]["name"] == "ganneal-tiny"
            assert fidelity["protocol"]["reference"]["dataset"] == "cifar10"
    assert (out / "data" / "cifar-10-batches-py" / "GANNEAL_FABRICATED").is_file()
    table = invoke("table", str(out), "--format", "markdown", "--reference", "tao2019")
    assert table.returncode == 0, table.output
    rkl = next(line for line in table.output.splitlines() if line.startswith("| RKL-GAN |"))
    assert rkl.count("missing") == 12  # the 12 columns this smoke test left out
    assert "| RKL-GAN (tao2019) |" in table.output and "**28.9**" in table.output
    rerun = invoke("sweep", "cifar10_table_smoke", "--out", str(out), "--divergences", "rkl,jsd", "--columns=0,OA")
    assert rerun.returncode == 0 and "4 skip" in rerun.output


def test_a_killed_joblib_sweep_started_again_redoes_no_finished_job(tmp_path):
    out = tmp_path / "toy"
    args = ["toy_table", "--out", str(out), "--launcher", "joblib", "--jobs", "2", "--divergences", "jsd",
            "--columns=-0.1,0,0.1", "--seeds", "0", "train.steps=600", "train.log_every=25",
            "train.checkpoint_every=25", "train.eval_samples=200"]
    process = subprocess.Popen([sys.executable, "-m", "gan_anneal.cli", "sweep", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})
    summaries = [out / "jsd" / f"static_{c}_seed0" / "summary.json" for c in ("-0.1", "0", "0.1")]
    deadline = time.time() + 180
    while time.time() < deadline and process.poll() is None:
        done = [p for p in summaries if p.is_file() and json.loads(p.read_text()).get("status") == "done"]
        if done and any((p.parent / "checkpoints" / "last.pt").is_file() for p in summaries if p not in done):
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == 143, output
    finished = {p: p.stat().st_mtime_ns for p in summaries
                if p.is_file() and json.loads(p.read_text()).get("status") == "done"}
    assert finished, output
    again = invoke("sweep", *args)
    assert again.returncode == 0, again.output
    for path, mtime in finished.items():
        assert path.stat().st_mtime_ns == mtime  # a finished job ended at once: nothing rewritten
    for path in summaries:
        assert_complete(path.parent)


def test_committed_cell_records_without_checkpoints_count_as_done(tmp_path):
    """records/<sweep> keeps config, .hydra, summary, evaluations and metrics of each cell, never checkpoints: a
    later launch must take such a finished cell as done and train only what is missing."""
    import shutil

    out = tmp_path / "toy"
    args = ["toy_table", "--out", str(out), "--jobs", "1", "--divergences", "jsd", "--columns=0", "--seeds", "0,1",
            *TINY]
    assert invoke("sweep", *args, "--seeds", "0").returncode == 0
    cell = out / "jsd" / "static_0_seed0"
    shutil.rmtree(cell / "checkpoints")
    shutil.rmtree(cell / "samples", ignore_errors=True)
    before = (cell / "summary.json").read_bytes()
    dry = invoke("sweep", *args, "--dry-run")
    assert dry.returncode == 0 and f"skip         {cell}" in dry.output and "train        " in dry.output
    assert invoke("sweep", *args).returncode == 0
    assert (cell / "summary.json").read_bytes() == before  # not retrained
    assert json.loads((out / "jsd" / "static_0_seed1" / "summary.json").read_text())["status"] == "done"
