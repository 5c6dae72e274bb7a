"""The package's layers point one way and hold no import circle (pyproject.toml's import-linter contract)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_layer_contract_holds():
    result = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                             "sys.exit(lint_imports_command())"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


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


def test_help_and_bad_input_answer_without_loading_torch(tmp_path):
    """The reason the deferred imports exist: these paths must stay fast (torch costs seconds to import)."""
    calls = [["--help"], ["train", "--help"], ["train", "nokey=1"], ["train", "divergence=nope"],
             ["evaluate", str(tmp_path / "missing")], ["runs", str(tmp_path / "missing")],
             ["table", str(tmp_path / "missing")], ["sweep", "no_such_sweep"]]
    code = ("import json, sys\nfrom typer.testing import CliRunner\nfrom gan_anneal.cli import app\n"
            "codes = [CliRunner().invoke(app, c).exit_code for c in json.loads(sys.argv[1])]\n"
            "print(json.dumps([codes, 'torch' in sys.modules]))")
    import json

    result = subprocess.run([sys.executable, "-c", code, json.dumps(calls)], capture_output=True, text=True,
                            timeout=120)
    codes, loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert codes == [0, 0, 2, 2, 2, 2, 2, 2] and not loaded, (codes, loaded)
