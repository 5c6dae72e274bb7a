"""The logger group: metrics.csv and TensorBoard's event files agree with metrics.jsonl, across a resume too."""

from __future__ import annotations

import csv

import pytest

LOGGED = ["train.steps=60", "train.log_every=10", "train.checkpoint_every=25", "train.eval_samples=500",
          "train.sample_every=20", "train.snapshot_samples=300", "anneal=oa", "divergence=rkl", "train.n_critic=1"]


def _csv_rows(run):
    with open(run.path / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _same_as_jsonl(run):
    rows, records = _csv_rows(run), run.read_metrics()
    assert len(rows) == len(records)
    for row, record in zip(rows, records):
        assert {k for k, v in row.items() if v != ""} == set(record)
        assert all(float(row[k]) == pytest.approx(float(v), rel=1e-12, abs=0) for k, v in record.items())


def _events(path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(path), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def test_csv_and_tensorboard_hold_what_metrics_jsonl_holds(train_run):
    pytest.importorskip("tensorboard")
    outcome, run = train_run(*LOGGED, "logger=[jsonl,csv,tensorboard]")
    assert outcome == "done"
    _same_as_jsonl(run)

    events = _events(run.path)  # TensorBoard's own reader, on the run directory (the name `--logdir runs/` shows)
    tags = events.Tags()
    assert {"train/loss_d", "train/loss_g", "anneal/lam", "anneal/beta", "anneal/w_lik", "anneal/w_ent",
            "eval/modes_covered", "eval/kl_target_model"} <= set(tags["scalars"])
    lam = {e.step: e.value for e in events.Scalars("anneal/lam")}
    expected = {r["step"]: r["lam"] for r in run.read_metrics() if "lam" in r}
    assert lam.keys() == expected.keys() and all(lam[s] == pytest.approx(v, abs=1e-6) for s, v in expected.items())
    assert [e.step for e in events.Scalars("eval/modes_covered")] == [20, 40, 60]
    assert [e.step for e in events.Images("samples")] == [20, 40, 60]  # the snapshots and the final picture
    assert events.Images("samples")[0].width > 100


def test_a_resumed_run_keeps_csv_and_tensorboard_consistent(train_run, make_cfg):
    pytest.importorskip("tensorboard")
    outcome, run = train_run(*LOGGED, "logger=[jsonl,csv,tensorboard]", should_stop=lambda step: step == 33)
    assert outcome == "interrupted"  # checkpoint at step 33; metrics up to step 30 kept, 40 is logged again
    outcome, run = train_run(name="run", cfg=run.read_config())
    assert outcome == "done"
    _same_as_jsonl(run)
    steps = [e.step for e in _events(run.path).Scalars("train/loss_d")]
    assert steps == [10, 20, 30, 40, 50, 60]  # purge_step hid nothing twice, lost nothing


def test_default_logger_writes_only_metrics_jsonl(train_run):
    outcome, run = train_run("train.steps=20", "train.log_every=10", "train.eval_samples=300")
    assert outcome == "done"
    assert (run.path / "metrics.jsonl").exists()
    assert not (run.path / "metrics.csv").exists() and not list(run.path.glob("events.out.tfevents.*"))


def test_tensorboard_missing_is_a_clear_error(make_cfg, tmp_path, monkeypatch):
    import builtins

    from gan_anneal.errors import UserError
    from gan_anneal.results.loggers import build_loggers
    from gan_anneal.results.rundir import RunDir

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    with pytest.raises(UserError, match=r"pip install 'ganneal\[tensorboard\]'"):
        build_loggers({"tensorboard": {"name": "tensorboard"}}, RunDir(tmp_path))


def test_unknown_logger_is_refused_at_composition(run_cli, tmp_path):
    result = run_cli("train", "logger=[jsonl,wandb]", f"hydra.run.dir={tmp_path / 'x'}")
    assert result.returncode == 2
    assert "logger" in result.stderr + result.stdout and "Traceback" not in result.stderr


def test_curves_log_y_keeps_an_almost_constant_series_flat_and_linear():
    from gan_anneal.experiments.curves import y_axis

    scale, limits = y_axis([1.0, 1.0 + 1e-7, 1.0 - 1e-7], log_y=True)
    assert scale == "linear" and limits == pytest.approx((0.99, 1.01))  # noise is not a cliff
    assert y_axis([1000.0, 300.0, 40.0, 35.0], log_y=True) == ("log", None)  # spans orders of magnitude
    assert y_axis([5.0, 6.0, 7.0], log_y=True) == ("linear", None)  # less than 10×: linear ticks say more
    assert y_axis([-1.0, 2.0], log_y=True)[0] == "linear"  # a log axis cannot hold non-positive values
