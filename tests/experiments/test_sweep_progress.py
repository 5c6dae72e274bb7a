"""A sweep's progress lines and ETA, read from its job folders (experiments/sweep_progress.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gan_anneal.experiments.sweep import Job
from gan_anneal.experiments.sweep_progress import RELATIVE_COST, SweepProgress, estimate, kind


def job(tmp_path, divergence, anneal, lam, seed=0):
    return Job(divergence, anneal, lam, seed, str(tmp_path / f"{divergence}_{anneal}_{lam}_{seed}"), [])


def write(job, status, steps, total=100, wall=None, eval_s=None):
    folder = Path(job.path)
    folder.mkdir(parents=True, exist_ok=True)
    summary = {"status": status, "steps": steps, "total_steps": total}
    if wall is not None:
        summary["wall_time_s"] = wall
    (folder / "summary.json").write_text(json.dumps(summary))
    if eval_s is not None:
        (folder / "eval.json").write_text(json.dumps({"fidelity": {"protocol": {"seconds": eval_s}}}))


def test_kinds_follow_the_terms_a_schedule_weights(tmp_path):
    assert kind(job(tmp_path, "rkl", "static", 0.0)) == ("rkl", "0")
    assert kind(job(tmp_path, "rkl", "static", -1.0)) == ("rkl", "-")
    assert kind(job(tmp_path, "jsd", "pma", None)) == ("jsd", "+")
    assert kind(job(tmp_path, "wgan", "oa", None)) == ("wgan", "±")


def test_estimates_use_a_kinds_measured_runs_and_scale_the_rest(tmp_path):
    done_jsd, same_kind, other = job(tmp_path, "jsd", "static", 0.0), job(tmp_path, "jsd", "static", 0.0, 1), \
        job(tmp_path, "rkl", "static", -1.0)
    costs = estimate([done_jsd, same_kind, other], {done_jsd.path: 100.0})
    assert costs[same_kind.path] == 100.0
    assert costs[other.path] == pytest.approx(100.0 * RELATIVE_COST[("rkl", "-")])
    assert estimate([other], {})[other.path] is None  # nothing measured yet: no guess


def test_progress_lines_and_eta_come_from_the_job_folders(tmp_path):
    a, b = job(tmp_path, "jsd", "static", 0.0), job(tmp_path, "jsd", "static", 0.0, 1)
    write(a, "done", 100, wall=90.0, eval_s=10.0)
    write(b, "running", 50)
    lines = []
    progress = SweepProgress([a, b], parallel=1, log=lines.append)
    status = progress.poll()
    assert "jsd 0 seed 1: running, step 50/100" in "\n".join(lines)
    assert status.startswith("sweep: 1/2 done") and "about 0 min 50 s left" in status  # half of a 100 s run
    lines.clear()
    progress.poll()
    assert lines == []  # nothing moved: nothing printed
