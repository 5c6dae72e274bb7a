"""Run directories that never lose work: a job's directory decides whether it starts, resumes, extends or stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import invoke

SHORT = ["train.steps=40", "train.log_every=10", "train.checkpoint_every=20", "train.eval_samples=300",
         "train.progress=false", "train.sample_every=0"]


def _params(path: Path) -> dict:
    state = torch.load(path / "checkpoints" / "last.pt", weights_only=True)
    return {**{f"g.{k}": v for k, v in state["generator"].items()}, **{f"d.{k}": v for k, v in state["critic"].items()}}


def _same_params(a: Path, b: Path) -> bool:
    pa, pb = _params(a), _params(b)
    return pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)


def _snapshot(path: Path) -> dict:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_a_done_run_re_run_trains_nothing_and_a_changed_config_leaves_it_byte_identical(tmp_path, ganneal):
    run = tmp_path / "R"
    assert ganneal("train", *SHORT, f"hydra.run.dir={run}").returncode == 0
    before = _snapshot(run)  # .hydra/ included: ganneal writes it only when a run starts or continues
    again = ganneal("train", *SHORT, f"hydra.run.dir={run}")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to do" in again.stdout
    assert _snapshot(run) == before  # nothing rewritten
    changed = ganneal("train", *SHORT, "optim.lr_g=5e-4", f"hydra.run.dir={run}")
    assert changed.returncode == 2
    assert "optim.lr_g" in changed.stdout + changed.stderr
    assert _snapshot(run) == before
    shorter = ganneal("train", *[o for o in SHORT if "steps=" not in o], "train.steps=20", f"hydra.run.dir={run}")
    assert shorter.returncode == 2 and "shorten" in shorter.stdout + shorter.stderr


def test_resume_is_the_stored_command_in_place_and_extends_with_a_record(tmp_path, ganneal):
    run = tmp_path / "R"
    assert ganneal("train", *SHORT, f"hydra.run.dir={run}").returncode == 0
    # the case 2: resume=R together with hydra.run.dir=R
    same = ganneal("train", f"resume={run}", f"hydra.run.dir={run}")
    assert same.returncode == 0 and "nothing to do" in same.stdout, same.stdout + same.stderr
    longer = ganneal("train", f"resume={run}", "train.steps=60")
    assert longer.returncode == 0, longer.stdout + longer.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 60 and summary["status"] == "done"
    assert summary["extensions"] == [{"from_total": 40, "to_total": 60, "at_step": 40}]
    assert "steps: 60" in (run / "config.yaml").read_text()  # the override given on resume is recorded
    steps = [r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss_d" in r]
    assert steps == [10, 20, 30, 40, 50, 60]
    shown = ganneal("train", "--cfg", "job", f"resume={run}")  # resume= composes with --cfg like any override
    assert shown.returncode == 0 and "steps: 60" in shown.stdout
    assert json.loads((run / "summary.json").read_text())["steps"] == 60  # --cfg trained nothing


def test_empty_resume_and_resume_of_a_missing_run_are_errors(tmp_path, ganneal):
    empty = ganneal("train", "resume=", cwd=tmp_path)
    assert empty.returncode == 2 and "empty" in empty.stderr
    assert not (tmp_path / "runs").exists()
    missing = ganneal("train", f"resume={tmp_path / 'nothing'}")
    assert missing.returncode == 2 and "not a run directory" in missing.stderr


INTERRUPTED = ["train.steps=300", "train.log_every=20", "train.checkpoint_every=50", "train.eval_samples=300",
               "train.progress=false", "train.sample_every=0", "device.threads=1"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("straight") / "run"
    result = invoke("train", *INTERRUPTED, f"hydra.run.dir={path}")
    assert result.returncode == 0, result.stdout + result.stderr
    return path


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_re_running_the_command_after_an_interruption_matches_an_uninterrupted_run(tmp_path, ganneal, how,
                                                                                    uninterrupted):
    """The interrupted process is a real one (the signal reaches its handlers); the re-run is the same command."""
    broken = tmp_path / "broken"
    proc = subprocess.Popen([sys.executable, "-m", "gan_anneal.cli", "train", *INTERRUPTED, f"hydra.run.dir={broken}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not (broken / "checkpoints" / "last.pt").exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(getattr(signal, how))
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == {"SIGINT": 130, "SIGTERM": 143, "SIGKILL": -9}[how], out
    status = json.loads((broken / "summary.json").read_text())["status"]
    assert status == ("running" if how == "SIGKILL" else "interrupted")  # kill -9 leaves a stale `running`
    again = ganneal("train", *INTERRUPTED, f"hydra.run.dir={broken}")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _same_params(uninterrupted, broken)
    log = (broken / "train.log").read_text()
    assert "resuming from step" in log and "done: 300 steps" in log


def test_a_torn_metrics_line_and_a_corrupt_checkpoint_do_not_stop_a_resume(train_run):
    outcome, straight = train_run(*SHORT, name="straight")
    outcome, run = train_run(*SHORT, name="broken", should_stop=lambda step: step == 30)
    assert outcome == "interrupted"
    with open(run.path / "metrics.jsonl", "a") as f:
        f.write('{"step": 31, "loss_d": 0.1')  # kill -9 in the middle of a write
    assert len(run.read_metrics()) == 3  # the torn line is dropped
    # a truncated last.pt: the resume falls back on previous.pt (step 20) and still ends where an unbroken run does
    run.checkpoint.write_bytes(run.checkpoint.read_bytes()[:100])
    outcome, _ = train_run(*SHORT, name="broken")
    assert outcome == "done"
    assert _same_params(straight.path, run.path)
    assert "cannot be read" in (run.path / "train.log").read_text()  # the fallback is on the run's record too


def test_both_checkpoints_unreadable_is_exit_2_naming_both_and_how_to_start_over(ganneal, tmp_path):
    run = tmp_path / "R"
    args = [*[o for o in SHORT if "steps=" not in o], "train.steps=60", f"hydra.run.dir={run}"]
    first = ganneal("train", *[a for a in args if "train.steps" not in a], "train.steps=40")
    assert first.returncode == 0, first.stdout + first.stderr
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    (run / "checkpoints" / "previous.pt").write_bytes(b"")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    result = ganneal("train", *args)  # an extension needs the checkpoint
    text = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "Neither checkpoint" in text and "last.pt" in text and "previous.pt" in text and "rm -r" in text
    assert "EOFError: the file is empty or cut short" in text
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_a_run_another_process_finished_after_the_first_look_is_not_trained_again(train_run, monkeypatch):
    """The first look at the directory happens before torch loads (seconds); the plan that counts is made again
    once this process holds the directory's lock."""
    import gan_anneal.runner as runner
    from gan_anneal.results.continuation import Start

    _, run = train_run(*SHORT, name="R")
    before = _snapshot(run.path)
    real, looks = runner.plan_start, []

    def stale_first_look(run_dir, cfg, writer_alive):
        looks.append(writer_alive)
        return Start(resume=False) if len(looks) == 1 else real(run_dir, cfg, writer_alive)

    monkeypatch.setattr(runner, "plan_start", stale_first_look)
    outcome, _ = train_run(*SHORT, name="R")
    assert outcome == "done" and len(looks) == 2
    assert _snapshot(run.path) == before  # not trained over, and the lock given back


def test_a_failed_resume_does_not_rewrite_the_status(train_run, monkeypatch):
    import gan_anneal.train.build as build

    outcome, run = train_run(*SHORT, name="R", should_stop=lambda step: step == 20)
    assert run.read_summary()["status"] == "interrupted"

    def broken(*args, **kwargs):
        raise RuntimeError("the environment broke before training")

    monkeypatch.setattr(build, "build_experiment", broken)
    outcome, _ = train_run(*SHORT, name="R")
    assert outcome == "failed"
    assert run.read_summary()["status"] == "interrupted"  # still resumable, not `failed`


def test_a_nan_between_logging_steps_is_never_checkpointed(train_run, monkeypatch):
    import gan_anneal.train.loop as loop

    real_step = loop.train_step

    def poison(exp, step):
        out = real_step(exp, step)
        if step == 24:  # after the checkpoint at 20; the next logging step is 40
            with torch.no_grad():
                next(exp.generator.parameters()).fill_(float("nan"))
        return out

    monkeypatch.setattr(loop, "train_step", poison)
    outcome, run = train_run("train.steps=40", "train.log_every=40", "train.checkpoint_every=10",
                             "train.eval_samples=300")
    assert outcome == "diverged" and "non-finite parameters at step 30" in run.read_summary()["error"]
    state = torch.load(run.checkpoint, weights_only=True)
    assert state["step"] == 20 and all(torch.isfinite(v).all() for v in state["generator"].values())


def test_one_writer_per_directory(train_run, tmp_path):
    from gan_anneal.results.rundir import RunDir

    outcome, run = train_run(*SHORT, name="R", should_stop=lambda step: step == 20)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run.lock_path.write_text(json.dumps({"host": socket.gethostname(), "pid": live.pid}))
        run.update_summary(status="running")
        outcome, _ = train_run(*SHORT, name="R")
        assert outcome == "bad-input" and run.read_summary()["steps"] == 20  # a live writer: refused
    finally:
        live.kill()
        live.wait()
    outcome, _ = train_run(*SHORT, name="R")  # the holder is dead: its lock is taken over
    assert outcome == "done" and not run.lock_path.exists()
    assert RunDir(run.path).read_summary()["steps"] == 40


def test_files_follow_the_umask(train_run):
    old = os.umask(0o022)
    try:
        outcome, run = train_run(*SHORT, name="R")
    finally:
        os.umask(old)
    for path in (run.path / "summary.json", run.path / "config.yaml", run.checkpoint):
        assert path.stat().st_mode & 0o777 == 0o644, path


def test_plain_progress_lines_when_stdout_is_not_a_terminal(tmp_path, ganneal):
    run = tmp_path / "R"
    result = ganneal("train", "train.steps=40", "train.log_every=10", "train.progress_every_s=0",
                     "train.eval_samples=300", f"hydra.run.dir={run}")
    assert result.returncode == 0
    lines = [line for line in result.stdout.splitlines() if line.startswith("step ")]
    assert len(lines) == 4 and "steps/s" in lines[0] and "ETA" in lines[0]
    assert "step 40/40" in (run / "train.log").read_text()


def test_a_preempted_job_checkpoints_hands_the_signal_on_and_its_requeue_matches_an_unbroken_run(train_run):
    """submitit installs a handler for its preemption signal (USR2) that requeues the job and exits. The loop
    checkpoints first and then calls it; the requeued job (the same arguments) resumes in place."""
    from gan_anneal.results.rundir import RunDir

    handed = []

    def submitit_like(signum, frame):  # what submitit's SignalHandler does: requeue, then sys.exit(-1)
        handed.append(signum)
        raise SystemExit(-1)

    outcome, straight = train_run(*SHORT, name="straight")
    previous = signal.signal(signal.SIGUSR2, submitit_like)
    try:
        with pytest.raises(SystemExit):
            train_run(*SHORT, name="job", should_stop=lambda step: step == 30 and os.kill(os.getpid(), signal.SIGUSR2))
    finally:
        signal.signal(signal.SIGUSR2, previous)
    run = RunDir(straight.path.parent / "job")
    assert handed == [signal.SIGUSR2]
    # the signal arrives during step 30's check; the loop stops at the next step boundary
    assert run.read_summary()["status"] == "interrupted" and run.read_summary()["steps"] == 31
    assert torch.load(run.checkpoint, weights_only=True)["step"] == 31  # checkpointed at the signal, not at 20
    assert not run.lock_path.exists()
    outcome, _ = train_run(*SHORT, name="job")  # the requeued job
    assert outcome == "done" and _same_params(straight.path, run.path)


def test_what_a_launch_will_do_is_read_from_the_directory(train_run, make_cfg, tmp_path):
    """continuation.launch_action, which the sweep's plan and the SLURM launcher's skip both ask."""
    from gan_anneal.results.continuation import launch_action

    cfg = make_cfg(*SHORT)
    assert launch_action(tmp_path / "nothing", cfg) == "train"
    _, run = train_run(*SHORT, name="R", should_stop=lambda step: step == 20)
    assert launch_action(run.path, cfg) == "resume"
    assert launch_action(run.path, make_cfg(*SHORT, "optim.lr_g=5e-4")) == "differs"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run.lock_path.write_text(json.dumps({"host": socket.gethostname(), "pid": live.pid}))
        run.update_summary(status="running")
        assert launch_action(run.path, cfg) == "busy"
    finally:
        live.kill()
        live.wait()
    train_run(*SHORT, name="R")
    assert launch_action(run.path, cfg) == "done"
