"""The package's layers point one way and hold no import circle (pyproject.toml's import-linter contract)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_layer_contract_holds():
    result = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                             "sys.exit(lint_imports_command())"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_module_sits_in_a_layer():
    """import-linter checks only the modules its layers name: a module outside them would escape the contract."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    layers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]["layers"]
    named = [m.strip() for layer in layers for m in layer.split(":")]
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "gan_anneal").rglob("*.py")
               if p.name != "__init__.py"]
    unplaced = [m for m in modules if not any(m == n or m.startswith(n + ".") for n in named)]
    assert unplaced == []


def test_no_module_imports_itself_through_a_circle():
    import grimp

    graph = grimp.build_graph("gan_anneal", exclude_type_checking_imports=True)
    circles = sorted({tuple(sorted((a, b))) for a in graph.modules for b in graph.find_modules_directly_imported_by(a)
                      if graph.chain_exists(importer=b, imported=a)})
    assert circles == []


def _function_level_imports(path: Path):
    import ast

    lines = path.read_text().splitlines()
    for fn in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    yield node, " ".join(lines[node.lineno - 1:node.end_lineno]), lines[node.lineno - 2]


def test_an_import_inside_a_function_says_why():
    """Imports belong at the top of a module; one inside a function carries its reason (start-up time: a heavy
    library, or torch in a module that must stay torch-free). cli.py states its reason once, in its docstring."""
    unexplained = [f"{path.relative_to(ROOT)}:{node.lineno}"
                   for path in sorted((ROOT / "gan_anneal").rglob("*.py")) if path.name != "cli.py"
                   for node, line, above in _function_level_imports(path)
                   if "#" not in line and not above.strip().startswith("#")]
    assert unexplained == []


def test_help_and_bad_input_answer_without_loading_torch(tmp_path, train_run):
    """The reason the deferred imports exist: these paths must stay fast (torch costs seconds to import). So must
    re-typing the command of a finished run, and a command its directory refuses."""
    short = ["train.steps=4", "train.log_every=2", "train.eval_samples=100", "train.progress=false",
             "train.sample_every=0"]
    _, done = train_run(*short)
    finished = ["train", *short, f"hydra.run.dir={done.path}"]
    calls = [["--help"], ["train", "--help"], ["train", "nokey=1"], ["train", "divergence=nope"],
             ["evaluate", str(tmp_path / "missing")], ["runs", str(tmp_path / "missing")],
             ["table", str(tmp_path / "missing")], ["sweep", "no_such_sweep"], finished, [*finished, "seed=7"]]
    code = ("import json, sys\nfrom typer.testing import CliRunner\nfrom gan_anneal.cli import app\n"
            "codes = [CliRunner().invoke(app, c).exit_code for c in json.loads(sys.argv[1])]\n"
            "print(json.dumps([codes, 'torch' in sys.modules]))")
    import json

    result = subprocess.run([sys.executable, "-c", code, json.dumps(calls)], capture_output=True, text=True,
                            timeout=120)
    codes, loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert codes == [0, 0, 2, 2, 2, 2, 2, 2, 0, 2] and not loaded, (codes, loaded)


# Modules whose tests reach them through a command or a training run, not by importing them: the test that does.
THROUGH = {
    "gan_anneal.data.discrete": "the binary and text data of test_bgan_discrete.py's runs",
    "gan_anneal.experiments.energy_figure": "`ganneal figure kidney` in test_energies.py",
    "gan_anneal.experiments.pixel_descent": "`ganneal pixel-descent` in test_pixel_descent.py",
    "gan_anneal.experiments.schedule_plot": "`ganneal schedule --compare --plot` in test_config.py",
    "gan_anneal.figures": "every picture a run or command saves (test_training.py, test_config.py)",
    "gan_anneal.models.dcgan": "the image runs of test_images.py and test_experiments.py",
    "gan_anneal.models.mlp": "every toy run (test_training.py)",
    "gan_anneal.models.score_conv": "the image data score and model score of test_images.py",
    "gan_anneal.results.files": "parallel processes on an empty cache in test_shared_caches.py",
    "gan_anneal.results.listing": "`ganneal runs` in test_bad_input.py",
    "gan_anneal.results.settings": "the tables' setting columns in test_table.py",
    "gan_anneal.train.monitor": "train.eval_every and train.best_metric in test_monitor.py",
    "gan_anneal.train.precision": "device.precision in test_device_options.py",
    "gan_anneal.train.signals": "SIGINT, SIGTERM and a chained preemption signal in test_continuation.py",
}


def test_every_module_has_a_direct_test_or_names_the_one_that_reaches_it():
    import re

    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py"))
    untested = []
    for path in sorted((ROOT / "gan_anneal").rglob("*.py")):
        if path.name == "__init__.py":
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        parent, name = module.rsplit(".", 1)
        direct = re.search(rf"from {re.escape(module)} import|import {re.escape(module)}\b|"
                           rf"from {re.escape(parent)} import [^\n]*\b{name}\b", tests)
        if not direct and module not in THROUGH:
            untested.append(module)
    assert untested == [], "import these in a test, or say in THROUGH which test reaches them"
    assert all((ROOT / (m.replace(".", "/") + ".py")).exists() for m in THROUGH)  # no reason for a module gone
