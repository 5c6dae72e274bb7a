"""The CUDA path, checked where a GPU exists (benchmarks/gpu.sh runs `pytest -m gpu`); skipped elsewhere.

- a CUDA training run of each divergence, with each regulariser, ends `done` with finite numbers and records the
  backend it chose (TF32 on, cuDNN autotuning on);
- an interrupted CUDA run resumes exactly (device.deterministic=true, one GPU);
- bf16 and compile stay within tests/train/test_device_options.py's tolerances on CUDA too;
- `ganneal evaluate` on CUDA equals the CPU result on the same samples (TF32 is off inside evaluation).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu.sh)")]
SHORT = ("device=cuda", "train.steps=40", "train.log_every=10", "train.checkpoint_every=20",
         "train.eval_samples=500", "train.snapshot_samples=500")


@pytest.mark.parametrize("divergence", ["jsd", "rkl", "wgan"])
@pytest.mark.parametrize("regularizer", ["likelihood", "entropy"])
def test_cuda_training_of_each_divergence_and_regulariser(train_run, divergence, regularizer):
    outcome, run = train_run(*SHORT, f"divergence={divergence}", f"regularizer={regularizer}", "anneal=oa")
    summary = run.read_summary()
    assert outcome == "done" and summary["device"].startswith("cuda")
    assert summary["backend"]["tf32"] is True and summary["backend"]["cudnn_benchmark"] is True


def test_cuda_resume_is_exact_when_deterministic(train_run):
    overrides = (*SHORT, "divergence=rkl", "anneal=oa", "device.deterministic=true")
    _, straight = train_run(*overrides, name="straight")
    _, resumed = train_run(*overrides, name="resumed", should_stop=lambda step: step == 20)
    outcome, resumed = train_run(*overrides, name="resumed")
    assert outcome == "done"
    a = torch.load(straight.checkpoint, weights_only=True, map_location="cpu")
    b = torch.load(resumed.checkpoint, weights_only=True, map_location="cpu")
    assert all(torch.equal(a["generator"][k], b["generator"][k]) for k in a["generator"])


@pytest.mark.parametrize("option,rel,min_cos", [("device.precision=bf16", 3e-2, 0.9),
                                                ("device.compile=true", 1e-4, 0.99)])
def test_cuda_fast_options_within_documented_tolerances(make_cfg, option, rel, min_cos):
    from test_device_options import DCGAN, assert_close, one_step

    def cuda_step(*overrides):
        return one_step(lambda *o: make_cfg(*o, "device=cuda", "device.deterministic=true"), *DCGAN, *overrides)

    assert_close(cuda_step(), cuda_step(option), rel=rel, min_cos=min_cos)


def test_cuda_evaluation_equals_the_cpu_one(tmp_path, train_run):
    from gan_anneal.experiments.fabricated import write_fabricated_cifar10

    root = write_fabricated_cifar10(tmp_path / "data", per_batch=64)
    outcome, run = train_run("dataset=cifar10", f"dataset.root={root}", "device=cuda", "train.steps=4",
                             "train.eval_samples=64")
    assert outcome == "done"
    results = {}
    for name, env in (("cuda", {}), ("cpu", {"CUDA_VISIBLE_DEVICES": ""})):
        done = subprocess.run([sys.executable, "-m", "gan_anneal.cli", "evaluate", str(run.path), "--extractor",
                               "ganneal-tiny", "-n", "500", "--cache-dir", str(tmp_path / f"cache-{name}")],
                              env={**os.environ, **env}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        results[name] = json.loads((run.path / "eval.json").read_text())["fidelity"]["metrics"]
    for key, value in results["cpu"].items():
        assert results["cuda"][key] == pytest.approx(value, rel=1e-3), key
