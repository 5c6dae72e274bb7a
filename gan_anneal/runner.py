"""One training run from a composed config into a run directory, with the outcome recorded there.

`run_training` never raises for an expected outcome (done, diverged, interrupted, bad input): it
records the status in summary.json and returns it, so a sweep goes on when one job fails. What it does with a
directory that already holds a run is decided by results/continuation.py (resume, extend, nothing, or refuse).
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from gan_anneal.errors import UserError
from gan_anneal.results.continuation import NothingToDo, Start, plan_start
from gan_anneal.results.rundir import RunDir

EXIT_CODES = {"done": 0, "failed": 1, "diverged": 1, "bad-input": 2, "interrupted": 130, "terminated": 143}

console = Console()


def metrics_table(summary: dict) -> Table:
    table = Table(title="final metrics", show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary.get("metrics", {}).items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    for key, value in summary.get("final_coefficients", {}).items():
        table.add_row(f"final {key}", f"{value:.4g}")
    table.add_row("steps/s", f"{summary.get('steps_per_second', 0):.1f}")
    table.add_row("wall time (s)", f"{summary.get('wall_time_s', 0):.1f}")
    return table


_LAST_ERROR = [""]  # the message of the last refused or failed run in this process (a sweep's jobs.jsonl)


def last_error() -> str:
    return _LAST_ERROR[0]


def _refused(message: str) -> None:
    _LAST_ERROR[0] = message
    console.print(f"[bold red]error:[/] {message}")


def run_training(cfg: DictConfig, run_dir: str | Path, should_stop=None, record: dict | None = None) -> str:
    """Train (or resume, or extend) and return the outcome: one of the keys of EXIT_CODES. `record`: the command's
    `.hydra/` files, written only once the run starts or continues (never by a refused command)."""
    run = RunDir(run_dir)
    _LAST_ERROR[0] = ""
    if isinstance(ended := _plan(run, cfg, writer_alive=run.writer_alive()), str):
        return ended
    # deferred until a run will train: a finished or refused command answers without loading torch (~1.5 s)
    from gan_anneal.train.build import build_experiment
    from gan_anneal.train.loop import TrainingDiverged, TrainingInterrupted, train  # torch too, as above

    try:
        run.acquire_lock()
    except UserError as error:  # another process holds the directory now
        _refused(str(error))
        return "bad-input"
    # planned again as its one writer: another process may have trained this directory since the first look
    if isinstance(start := _plan(run, cfg, writer_alive=False), str):
        run.release_lock()
        return start
    had_run = run.exists()
    discard = False
    try:
        built: list[str] = []  # what building said (e.g. where the data score came from), kept in train.log
        experiment = build_experiment(cfg, log=lambda msg: (console.print(f"[dim]{msg}[/]"), built.append(msg)))
        for line in built:  # only once the build succeeded: a refused start adds nothing to an existing run
            run.log(line)
        summary = train(experiment, run, start, console=console, should_stop=should_stop, record=record)
    except UserError as error:  # the user's input: no status written, and a fresh directory is removed again
        _refused(str(error))
        discard = not had_run
        return "bad-input"
    except TrainingDiverged as error:
        console.print(f"[bold red]diverged:[/] {error}")
        return "diverged"
    except TrainingInterrupted as error:
        console.print(f"[bold yellow]interrupted:[/] {error}")
        return "terminated" if error.signal_name == "SIGTERM" else "interrupted"
    except KeyboardInterrupt:  # before the loop's handlers were installed, or a second Ctrl-C
        if _this_attempt_started(run):
            run.update_summary(status="interrupted", error="interrupted; re-run the command to continue")
        again = "continues from the last checkpoint" if had_run or run.has_checkpoint() else "starts it"
        console.print(f"[bold yellow]interrupted:[/] re-running the same command {again} ({run.path})")
        return "interrupted"
    except Exception as error:  # a bug or an environment failure: keep the traceback with the run
        run.path.mkdir(parents=True, exist_ok=True)
        (run.path / "error.txt").write_text(traceback.format_exc())
        if _this_attempt_started(run):  # a resume that failed before training leaves the run's status alone
            run.update_summary(status="failed", error=f"{type(error).__name__}: {error}")
        _LAST_ERROR[0] = f"{type(error).__name__}: {error}"
        console.print(f"[bold red]failed:[/] {type(error).__name__}: {error} (traceback in {run.path / 'error.txt'})")
        return "failed"
    finally:
        run.release_lock()
        if discard:
            run.discard_unstarted()
    console.print(metrics_table(summary))
    console.print(f"run directory: [bold]{run.path}[/]")
    return "done"


def _plan(run: RunDir, cfg: DictConfig, writer_alive: bool) -> Start | str:
    """plan_start's Start, or the outcome when the directory says not to train (printed here)."""
    try:
        return plan_start(run, cfg, writer_alive=writer_alive)
    except UserError as error:  # the directory is someone else's, or another config's: leave it untouched
        _refused(str(error))
        return "bad-input"
    except NothingToDo as nothing:
        console.print(f"[bold]{nothing.outcome}:[/] {nothing}")
        return nothing.outcome


def _this_attempt_started(run: RunDir) -> bool:
    """Whether this process got as far as marking the run `running` (train() records its pid)."""
    summary = run.read_summary()
    return summary.get("status") == "running" and summary.get("pid") == os.getpid()
