"""A run directory's record never lies: a refused command leaves it byte-identical (`.hydra/` included), resume=
rests on the record ganneal wrote, a refused fresh directory leaves no empty parents, a multirun says how each job
ended and why."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

SHORT = ["train.steps=20", "train.log_every=10", "train.checkpoint_every=10", "train.sample_every=0",
         "train.eval_samples=200", "train.progress=false"]


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def finished(ganneal, tmp_path):
    run = tmp_path / "ov"
    result = ganneal("train", *SHORT, "anneal=static", "anneal.lam=0.1", f"hydra.run.dir={run}")
    assert result.returncode == 0, result.stdout + result.stderr
    return run


@pytest.mark.parametrize("refused, needle", [
    (["seed=7"], "other settings"),
    (["train.steps=10"], "would shorten it"),
    (["device=cuda"], "other settings"),
])
def test_a_refused_command_leaves_the_run_directory_byte_identical(finished, ganneal, refused, needle):
    before = snapshot(finished)
    assert ".hydra/overrides.yaml" in before
    result = ganneal("train", *SHORT, "anneal=static", "anneal.lam=0.1", *refused, f"hydra.run.dir={finished}")
    assert result.returncode == 2 and needle in " ".join((result.stdout + result.stderr).split())
    assert snapshot(finished) == before


def test_resume_after_a_refused_command_uses_the_record_ganneal_wrote(finished, ganneal):
    ganneal("train", *SHORT, "seed=7", f"hydra.run.dir={finished}")  # refused
    again = ganneal("train", f"resume={finished}")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to do" in again.stdout
    overrides = (finished / ".hydra" / "overrides.yaml").read_text()
    assert "seed=7" not in overrides and "anneal.lam=0.1" in overrides


def test_an_extension_rewrites_the_record_with_the_new_length(finished, ganneal):
    result = ganneal("train", f"resume={finished}", "train.steps=30")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "train.steps=30" in (finished / ".hydra" / "overrides.yaml").read_text()
    assert ganneal("train", f"resume={finished}").returncode == 0  # the record now names the extended run


def test_a_refused_fresh_directory_leaves_no_empty_parents(ganneal, tmp_path):
    (tmp_path / "kept").mkdir()
    result = ganneal("train", *SHORT, "device=cuda", f"hydra.run.dir={tmp_path / 'kept' / 'a' / 'b' / 'c'}")
    assert result.returncode == 2
    assert list((tmp_path / "kept").iterdir()) == []  # a/b/c all went; the folder that existed stays


def test_a_multirun_records_each_jobs_outcome_and_why_it_was_refused(ganneal, tmp_path):
    sweep = tmp_path / "sweep"
    result = ganneal("train", "-m", *SHORT, "train.steps=10", "device=cpu,cuda", f"hydra.sweep.dir={sweep}")
    entries = [json.loads(line) for line in (sweep / "jobs.jsonl").read_text().splitlines()]
    assert sorted(e["outcome"] for e in entries) == ["bad-input", "done"], result.stdout + result.stderr
    refused = next(e for e in entries if e["outcome"] == "bad-input")
    assert "device=cuda" in refused["error"]
    assert "1 bad-input, 1 done" in result.stdout
    again = ganneal("train", "-m", *SHORT, "train.steps=10", "device=cpu,cuda", f"hydra.sweep.dir={sweep}")
    assert "1 bad-input, 1 done" in again.stdout, again.stdout  # re-run: the finished job is counted, once


def _entry(n: int, fid: float, metrics=("is", "fid"), extractor="ganneal-mnist") -> dict:
    return {"metrics": {"fid": fid}, "protocol": {
        "num_samples": n, "metrics": list(metrics), "feature_extractor": {"name": extractor, "weights_sha256": "ab"},
        "reference": {"dataset": "mnist_small", "split": "train", "size": 5000}, "checkpoint": "last",
        "checkpoint_step": 100, "generator": "raw", "noise_seed": 2020}}


def test_a_second_evaluation_never_replaces_the_first():
    from gan_anneal.results.evaluations import add_evaluation, choose

    record, _ = add_evaluation({}, _entry(2000, 40.0))
    record, _ = add_evaluation(record, _entry(500, 45.0))
    assert sorted(e["protocol"]["num_samples"] for e in record["evaluations"].values()) == [500, 2000]
    assert choose(record)["metrics"]["fid"] == 40.0  # the most samples, by default
    assert choose(record, num_samples=500)["metrics"]["fid"] == 45.0
    assert choose(record, extractor="inception-v3-compat") is None


def test_an_evaluation_under_the_same_protocol_adds_its_metrics():
    from gan_anneal.results.evaluations import add_evaluation

    record, _ = add_evaluation({}, _entry(2000, 40.0))
    prc = _entry(2000, 40.0, metrics=("prc",))
    prc["metrics"] = {"precision": 0.7, "recall": 0.6}
    record, _ = add_evaluation(record, prc)
    (only,) = record["evaluations"].values()
    assert only["metrics"] == {"fid": 40.0, "precision": 0.7, "recall": 0.6}
    assert only["protocol"]["metrics"] == ["is", "fid", "prc"] and record["fidelity"] == only


def test_an_old_eval_json_reads_as_its_one_evaluation(tmp_path):
    from gan_anneal.results.collect import read_run
    from gan_anneal.results.evaluations import add_evaluation

    run = tmp_path / "old"
    run.mkdir()
    (run / "config.yaml").write_text("seed: 0\ndivergence: {name: jsd}\nanneal: {name: none}\ndataset: {name: mnist_small}\n")
    (run / "summary.json").write_text('{"status": "done"}')
    (run / "eval.json").write_text(json.dumps({"fidelity": _entry(2000, 40.0)}))
    assert read_run(run).metrics["fid"] == 40.0 and read_run(run).config["eval.num_samples"] == 2000
    record, _ = add_evaluation(json.loads((run / "eval.json").read_text()), _entry(500, 45.0))
    assert len(record["evaluations"]) == 2  # the old entry is kept when a new one arrives
    (run / "eval.json").write_text(json.dumps(record))
    assert read_run(run).metrics["fid"] == 40.0 and read_run(run, {"num_samples": 500}).metrics["fid"] == 45.0


def test_retyping_a_multirun_command_continues_the_same_sweep(ganneal, tmp_path):
    command = ["train", "-m", *SHORT, "train.steps=10", "seed=0,1"]
    first = ganneal(*command, cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    (sweep,) = (tmp_path / "runs" / "multirun").iterdir()
    finished = {p: p.read_bytes() for p in sweep.rglob("summary.json")}
    again = ganneal(*command, cwd=tmp_path)
    assert again.returncode == 0 and "2 done" in again.stdout
    assert list((tmp_path / "runs" / "multirun").iterdir()) == [sweep]  # the same folder, nothing retrained
    assert {p: p.read_bytes() for p in sweep.rglob("summary.json")} == finished


def test_a_rerun_joblib_multirun_reports_its_finished_jobs(tmp_path, run_cli):
    """In fresh interpreters, as typed: joblib's reusable workers would keep this command's environment (the swept
    keys that name job folders) for later tests in this process."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    command = ["train", "-m", *SHORT, "train.steps=10", "seed=0,1", "hydra/launcher=joblib",
               "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    assert run_cli(*command).returncode == 0
    again = run_cli(*command)
    assert again.returncode == 0 and "sweep finished: 2 done" in again.stdout, again.stdout + again.stderr


def test_a_merge_under_one_protocol_keeps_the_earlier_fields():
    from gan_anneal.results.evaluations import add_evaluation

    first = _entry(2000, 40.0)
    first["protocol"]["is_splits"] = 10
    record, _ = add_evaluation({}, first)
    prc = _entry(2000, 40.0, metrics=("prc",))
    prc["protocol"]["is_splits"] = None
    record, _ = add_evaluation(record, prc)
    assert record["fidelity"]["protocol"]["is_splits"] == 10


def test_a_sweep_counts_a_run_evaluated_when_any_kept_evaluation_matches_its_protocol(tmp_path):
    from gan_anneal.results.evaluations import add_evaluation, has_metrics

    full = _entry(5000, 40.0, metrics=("is", "fid", "prc"))
    full["metrics"] = {"is_mean": 5.0, "fid": 40.0, "precision": 0.6, "recall": 0.5}
    record, _ = add_evaluation({}, full)
    record, _ = add_evaluation(record, _entry(1000, 41.0, metrics=("fid",)))  # a later, smaller look
    (tmp_path / "eval.json").write_text(json.dumps(record))
    assert has_metrics(tmp_path, "is,fid,prc", 5000, "ganneal-mnist")
    assert not has_metrics(tmp_path, "is,fid,prc", 5000, "inception-v3-compat")
    assert not has_metrics(tmp_path, "is,fid,prc", 1000, "ganneal-mnist")


def test_the_launcher_does_not_name_a_multirun_folder():
    from gan_anneal.cli import command_folder_name

    plain = command_folder_name(["seed=0,1", "train.steps=10"])
    assert plain == "seed=0,1,train.steps=10"
    assert command_folder_name(["hydra/launcher=joblib", "seed=0,1", "train.steps=10",
                                "hydra.launcher.n_jobs=2"]) == plain
    odd = command_folder_name(["seed=0,1", "dataset.path=~/ünï dir"])  # made safe, told apart by a hash
    assert odd.startswith("dataset.path=") and odd.isascii() and " " not in odd and "/" not in odd


def test_a_run_is_marked_dirty_by_changed_code_not_by_the_records_a_sweep_writes(tmp_path):
    import subprocess

    from gan_anneal.results.rundir import source_revision

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "gan_anneal").mkdir()
    (tmp_path / "records").mkdir()
    (tmp_path / "gan_anneal" / "m.py").write_text("x = 1\n")
    (tmp_path / "records" / "sweep.yaml").write_text("runs: []\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    assert source_revision(tmp_path)["dirty"] is False
    (tmp_path / "records" / "sweep.yaml").write_text("runs: [a]\n")  # a sweep's own record
    assert source_revision(tmp_path)["dirty"] is False
    (tmp_path / "gan_anneal" / "m.py").write_text("x = 2\n")
    assert source_revision(tmp_path)["dirty"] is True
