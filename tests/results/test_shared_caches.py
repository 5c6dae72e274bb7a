"""Shared caches under concurrency, without a cluster: parallel processes on an empty cache compute the data score
once (the others wait on its lock and load it), and the SLURM job ledger reads back what was submitted."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

from gan_anneal.results.slurm_jobs import live_jobs, read_ledger, record_submissions


def _score_job(cache_dir: str, queue) -> None:
    import torch

    from gan_anneal.data import build_dataset
    from gan_anneal.score.dsm import pretrained_data_score

    torch.set_num_threads(1)
    said: list[str] = []
    spec = {"sigma": 0.1, "steps": 150, "hidden": 16, "depth": 1, "conv_hidden": None, "lr": 1e-3, "batch_size": 32,
            "held_out": 64, "eval_every": 50, "patience": 0, "seed": 0, "dataset": {"name": "ring8"}}
    pretrained_data_score(build_dataset({"name": "ring8"}), (2,), spec, Path(cache_dir), torch.device("cpu"), said.append)
    queue.put(said)


def test_parallel_jobs_on_an_empty_cache_train_the_data_score_once(tmp_path):
    context = mp.get_context("spawn")
    queue = context.Queue()
    jobs = [context.Process(target=_score_job, args=(str(tmp_path), queue)) for _ in range(3)]
    for job in jobs:
        job.start()
    said = [queue.get(timeout=300) for _ in jobs]
    for job in jobs:
        job.join(timeout=60)
    trained = sum(any("training a denoising score network" in line for line in lines) for lines in said)
    loaded = sum(any(line.startswith("data score: loaded") for line in lines) for lines in said)
    assert (trained, loaded) == (1, 2), said
    assert len(list(tmp_path.glob("dsm-*.pt"))) == 1


def test_the_ledger_keeps_each_folders_latest_job_and_skips_a_torn_line(tmp_path, monkeypatch):
    record_submissions(tmp_path, {"/s/a": "7_0", "/s/b": "7_1"})
    record_submissions(tmp_path, {"/s/a": "9"})
    with open(tmp_path / "slurm_jobs.jsonl", "a") as handle:
        handle.write('{"folder": "/s/c", "job_')  # a crash mid-line
    assert read_ledger(tmp_path) == {"/s/a": "9", "/s/b": "7_1"}
    monkeypatch.setattr("gan_anneal.results.slurm_jobs.queue_states",
                        lambda ids: {"9": "PENDING", "7_1": "COMPLETED"})
    assert live_jobs(tmp_path) == {"/s/a": ("9", "queued")}
    assert all(json.loads(line)["time"] for line in (tmp_path / "slurm_jobs.jsonl").read_text().splitlines()[:3])


def test_no_wait_needs_the_slurm_launcher(run_cli, tmp_path):
    result = run_cli("sweep", "toy_table", "--no-wait", "--out", str(tmp_path / "t"))
    assert result.returncode == 2
    assert "--no-wait submits to SLURM and returns: it needs --launcher slurm." in result.stdout + result.stderr
