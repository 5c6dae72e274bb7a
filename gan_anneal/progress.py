"""Progress for any step that takes more than a few seconds outside the training loop (data-score pre-training,
real statistics, probes): a rich bar on a terminal, else a plain line every `every_s` seconds through `log`
(SLURM logs, nohup, pytest), so nothing waits silently.
"""

from __future__ import annotations

import time
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class StepProgress:
    def __init__(self, description: str, total: int, log: Callable[[str], None] = print, every_s: float = 10.0,
                 console: Console | None = None):
        self.description, self.total, self.log, self.every_s = description, int(total), log, every_s
        self.console = console or Console()
        self.bar = Progress(TextColumn("[bold blue]{task.description}"), BarColumn(),
                            TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[info]}"),
                            TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), console=self.console,
                            disable=not self.console.is_terminal, transient=False)
        self.t0 = self.last = time.perf_counter()

    def __enter__(self) -> "StepProgress":
        self.bar.__enter__()
        self.task = self.bar.add_task(self.description, total=self.total, info="")
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def update(self, done: int, info: str = "") -> None:
        self.bar.update(self.task, completed=done, info=info)
        now = time.perf_counter()
        if not self.console.is_terminal and now - self.last >= self.every_s:
            self.last = now
            rate = done / max(now - self.t0, 1e-9)
            eta = (self.total - done) / rate if rate > 0 else float("inf")
            self.log(f"{self.description}: {done}/{self.total} {info}  {now - self.t0:.0f} s, about {eta:.0f} s left")
