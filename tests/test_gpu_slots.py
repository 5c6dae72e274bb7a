"""One GPU per job: parallel joblib jobs spread round-robin over the GPUs (simulated device counts), and a run
that names a GPU the machine lacks is refused with the GPUs there are."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
import torch
from omegaconf import OmegaConf

from gan_anneal.errors import UserError
from gan_anneal.hydra_app import gpu_slot
from gan_anneal.train.build import resolve_device


@pytest.fixture
def gpus(monkeypatch):
    """A machine with `count` simulated GPUs; returns the list of set_device calls."""
    chosen: list[int] = []

    def install(count: int) -> list[int]:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda k=0: f"Simulated GPU {k}")
        monkeypatch.setattr(torch.cuda, "set_device", lambda k: chosen.append(int(k)))
        return chosen

    return install


def job(tmp_path, num: int, n_jobs: int, device: str = "auto"):
    cfg = OmegaConf.create({"device": {"name": device}})
    hydra_cfg = OmegaConf.create({"runtime": {"choices": {"hydra/launcher": "joblib"}}, "launcher": {"n_jobs": n_jobs},
                                  "sweep": {"dir": str(tmp_path)}, "job": {"num": num}})
    return cfg, hydra_cfg


def test_parallel_jobs_spread_round_robin_over_the_gpus(tmp_path, gpus):
    chosen = gpus(2)
    with ExitStack() as running:  # four jobs at once on four workers: two per GPU
        got = [running.enter_context(gpu_slot(*job(tmp_path, num, n_jobs=4))) for num in range(4)]
    assert got == [0, 1, 0, 1] and chosen == [0, 1, 0, 1]


def test_a_job_takes_the_slot_a_finished_job_left(tmp_path, gpus):
    gpus(2)
    with gpu_slot(*job(tmp_path, 0, n_jobs=2)) as first:
        with gpu_slot(*job(tmp_path, 2, n_jobs=2)) as second:  # num 2 would be slot 0, which is held
            assert (first, second) == (0, 1)
    with gpu_slot(*job(tmp_path, 3, n_jobs=2)) as again:  # both free again: its own slot, 3 % 2
        assert again == 1


@pytest.mark.parametrize("count, n_jobs, device", [(1, 4, "auto"), (2, 1, "auto"), (2, 4, "cpu"), (2, 4, "cuda:1")])
def test_nothing_to_choose(tmp_path, gpus, count, n_jobs, device):
    chosen = gpus(count)
    with gpu_slot(*job(tmp_path, 1, n_jobs, device)) as slot:
        assert slot is None and chosen == []


def test_a_gpu_the_machine_lacks_is_refused_naming_the_gpus_there_are(gpus):
    gpus(2)
    with pytest.raises(UserError, match=r"device=cuda:7: this machine has 2 GPUs: cuda:0 \(Simulated GPU 0\), "
                                        r"cuda:1 \(Simulated GPU 1\)"):
        resolve_device(OmegaConf.create({"name": "cuda:7", "threads": None}))
    assert resolve_device(OmegaConf.create({"name": "cuda:1", "threads": None})) == torch.device("cuda:1")


def test_device_cuda_k_without_a_gpu_is_exit_2(ganneal, tmp_path):
    result = ganneal("train", "device=cuda:7", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "device=cuda:7" in result.stdout + result.stderr and "Traceback" not in result.stderr
