"""Progress for anything that takes more than a few seconds (training, data-score pre-training, real statistics,
probes): a rich bar on a terminal, else a plain line every `every_s` seconds through `log` (SLURM logs, nohup,
pytest), so nothing waits silently. The training loop also keeps every plain line in its train.log (`lines`).
"""

from __future__ import annotations

import math
import time
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def default_line(progress: "StepProgress", done: int, info: str, rate: float, eta: float) -> str:
    return (f"{progress.description}: {done}/{progress.total} {info}  {time.perf_counter() - progress.t0:.0f} s, "
            f"about {eta:.0f} s left")


class StepProgress:
    """`update(done, info)` as work advances. The bar is drawn when `draw` is true (default: on a terminal); plain
    lines go to `log` when no bar is drawn, or always with lines=True: one every `every_s` seconds, the last
    (force=True), and with first_line=True the first update's at once. `start`: steps already done (a resumed
    run), left out of the rate."""

    def __init__(self, description: str, total: int, log: Callable[[str], None] = print, every_s: float = 10.0,
                 console: Console | None = None, *, start: int = 0, draw: bool | None = None, lines: bool = False,
                 first_line: bool = False, line: Callable[..., str] = default_line):
        self.description, self.total, self.log, self.every_s, self.line = description, int(total), log, every_s, line
        self.console = console or Console()
        drawn = self.console.is_terminal if draw is None else bool(draw)
        self.lines = lines or not drawn
        self.bar = Progress(TextColumn("[bold blue]{task.description}"), BarColumn(),
                            TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[info]}"),
                            TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), console=self.console,
                            disable=not drawn, transient=False)
        self.start, self.t0 = int(start), time.perf_counter()
        self.last = -math.inf if first_line else self.t0

    def __enter__(self) -> "StepProgress":
        self.bar.__enter__()
        self.task = self.bar.add_task(self.description, total=self.total, completed=self.start, info="")
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def update(self, done: int, info: str = "", force: bool = False) -> None:
        self.bar.update(self.task, completed=done, info=info)
        now = time.perf_counter()
        if not self.lines or (not force and now - self.last < self.every_s):
            return
        self.last = now
        rate = (done - self.start) / max(now - self.t0, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        self.log(self.line(self, done, info, rate, eta))
