"""Short training runs end to end: run directory contents, exact resume, divergence, multirun."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import job_dir


@pytest.mark.parametrize("divergence", ["jsd", "rkl", "wgan"])
def test_short_run_writes_a_complete_run_directory(train_run, divergence):
    outcome, run = train_run(f"divergence={divergence}", "train.steps=40", "train.log_every=10",
                             "train.eval_samples=2000")
    assert outcome == "done"
    summary = run.read_summary()
    assert summary["status"] == "done" and summary["steps"] == 40 and summary["seed"] == 0
    assert summary["steps_per_second"] > 0 and "torch" in summary["versions"]
    assert {"modes_covered", "hq_fraction", "kl_model_target"} <= set(summary["metrics"])
    records = [r for r in run.read_metrics() if "loss_d" in r]  # training records; eval/ records stand beside them
    assert [r["step"] for r in records] == [10, 20, 30, 40]
    assert [r["step"] for r in run.read_metrics() if "eval/modes_covered" in r] == [40]
    assert {"loss_d", "loss_g", "lam", "beta", "w_lik", "w_ent"} <= set(records[0])
    assert run.checkpoint.exists() and (run.samples / "final.png").exists()
    assert (run.path / "config.yaml").exists()


def _without_time(run):
    return [{k: v for k, v in r.items() if k != "time_s"} for r in run.read_metrics()]


def _params(run):
    state = torch.load(run.checkpoint, weights_only=True)
    return {**{f"g.{k}": v for k, v in state["generator"].items()}, **{f"d.{k}": v for k, v in state["critic"].items()}}


@pytest.mark.parametrize("extra", [[], ["divergence=wgan", "anneal=oa", "regularizer=entropy"]], ids=["jsd", "wgan-oa-entropy"])
def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(train_run, make_cfg, extra):
    overrides = [*extra, "train.steps=60", "train.log_every=10", "train.checkpoint_every=25", "train.eval_samples=500"]
    outcome, straight = train_run(*overrides, name="straight")
    assert outcome == "done"

    outcome, broken = train_run(*overrides, name="broken", should_stop=lambda step: step == 33)
    assert outcome == "interrupted"
    assert broken.read_summary()["status"] == "interrupted" and broken.read_summary()["steps"] == 33
    outcome, resumed = train_run(name="broken", cfg=broken.read_config())
    assert outcome == "done"

    a, b = _params(straight), _params(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed parameters differ from the uninterrupted run"
    assert _without_time(resumed) == _without_time(straight)  # every loss and metric, bit for bit
    assert [r["step"] for r in resumed.read_metrics() if "loss_d" in r] == [10, 20, 30, 40, 50, 60]


def test_non_finite_loss_marks_the_run_diverged_and_keeps_the_checkpoint(train_run, monkeypatch):
    import gan_anneal.train.loop as loop

    real_step = loop.train_step

    def step_that_blows_up(exp, step):
        out = real_step(exp, step)
        if step >= 17:  # after the checkpoint at step 10, the losses become NaN
            out["loss_d"] = torch.tensor(float("nan"))
        return out

    monkeypatch.setattr(loop, "train_step", step_that_blows_up)
    outcome, run = train_run("train.steps=100", "train.log_every=5", "train.checkpoint_every=10")
    assert outcome == "diverged"
    summary = run.read_summary()
    assert summary["status"] == "diverged" and "non-finite" in summary["error"] and summary["steps"] == 20
    state = torch.load(run.checkpoint, weights_only=True)
    assert state["step"] == 10
    assert all(torch.isfinite(v).all() for v in state["generator"].values())


def test_real_divergence_from_a_huge_learning_rate_is_caught(train_run):
    outcome, run = train_run("optim.lr_g=1e12", "optim.lr_d=1e12", "divergence=rkl", "train.steps=300",
                             "train.log_every=5")
    assert outcome == "diverged" and run.read_summary()["status"] == "diverged"


def test_samples_that_run_away_end_the_run_diverged_at_the_next_checkpoint(train_run):
    """Finite losses, but every sample far beyond any data: the run ends `diverged` instead of spending its
    remaining steps (a generator started at 1e7, ten times past the bound)."""
    outcome, run = train_run("dataset=gauss1d", "model.init=blob", "model.init_center=[1.0e7]", "train.steps=40",
                             "train.checkpoint_every=10", "train.log_every=5", "train.sample_every=0")
    summary = run.read_summary()
    assert outcome == "diverged" and "ran away" in summary["error"] and summary["steps"] == 10


def test_cli_single_run_and_resume(tmp_path, ganneal):
    run_dir = tmp_path / "cli_run"
    result = ganneal("train", "train.steps=30", "train.log_every=10", "train.eval_samples=500",
                     f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "run directory" in result.stdout and "modes_covered" in result.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "done"
    assert (run_dir / ".hydra" / "overrides.yaml").exists()
    # provenance: the command as typed, the host, start and end, the versions, the source revision
    assert summary["command"].startswith("ganneal train train.steps=30")
    assert summary["host"] and summary["started_at"] <= summary["finished_at"] and "torch" in summary["versions"]
    assert summary["backend"] == {"device": "cpu", "threads": 1}  # the toy MLP's cpu_threads (model/mlp.yaml)
    if (Path(__file__).resolve().parents[2] / ".git").exists():
        assert len(summary["source"]["commit"]) == 40 and isinstance(summary["source"]["dirty"], bool)
    # extending a finished run continues from its checkpoint
    result = ganneal("train", f"resume={run_dir}", "train.steps=40")
    assert result.returncode == 0, result.stderr + result.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 40 and summary["attempts"][-1]["from_step"] == 30
    assert "resume=" in summary["attempts"][-1]["command"]


def test_cli_multirun_writes_one_run_directory_per_job(tmp_path, ganneal):
    sweep = tmp_path / "sweep"
    result = ganneal("train", "-m", "divergence=rkl,jsd", "seed=0,1", "train.steps=20", "train.log_every=10",
                     "train.eval_samples=500", "train.progress=false", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr + result.stdout
    summaries = [json.loads((job_dir(sweep, i) / "summary.json").read_text()) for i in range(4)]
    assert [s["status"] for s in summaries] == ["done"] * 4
    assert sorted(s["seed"] for s in summaries) == [0, 0, 1, 1]


def test_cfg_job_prints_the_config_and_trains_nothing(tmp_path, ganneal):
    result = ganneal("train", "--cfg", "job", "divergence=wgan", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "gp_weight: 0.1" in result.stdout and "name: wgan" in result.stdout
    assert not (tmp_path / "runs").exists()


def test_ctrl_c_stops_a_whole_sweep_and_keeps_the_checkpoint(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    sweep = tmp_path / "sweep"
    proc = subprocess.Popen([sys.executable, "-m", "gan_anneal.cli", "train", "-m", "seed=0,1,2", "train.steps=100000",
                             "train.checkpoint_every=100000", "train.progress=false", f"hydra.sweep.dir={sweep}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while not (job_dir(sweep, 0) / "metrics.jsonl").exists() and time.time() < deadline:
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 130, out
    summary = json.loads((job_dir(sweep, 0) / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert torch.load(job_dir(sweep, 0) / "checkpoints" / "last.pt", weights_only=True)["step"] == summary["steps"]
    assert not job_dir(sweep, 1).exists()  # no further job was launched


def test_snapshots_use_fixed_noise_and_leave_the_random_stream_alone(make_cfg):
    from gan_anneal.train.build import build_experiment
    from gan_anneal.train.loop import generate

    exp = build_experiment(make_cfg("train.steps=10"), log=lambda m: None)
    state = torch.get_rng_state()
    a, b = generate(exp, 64, seed=7), generate(exp, 64, seed=7)
    assert torch.equal(a, b) and not torch.equal(a, generate(exp, 64, seed=8))
    assert torch.equal(state, torch.get_rng_state())
    assert not torch.equal(generate(exp, 64), generate(exp, 64))  # fresh draws otherwise


def test_reuse_fake_runs_one_generator_forward_per_step(make_cfg):
    from gan_anneal.train.build import build_experiment
    from gan_anneal.train.loop import train_step

    def forwards(*overrides):
        exp = build_experiment(make_cfg("train.steps=10", *overrides), log=lambda m: None)
        calls = []
        exp.generator.register_forward_hook(lambda *args: calls.append(1))
        before = [p.detach().clone() for p in exp.generator.parameters()]
        out = train_step(exp, 0)
        moved = any(not torch.equal(a, p) for a, p in zip(before, exp.generator.parameters()))
        return len(calls), moved, out

    assert forwards()[:2] == (2, True)
    n, moved, out = forwards("train.reuse_fake=true")
    assert (n, moved) == (1, True) and torch.isfinite(out["loss_g"])
    assert forwards("train.reuse_fake=true", "divergence=wgan")[0] == 5 + 1  # n_critic = 5: no sharing


SYNC_METHODS = ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__")


@pytest.mark.parametrize("overrides", [
    ["divergence=rkl", "anneal=oa"],  # both score terms, normalised, the gradient penalty
    ["divergence=jsd", "anneal=pma", "regularizer.force=critic"],
    ["divergence=wgan", "anneal=nma"],
    ["dataset=digits", "divergence=jsd", "train.ema=0.9"],
    ["experiment=bgan_mnist_discrete", "train.batch_size=8", "bgan.samples_per_z=4"],
    ["divergence=bgan_js", "generator_update.name=boundary_logz"],
])
def test_a_training_step_makes_no_host_sync_between_logging_steps(overrides, monkeypatch, make_cfg):
    """no .item() / .cpu() / float(tensor) ... in ganneal's own code inside a step; the loop converts the
    step's tensors to numbers only on logging steps. On a GPU each of these would stall the queue."""
    import sys

    from gan_anneal.train.build import build_experiment
    from gan_anneal.train.loop import train_step

    exp = build_experiment(make_cfg(*overrides, "train.steps=20"), log=lambda m: None)
    train_step(exp, 0)  # first-step set-up (score norms, log Z) may differ from the steady state
    calls: list[str] = []
    for name in SYNC_METHODS:
        real = getattr(torch.Tensor, name)

        def counted(self, *args, _real=real, _name=name, **kwargs):
            caller = sys._getframe(1)
            if caller.f_globals.get("__name__", "").startswith("gan_anneal"):
                calls.append(f"{_name} at {caller.f_globals['__name__']}:{caller.f_lineno}")
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    for step in range(1, 4):
        train_step(exp, step)
    assert calls == []
