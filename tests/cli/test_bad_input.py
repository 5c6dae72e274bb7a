"""Results you can trust. Tables never average unlike runs; every input is checked before work starts
(exit 2, one message, no traceback, no run directory left behind); Hydra's flags, --version and the config
listing work."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from conftest import invoke
from omegaconf import OmegaConf

from gan_anneal.config import CONF_DIR, _hydra_compose, compose
from gan_anneal.errors import UserError
from gan_anneal.results.collect import collect_runs
from gan_anneal.results.render import render
from gan_anneal.results.table import build_tables
from gan_anneal.schema import RULES, check_settings, reference_values

GROUPS = sorted(p.name for p in Path(CONF_DIR).iterdir() if p.is_dir() and p.name != "sweep")


def no_traceback(result) -> None:
    assert "Traceback" not in result.output, result.output  # invoke puts an escaped exception's traceback there


# -- 1-4: tables -------------------------------------------------------------------------------------------

def toy_run(root: Path, name: str, seed: int = 0, dataset: str = "ring8", status: str = "done",
            metrics: dict | None = None, divergence: str = "jsd", anneal: str = "none", lam: float = 0.0,
            fidelity: dict | None = None, extractor: str = "ganneal-tiny", **extra) -> Path:
    path = root / name
    path.mkdir(parents=True)
    config = {"seed": seed, "divergence": {"name": divergence}, "anneal": {"name": anneal, "lam": lam},
              "dataset": {"name": dataset, "std": 0.05}, "train": {"steps": 2000, "progress": seed % 2 == 0}}
    for key, value in extra.items():
        section, leaf = key.split("__")
        config.setdefault(section, {})[leaf] = value
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (path / "summary.json").write_text(json.dumps({"status": status, "metrics": metrics or {"modes_covered": 8}}))
    if fidelity is not None:
        (path / "eval.json").write_text(json.dumps({"fidelity": {"metrics": fidelity, "protocol": {
            "feature_extractor": {"name": extractor, "stand_in": extractor == "ganneal-tiny"}}}}))
    return path


def test_unlike_runs_are_split_into_settings_named_by_what_differs(tmp_path):
    toy_run(tmp_path, "a", dataset="ring8", metrics={"modes_covered": 8})
    toy_run(tmp_path, "b", dataset="grid25", metrics={"modes_covered": 20})
    toy_run(tmp_path, "c", seed=1, dataset="ring8", metrics={"modes_covered": 6})  # a second seed of `a`
    tables = build_tables(collect_runs(tmp_path), ["modes_covered"])
    assert sorted(t.setting for t in tables) == ["dataset=grid25", "dataset=ring8"]
    text = render(tables, "markdown")
    assert "7.0 ± 1.4" in text  # ring8's two seeds, and grid25's 20 is not among them
    assert "20.0" in text and "14.0" not in text
    assert "differ in dataset" in text


def test_a_learning_rate_sweep_on_one_divergence_is_split_even_though_wgan_sets_lr(tmp_path):
    toy_run(tmp_path, "a", optim__lr_g=1e-3)
    toy_run(tmp_path, "b", optim__lr_g=1e-4)
    assert sorted(t.setting for t in build_tables(collect_runs(tmp_path), ["modes_covered"])) == \
        ["optim.lr_g=0.0001", "optim.lr_g=0.001"]


def test_rows_and_columns_explain_their_own_keys(tmp_path):
    """W-GAN's own optimiser and λ's own column do not split a table; neutral keys (train.progress) neither."""
    toy_run(tmp_path, "a", divergence="jsd", optim__lr_g=1e-3)
    toy_run(tmp_path, "b", divergence="wgan", optim__lr_g=1e-4, seed=1)
    toy_run(tmp_path, "c", divergence="jsd", anneal="static", lam=0.1)
    tables = build_tables(collect_runs(tmp_path), ["modes_covered"])
    assert [t.setting for t in tables] == [""]


def test_a_baseline_without_a_schedule_and_keys_only_some_schedules_have_do_not_split(tmp_path):
    toy_run(tmp_path, "a", anneal="none")  # `ganneal train` alone: the λ = 0 column
    toy_run(tmp_path, "b", seed=1, anneal="static", lam=0, anneal__negative="entropy")
    toy_run(tmp_path, "c", anneal="pma", lam=1, anneal__warmup=0.0)  # a key static runs do not have
    toy_run(tmp_path, "d", anneal="static", lam=0.1, regularizer__force="unit")  # a key older runs lack
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.yaml").write_text("{unclosed")
    (tmp_path / "broken" / "summary.json").write_text("{}")
    tables = build_tables(collect_runs(tmp_path), ["modes_covered"])
    assert [t.setting for t in tables] == [""]


def test_a_split_note_names_list_valued_keys_whole(tmp_path):
    toy_run(tmp_path, "a", optim__betas=[0.5, 0.999])
    toy_run(tmp_path, "b", optim__betas=[0.0, 0.9])
    (first, _) = build_tables(collect_runs(tmp_path), ["modes_covered"])
    assert "differ in optim.betas:" in first.notes[0]


def test_evaluations_with_different_protocols_are_not_averaged(tmp_path):
    toy_run(tmp_path, "a", dataset="cifar10", fidelity={"fid": 30.0}, extractor="inception-v3-compat")
    toy_run(tmp_path, "b", seed=1, dataset="cifar10", fidelity={"fid": 300.0}, extractor="ganneal-tiny")
    assert sorted(t.setting for t in build_tables(collect_runs(tmp_path), ["fid"])) == [
        "eval.extractor=ganneal-tiny", "eval.extractor=inception-v3-compat"]


def test_two_runs_of_one_cell_with_one_seed_are_an_error(tmp_path):
    toy_run(tmp_path, "a")
    toy_run(tmp_path, "again")
    with pytest.raises(UserError, match="same settings and seed 0"):
        build_tables(collect_runs(tmp_path), ["modes_covered"])
    result = invoke("table", str(tmp_path))
    assert result.returncode == 2 and "again" in result.output
    no_traceback(result)


def test_best_marks_follow_the_displayed_value(tmp_path):
    toy_run(tmp_path, "a", anneal="static", lam=-1, metrics={"hq_fraction": 0.7001})
    toy_run(tmp_path, "b", anneal="static", lam=0, metrics={"hq_fraction": 0.7004})
    toy_run(tmp_path, "c", anneal="oa", metrics={"hq_fraction": 0.5})
    (row,) = build_tables(collect_runs(tmp_path), ["hq_fraction"])[0].rows
    assert [c.best for c in row.cells.values()] == [True, True, False]  # 0.700 and 0.700: both best
    for name in ("a", "b", "c"):
        (tmp_path / name / "summary.json").write_text(json.dumps({"status": "done",
                                                                  "metrics": {"hq_fraction": 0.7}}))
    (row,) = build_tables(collect_runs(tmp_path), ["hq_fraction"])[0].rows
    assert not any(c.best for c in row.cells.values())  # all tied: none is better


@pytest.mark.parametrize("fmt", ["markdown", "latex", "csv"])
def test_the_stand_in_caveat_reaches_every_format(tmp_path, fmt):
    toy_run(tmp_path, "a", dataset="cifar10", fidelity={"is_mean": 1.02, "fid": 300.0})
    result = invoke("table", str(tmp_path), "--format", fmt)
    assert result.returncode == 0, result.output
    assert "stand-in extractor (ganneal-tiny)" in result.output and "not Inception numbers" in result.output
    if fmt == "csv":
        header = result.output.splitlines()[0].split(",")
        assert "extractor" in header and "ganneal-tiny" in result.output.splitlines()[1]


def test_an_unknown_metric_names_the_metrics_present(tmp_path):
    toy_run(tmp_path, "a", metrics={"modes_covered": 8, "hq_fraction": 0.6})
    result = invoke("table", str(tmp_path), "--metric", "nope")
    assert result.returncode == 2 and "Metrics present: hq_fraction, modes_covered" in " ".join(result.output.split())
    result = invoke("table", str(tmp_path), "--metric", "fid")
    assert result.returncode == 2 and "ganneal evaluate" in result.output


# -- 5: every setting checked at composition ----------------------------------------------------------------

def wrong_values(key: str, default):
    """A value of the wrong type, and one out of range where the key has a range."""
    rule = RULES.get(key)
    kind = rule.kind if rule is not None else type(default)
    if rule is None and default is None:
        return []
    values = []
    if rule is not None and rule.choices is not None:
        values.append("no-such-choice")
    elif kind is bool:
        values.append("maybe")
    elif kind in (int, float):
        values.append("abc")
    elif kind is str:
        values.append([1, 2])
    elif kind in (list, tuple):
        values.append("abc")
    if rule is not None and rule.choices is None and rule.low is not None and kind in (int, float):
        values.append(rule.low - 1 if not rule.open_low else rule.low)
    if rule is not None and rule.choices is None and rule.high is not None and kind in (int, float):
        values.append(rule.high + 1)
    return values


# experiments, divergence_model and divergence_anneal set other groups' keys (@package _global_): the test after
# this one composes them
SPECIALISATIONS = ("experiment", "divergence_model", "divergence_anneal")


@pytest.mark.parametrize("group", [g for g in GROUPS if g not in SPECIALISATIONS])
def test_every_key_of_every_option_refuses_wrong_types_and_ranges(group):
    """Property: for each option of the group, each of its keys given a wrong type or an out-of-range value
    is refused with a message naming the key (checked on the composed config, as `ganneal train` does)."""
    checked = 0
    for option in sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml")):
        plain = reference_values(_hydra_compose([f"{group}={option}"]))  # the option's defaults are the reference
        for key in [k for k in plain if k.startswith(f"{group}.")]:
            for value in wrong_values(key, plain[key]):
                broken = dict(plain, **{key: value})
                with pytest.raises(UserError, match=key.replace(".", r"\.")):
                    check_settings(OmegaConf.create(unflatten(broken)), plain, groups=(group,))
                checked += 1
        check_settings(OmegaConf.create(unflatten(plain)), plain, groups=(group,))  # the defaults pass
    assert checked > 0


def unflatten(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


@pytest.mark.parametrize("override", ["anneal=static anneal.lam=abc", "dataset.n_modes=abc", "+train.foo=1",
                                      "model.hidden=0", "optim.betas=[0.5,1.5]", "anneal=oa anneal.warmup=2",
                                      "divergence=rkl divergence.penalty=l2", "score.smoothing=-1",
                                      "device.precision=fp8", "regularizer.normalize=maybe", "metrics.mode_min_share=2",
                                      "anneal=static anneal.lam=-2 anneal.negative=raw", "train.steps=${nope}"])
def test_bad_settings_exit_2_before_any_directory(tmp_path, override):
    result = invoke("train", *override.split(), "hydra.run.dir=run", cwd=tmp_path)
    assert result.returncode == 2, result.output
    assert result.output.startswith("error:") and not (tmp_path / "run").exists()
    no_traceback(result)


def test_hydra_interpolations_that_resolve_in_the_job_are_accepted():
    assert "${hydra:" in compose(["score=dsm", "score.cache_dir=${hydra:runtime.cwd}/scores"]).score._get_node(
        "cache_dir")._value()


def test_every_shipped_experiment_and_sweep_job_passes_the_schema():
    for experiment in (p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml")):
        compose([f"experiment={experiment}"])
    for name in (p.stem for p in (Path(CONF_DIR) / "divergence_anneal").glob("*.yaml")):
        divergence, model, anneal = name.split("_")  # chosen by config.yaml from these three groups
        assert compose([f"divergence={divergence}", f"model={model}", f"anneal={anneal}"]).anneal.name == anneal
    from gan_anneal.experiments.sweep import load_sweep, plan_jobs

    for sweep in (p.stem for p in (Path(CONF_DIR) / "sweep").glob("*.yaml")):
        for job in plan_jobs(load_sweep(sweep), "/tmp/unused", [], None, None, None)[:2]:
            compose(job.overrides)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without a GPU")
def test_a_user_error_found_at_build_leaves_no_run_directory(tmp_path):
    result = invoke("train", "device=cuda", "train.steps=2", "hydra.run.dir=run", cwd=tmp_path)
    assert result.returncode == 2 and "no CUDA device" in result.output
    assert not (tmp_path / "run").exists()
    result = invoke("train", "-m", "device=cuda", "seed=0,1", "train.steps=2", "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert result.returncode == 2 and "2 bad-input" in result.output
    assert not [p for p in (tmp_path / "sweep").iterdir() if p.is_dir()]


# -- 6-8: evaluate and output paths --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def toy_trained(tmp_path_factory):
    from gan_anneal.runner import run_training

    path = tmp_path_factory.mktemp("toy") / "run"
    assert run_training(compose(["train.steps=4", "train.progress=false", "train.eval_samples=200",
                                 "train.snapshot_samples=200", "train.batch_size=32", "device=cpu"]), path) == "done"
    return path


def test_evaluate_on_a_toy_run_says_what_applies(toy_trained):
    for extra in ([], ["--extractor", "ganneal-tiny"]):
        result = invoke("evaluate", str(toy_trained), *extra)
        assert result.returncode == 2, result.output
        text = " ".join(result.output.split())
        assert "dataset=ring8" in text and "--probe" in text and "Inception" not in text
        no_traceback(result)


@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 100])
def test_broken_inception_weights_exit_2(tmp_path, content):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"dataset": {"name": "cifar10"}, "evaluate": {}}))
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    weights = tmp_path / "w.pth"
    weights.write_bytes(content)
    result = invoke("evaluate", str(run), "--inception-weights", str(weights))
    assert result.returncode == 2, result.output
    assert "weights-inception-2015-12-05-6726825d.pth" in result.output.replace("\n", "")
    no_traceback(result)


def test_output_paths_are_checked_before_the_work(tmp_path, toy_trained):
    result = invoke("table", str(toy_trained.parent), "--format", "csv", "--out", str(tmp_path / "no" / "t.csv"))
    assert result.returncode == 2 and "does not exist" in result.output and "metric," not in result.output
    result = invoke("table", str(toy_trained.parent), "--format", "csv", "--out", str(tmp_path / "t.png"))
    assert result.returncode == 2 and ".csv" in result.output
    result = invoke("curves", str(toy_trained), "--out", str(tmp_path / "x.txt"))
    assert result.returncode == 2 and ".png" in result.output
    no_traceback(result)


# -- 9-10: flags, version, configs ---------------------------------------------------------------------------

def test_hydra_flags_and_unknown_flags(tmp_path, run_cli):
    # in a fresh interpreter: Hydra's --info sets up logging on the process's streams, which CliRunner closes
    result = run_cli("train", "--hydra-help", cwd=tmp_path)
    assert result.returncode == 0 and "Hydra" in result.stdout
    result = run_cli("train", "--info", "defaults", cwd=tmp_path)
    assert result.returncode == 0 and "Defaults List" in result.stdout
    result = invoke("train", "--frobnicate", cwd=tmp_path)
    assert result.returncode == 2 and "no option --frobnicate" in result.output and "--info" in result.output
    assert not list(tmp_path.iterdir())


def test_version_bare_command_and_config_listing():
    result = invoke("--version")
    assert result.returncode == 0 and "ganneal" in result.output and "torch" in result.output
    assert invoke().returncode == 0
    result = invoke("configs")
    assert result.returncode == 0
    for group in GROUPS:
        assert group in result.output
    assert "ring8" in result.output and "(default)" in result.output
    assert invoke("configs", "nope").returncode == 2
    assert "ring8*" in invoke("train", "--help").output


def test_the_kind_table_covers_every_registered_dataset():
    from gan_anneal.data import DATASETS
    from gan_anneal.kinds import dataset_kind

    assert [n for n in DATASETS.names() if dataset_kind(n) == "unknown"] == []
    assert {p.stem for p in (Path(CONF_DIR) / "dataset").glob("*.yaml")} <= set(DATASETS.names())


# -- finding runs ----------------------------------------------------------------------------------

def test_runs_lists_done_interrupted_stale_and_failed_runs(tmp_path):
    import subprocess
    import sys

    toy_run(tmp_path, "done_run", metrics={"modes_covered": 8, "hq_fraction": 0.7})
    toy_run(tmp_path, "stopped", seed=1, status="interrupted")
    toy_run(tmp_path, "broken", seed=2, status="failed")
    stale = toy_run(tmp_path, "killed", seed=3, status="running")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (stale / ".lock").write_text(json.dumps({"host": __import__("socket").gethostname(), "pid": int(dead.stdout)}))
    result = invoke("runs", str(tmp_path), "--json")
    assert result.returncode == 0, result.output
    lines = {Path(line["path"]).name: line for line in json.loads(result.output)}
    assert {name: line["status"] for name, line in lines.items()} == {
        "done_run": "done", "stopped": "interrupted", "broken": "failed", "killed": "stale"}
    assert lines["done_run"]["metrics"] == {"modes_covered": 8, "hq_fraction": 0.7}  # numbers for scripts
    assert lines["stopped"]["settings"]["seed"] == 1 and isinstance(lines["done_run"]["total_steps"], int)
    table = invoke("runs", str(tmp_path))
    assert table.returncode == 0 and "stale" in table.output
    assert invoke("runs", str(tmp_path / "nowhere")).returncode == 2


def test_a_sweep_file_outside_the_package_is_accepted_and_validated(tmp_path):
    mine = tmp_path / "mysweep.yaml"
    mine.write_text("description: mine\ndivergences: [jsd]\nstatic: [0]\nseeds: [0, 1]\n"
                    f"out: {tmp_path / 'out'}\noverrides: [train.steps=2]\n")
    result = invoke("sweep", str(mine), "--dry-run")
    assert result.returncode == 0, result.output
    assert result.output.count("train") >= 2 and "static_0_seed1" in result.output
    (tmp_path / "bad.yaml").write_text("divergences: jsd\n")
    result = invoke("sweep", str(tmp_path / "bad.yaml"), "--dry-run")
    assert result.returncode == 2 and "divergences must be a list" in result.output
    (tmp_path / "typo.yaml").write_text("divergencez: [jsd]\n")
    assert "unknown keys divergencez" in invoke("sweep", str(tmp_path / "typo.yaml")).output
    assert invoke("sweep", str(tmp_path / "absent.yaml")).returncode == 2


def test_a_run_made_before_a_key_existed_continues_under_the_same_command():
    from gan_anneal.results.continuation import differences

    wanted = compose([])
    stored = OmegaConf.to_container(wanted, resolve=True)
    del stored["regularizer"]["force"], stored["model_score"]["updates"], stored["device"]["deterministic"]
    assert differences(OmegaConf.create(stored), wanted) == {}
    assert "regularizer.force" in differences(OmegaConf.create(stored), compose(["regularizer.force=critic"]))


def test_runs_shows_a_running_runs_current_step_not_its_last_checkpoint(tmp_path):
    import socket

    run = toy_run(tmp_path, "live", status="running")
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "steps": 500, "total_steps": 2000}))
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss_d": 0.1}) + "\n" for s in (650, 700)))
    (run / ".lock").write_text(json.dumps({"host": socket.gethostname(), "pid": os.getppid()}))  # a live writer
    result = invoke("runs", str(tmp_path), "--json")
    (line,) = json.loads(result.output)
    assert line["status"] == "running" and line["steps"] == 700 and line["total_steps"] == 2000


def test_a_non_ascii_path_says_how_to_quote_it(tmp_path):
    result = invoke("train", "train.steps=2", "hydra.run.dir=runs/ünï", cwd=tmp_path)
    text = " ".join(result.output.split())
    assert result.returncode == 2 and "LexerNoViableAltException" not in text
    assert """'hydra.run.dir="runs/ünï"'""" in text


@pytest.mark.parametrize("args, needles", [
    (["train", "logger=[jsonl,tensorbord]"], ["Did you mean 'tensorboard'?", "Valid options for logger: csv, jsonl, "
                                              "tensorboard."]),
    (["train", "divergance=rkl"], ["Did you mean 'divergence'?"]),
    (["train", "--cfg", "jobs"], ["--cfg jobs: valid are job"]),
])
def test_a_misspelling_is_exit_2_with_a_suggestion(args, needles, tmp_path):
    result = invoke(*args, cwd=tmp_path)
    text = " ".join(result.output.split())
    assert result.returncode == 2 and all(n in text for n in needles), text
    assert "usage:" not in text  # not Hydra's argparse dump


def test_the_sweep_help_names_every_shipped_sweep():
    from gan_anneal.experiments.sweep import available_sweeps

    text = " ".join(invoke("sweep", "--help").output.replace("│", " ").split())
    assert all(name in text for name in available_sweeps()) and "mnist_table" in text


def test_configs_shows_whole_first_sentences():
    from gan_anneal.config import group_options

    for group, options in group_options().items():
        for name, text in options:
            assert not text or text.endswith((".", "!", "?")), (group, name, text)  # never cut mid-sentence


def test_schedule_compare_prints_all_three_tables():
    result = invoke("schedule", "--compare")
    assert result.returncode == 0 and all(f"anneal={n}" in result.output for n in ("pma", "nma", "oa"))


def test_the_cluster_script_without_root_is_exit_2_and_changes_nothing(tmp_path):
    """Run as an ordinary user (nobody, when the tests run as root): refused before anything is installed."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "slurm_cluster.sh"
    before = sorted(Path("/etc/slurm").glob("*")) if Path("/etc/slurm").exists() else []
    command = ["bash", str(script), "up"]
    if os.geteuid() == 0:
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "needs root" in result.stderr
    assert (sorted(Path("/etc/slurm").glob("*")) if Path("/etc/slurm").exists() else []) == before
