"""One training run from a composed config into a run directory, with the outcome recorded there.

`run_training` never raises for an expected outcome (done, diverged, interrupted, bad input): it
records the status in summary.json and returns it, so a sweep goes on when one job fails.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from gan_anneal.errors import UserError
from gan_anneal.results.rundir import RunDir

EXIT_CODES = {"done": 0, "failed": 1, "diverged": 1, "bad-input": 2, "interrupted": 130}

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


def run_training(cfg: DictConfig, run_dir: str | Path, resume: bool = False, should_stop=None) -> str:
    """Train and return the outcome: one of the keys of EXIT_CODES."""
    from gan_anneal.train.build import build_experiment
    from gan_anneal.train.loop import TrainingDiverged, TrainingInterrupted, train

    run = RunDir(run_dir)
    try:
        experiment = build_experiment(cfg, log=lambda msg: console.print(f"[dim]{msg}[/]"))
        summary = train(experiment, run, resume=resume, console=console, should_stop=should_stop)
    except UserError as error:
        run.update_summary(status="failed", error=str(error))
        console.print(f"[bold red]error:[/] {error}")
        return "bad-input"
    except TrainingDiverged as error:
        console.print(f"[bold red]diverged:[/] {error}")
        return "diverged"
    except TrainingInterrupted as error:
        console.print(f"[bold yellow]interrupted:[/] {error}")
        return "interrupted"
    except KeyboardInterrupt:  # before the loop's handlers were installed, or a second Ctrl-C
        run.update_summary(status="interrupted", error="interrupted; resume continues from the last checkpoint")
        console.print(f"[bold yellow]interrupted:[/] resume with: ganneal train resume={run.path}")
        return "interrupted"
    except Exception as error:  # a bug or an environment failure: keep the traceback with the run
        (run.path / "error.txt").write_text(traceback.format_exc())
        run.update_summary(status="failed", error=f"{type(error).__name__}: {error}")
        console.print(f"[bold red]failed:[/] {type(error).__name__}: {error} (traceback in {run.path / 'error.txt'})")
        return "failed"
    console.print(metrics_table(summary))
    console.print(f"run directory: [bold]{run.path}[/]")
    return "done"
