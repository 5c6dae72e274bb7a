"""IS/FID during training (train.eval_every), the best checkpoint (train.best_metric) and its cost."""

from __future__ import annotations

import json

import pytest
import torch

from gan_anneal.errors import UserError

IMAGES = ["dataset=digits", "device=cpu", "model.base=16", "train.steps=24", "train.batch_size=32",
          "train.sample_every=0", "train.checkpoint_every=8", "train.log_every=4", "train.eval_samples=128",
          "train.eval_every=8", "train.eval_num_samples=200", "evaluate.extractor=ganneal-tiny",
          "evaluate.metrics='is,fid'"]


@pytest.fixture
def cached(tmp_path, monkeypatch):
    monkeypatch.setenv("GANNEAL_CACHE", str(tmp_path / "cache"))  # a private reference-statistics cache


def _fidelity_records(run):
    return [r for r in run.read_metrics() if "eval/fid" in r]


def test_fid_is_tracked_and_best_pt_holds_the_best_value(train_run, cached):
    outcome, run = train_run(*IMAGES, "train.best_metric=eval/fid")
    assert outcome == "done"
    records = _fidelity_records(run)
    assert [r["step"] for r in records] == [8, 16, 24]
    assert all(r["eval/fid"] > 0 and r["eval/is_mean"] >= 1 for r in records)
    summary = run.read_summary()
    best = min(records, key=lambda r: r["eval/fid"])
    assert summary["best"] == {"metric": "eval/fid", "value": best["eval/fid"], "step": best["step"]}
    assert torch.load(run.best_checkpoint, weights_only=True)["step"] == best["step"]
    assert summary["metrics"]["fid"] == records[-1]["eval/fid"]  # the final model's, beside the sample metrics
    protocol = summary["eval_protocol"]
    assert protocol["num_samples"] == 200 and protocol["feature_extractor"]["name"] == "ganneal-tiny"
    assert protocol["metrics"] == ["is", "fid"] and protocol["reference"]["dataset"] == "digits"
    assert 0 < summary["evaluation_fraction"] < 1 and summary["evaluation_s"] > 0


def test_evaluate_reads_the_best_checkpoint(train_run, cached, ganneal, tmp_path):
    outcome, run = train_run(*IMAGES, "train.best_metric=eval/fid")
    assert outcome == "done"
    common = ["--metrics", "fid", "-n", "200", "--extractor", "ganneal-tiny", "--cache-dir", str(tmp_path / "c")]
    result = ganneal("evaluate", str(run.path), "--checkpoint", "best", *common)
    assert result.returncode == 0, result.stdout + result.stderr
    protocol = json.loads((run.path / "eval.json").read_text())["fidelity"]["protocol"]
    assert protocol["checkpoint"] == "best" and protocol["checkpoint_step"] == run.read_summary()["best"]["step"]
    result = ganneal("evaluate", str(run.path), "--checkpoint", "last", *common)
    assert result.returncode == 0
    protocol = json.loads((run.path / "eval.json").read_text())["fidelity"]["protocol"]
    assert protocol["checkpoint"] == "last" and protocol["checkpoint_step"] == 24


def test_a_toy_run_keeps_its_best_sample_metric(train_run):
    outcome, run = train_run("train.steps=60", "train.sample_every=10", "train.snapshot_samples=500",
                             "train.eval_samples=500", "train.log_every=10", "train.best_metric=eval/kl_target_model")
    assert outcome == "done"
    records = [r for r in run.read_metrics() if "eval/kl_target_model" in r]
    best = min(records, key=lambda r: r["eval/kl_target_model"])
    assert run.read_summary()["best"]["step"] == best["step"]
    assert torch.load(run.best_checkpoint, weights_only=True)["step"] == best["step"]
    from gan_anneal.experiments.critic_probe import load_run  # what `ganneal evaluate --probe --checkpoint` reads

    assert load_run(run.path, checkpoint="best")[2] == best["step"]
    assert load_run(run.path, checkpoint="last")[2] == 60
    run.best_checkpoint.unlink()
    with pytest.raises(UserError, match="best.pt"):
        load_run(run.path, checkpoint="best")


def test_evaluation_during_training_leaves_resume_exact(train_run, cached):
    outcome, straight = train_run(*IMAGES, name="straight")
    assert outcome == "done"
    outcome, broken = train_run(*IMAGES, name="broken", should_stop=lambda step: step == 13)
    assert outcome == "interrupted"
    outcome, resumed = train_run(name="broken", cfg=broken.read_config())
    assert outcome == "done"
    strip = lambda run: [{k: v for k, v in r.items() if k != "time_s"} for r in run.read_metrics()]  # noqa: E731
    assert strip(resumed) == strip(straight)  # losses and FIDs, bit for bit
    assert resumed.read_summary()["evaluation_s"] > 0


def test_evaluation_during_training_does_not_change_what_the_run_trains(train_run, cached):
    """Preparing the extractor draws random numbers; unforked, it moved every run that measured FID as it went."""
    plain = [o for o in IMAGES if not o.startswith("train.eval_every")] + ["train.eval_every=0"]
    _, watched = train_run(*IMAGES, name="watched")
    _, unwatched = train_run(*plain, name="unwatched")
    losses = lambda run: [(r["step"], r["loss_d"], r["loss_g"]) for r in run.read_metrics() if "loss_d" in r]  # noqa: E731
    assert len(losses(watched)) == 6 and losses(watched) == losses(unwatched)
    weights = [torch.load(run.checkpoint, weights_only=True)["generator"] for run in (watched, unwatched)]
    assert all(torch.equal(weights[0][name], weights[1][name]) for name in weights[0])


@pytest.mark.parametrize("overrides, needle", [
    (["train.best_metric=eval/loss_d"], "not a metric with a known better direction"),
    (["train.best_metric=eval/fid"], "train.eval_every"),
    (["train.eval_every=100"], "compare images"),
])
def test_bad_monitor_settings_exit_2_before_training(ganneal, tmp_path, overrides, needle):
    result = ganneal("train", *overrides, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert needle in result.stdout + result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "summary.json").exists()


def test_evaluate_best_without_a_best_checkpoint_exits_2(train_run, ganneal):
    outcome, run = train_run("train.steps=10", "train.log_every=5", "train.eval_samples=200")
    result = ganneal("evaluate", str(run.path), "--checkpoint", "best", "--probe", "js", "--probe-steps", "5")
    assert result.returncode == 2 and "no best checkpoint" in result.stdout + result.stderr


def test_fid_during_training_on_digits_needs_no_extractor_named(train_run, cached):
    outcome, run = train_run("dataset=mnist_small", "device=cpu", "model.base=8", "train.steps=4",
                             "train.batch_size=16", "train.checkpoint_every=4", "train.log_every=2",
                             "train.eval_samples=64", "train.eval_every=2", "train.eval_num_samples=64",
                             "evaluate.metrics='fid,prc'")
    assert outcome == "done"
    protocol = run.read_summary()["eval_protocol"]
    assert protocol["feature_extractor"]["name"] == "ganneal-mnist" and protocol["prc_neighborhood"] == 3
    assert {"eval/fid", "eval/precision", "eval/recall"} <= set(run.read_metrics()[-1])
