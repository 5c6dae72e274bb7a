"""Shared test helpers: compose configs exactly as the CLI does, and run training into tmp dirs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

os.environ.setdefault("GANNEAL_CACHE", str(Path(__file__).parent / ".cache"))


@pytest.fixture
def make_cfg():
    from gan_anneal.config import compose

    def _make(*overrides: str):
        return compose(["train.progress=false", "train.sample_every=0", *overrides])

    return _make


@pytest.fixture
def train_run(make_cfg, tmp_path):
    """Compose, train into tmp_path/<name>, return (outcome, RunDir)."""
    from gan_anneal.results.rundir import RunDir
    from gan_anneal.runner import run_training

    def _train(*overrides: str, name: str = "run", should_stop=None, cfg=None):
        cfg = cfg if cfg is not None else make_cfg(*overrides)
        outcome = run_training(cfg, tmp_path / name, should_stop=should_stop)
        return outcome, RunDir(tmp_path / name)

    return _train


@pytest.fixture
def run_cli():
    """Run `ganneal ARGS` in a fresh interpreter, as a user would: for what the process itself does (signals,
    exit status, what it imports). Each call pays ~3 s of start-up (torch, Hydra); `ganneal` below does not."""

    def _run(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gan_anneal.cli", *args], capture_output=True, text=True,
                              cwd=cwd, timeout=timeout, env={**os.environ, "COLUMNS": "120"})

    return _run


def _logging_state() -> tuple:
    root = logging.getLogger()
    loggers = {name: logger.disabled for name, logger in logging.Logger.manager.loggerDict.items()
               if isinstance(logger, logging.Logger)}
    return root.level, list(root.handlers), loggers


def _restore_logging(state: tuple) -> None:
    level, handlers, loggers = state
    logging.getLogger().setLevel(level)
    logging.getLogger().handlers[:] = handlers
    for name, disabled in loggers.items():
        logging.getLogger(name).disabled = disabled


class Ran(subprocess.CompletedProcess):
    """A command's outcome as run_cli gives it, plus `output`: stdout and stderr together."""

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def invoke(*args: str, cwd: Path | None = None) -> Ran:
    """Run `ganneal ARGS` in this interpreter (the command's code path from argument parsing to exit code) and
    answer as run_cli does. The environment, working directory, argv and logging are restored afterwards; an
    exception that escapes the command lands in stderr as its traceback, as it would on a terminal."""
    from typer.testing import CliRunner

    from gan_anneal import cli
    from gan_anneal.cli import app

    environ, old, argv = dict(os.environ), os.getcwd(), sys.argv
    logs = _logging_state()  # Hydra's job logging (disabled in conf/) reconfigures the whole process
    if cwd is not None:
        os.chdir(cwd)
    sys.argv = [cli.__file__, *args]  # as `python -m gan_anneal.cli` has it: the run records its command from it
    try:
        result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    finally:
        os.chdir(old)
        os.environ.clear()
        os.environ.update(environ)
        sys.argv = argv
        _restore_logging(logs)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return Ran(["ganneal", *args], result.exit_code, result.stdout, stderr)


@pytest.fixture
def ganneal():
    """`invoke` as a fixture: `ganneal("train", ...)` reads like the command it runs."""
    return invoke


def job_dir(sweep: Path, i: int) -> Path:
    """Job i's folder of a Hydra multirun, `<i>_<swept key=value,...>` (a path that does not exist until it does)."""
    found = [p for p in Path(sweep).glob(f"{i}_*") if p.is_dir()]
    assert len(found) <= 1, found
    return found[0] if found else Path(sweep) / f"{i}_<not yet>"


@pytest.fixture
def write_corpus():
    """Write a 300-line text corpus of twelve words (the text BGAN's data) to a path; return the path."""

    def _write(path):
        import random

        rng = random.Random(0)
        words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far", "away", "home"]
        lines = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 7))).capitalize() + "." for _ in range(300)]
        path.write_text("\n".join(lines) + "\n")
        return path

    return _write
