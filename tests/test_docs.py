"""The front door cannot rot silently: every relative link in the README and docs/ resolves to a file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "#", "mailto:")):
            continue
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert broken == [], f"{page.name}: {broken}"


def _readme_blocks() -> list[str]:
    return re.findall(r"```\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def test_every_ganneal_command_in_the_readme_exists():
    from typer.testing import CliRunner

    from gan_anneal.cli import app

    listed = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    used = {m for block in _readme_blocks() for m in re.findall(r"^(?:\$ )?ganneal (\w[\w-]*)", block, flags=re.M)}
    assert used and all(f" {name} " in listed for name in used), sorted(used)


def test_the_first_run_output_in_the_readme_has_the_shape_the_tool_prints(tmp_path):
    """The pasted block's rows are what `ganneal train` prints today (values vary with the CPU; rows must not)."""
    from typer.testing import CliRunner

    from gan_anneal.cli import app

    block = next(b for b in _readme_blocks() if b.startswith("$ ganneal train hydra.run.dir="))
    pasted = re.findall(r"│ (\w[\w /()]*?) +│", block)
    result = CliRunner().invoke(app, ["train", "train.steps=20", "train.log_every=10", "train.eval_samples=500",
                                      f"hydra.run.dir={tmp_path / 'run'}"], env={"COLUMNS": "200"})
    printed = re.findall(r"│ (\w[\w /()]*?) +│", result.output)
    assert result.exit_code == 0 and pasted == printed, (pasted, printed)
