"""`ganneal runs [DIR]`: the runs under a folder, one line each — status (a `running` run whose writer is gone is
shown as stale), steps, what sets it apart from the others, its key metrics and its age. Nothing here imports torch.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from gan_anneal.metric_names import METRICS
from gan_anneal.results.collect import RunRecord, collect_runs, is_static_column
from gan_anneal.results.rundir import RunDir
from gan_anneal.results.settings import setting_keys
from gan_anneal.results.slurm_jobs import LEDGER, queue_states, read_ledger

KEY_METRICS = {**{METRICS[m].key: METRICS[m].label for m in ("modes_covered", "hq_fraction", "kl_target_model", "is",
                                                             "fid", "precision", "recall")}, "sample_var": "var"}


@dataclass
class RunLine:
    path: str
    status: str
    steps: int | None  # done: the last logged step of a running run, else summary.json's
    total_steps: int | None
    settings: dict  # what sets it apart from the others: {divergence, lambda | anneal, seed, other keys}
    metrics: dict  # {key: number} of KEY_METRICS
    age_s: float

    @property
    def steps_text(self) -> str:
        return f"{'?' if self.steps is None else self.steps}/{'?' if self.total_steps is None else self.total_steps}"

    @property
    def settings_text(self) -> str:
        return " ".join(f"{'λ' if k == 'lambda' else k}={v}" for k, v in self.settings.items())

    @property
    def metrics_text(self) -> str:
        return " ".join(f"{KEY_METRICS[k]} {v:.3g}" for k, v in self.metrics.items()) or "—"


def _status(record: RunRecord) -> str:
    if record.status == "running" and not RunDir(record.path).writer_alive():
        return "stale"  # marked running, but no live process holds its lock: killed; re-run the command to resume
    return record.status


def _age(path: Path) -> float:
    newest = max((p.stat().st_mtime for p in (path / "summary.json", path / "metrics.jsonl") if p.exists()),
                 default=path.stat().st_mtime)
    return time.time() - newest


def _current_step(record: RunRecord, status: str) -> int | None:
    """A running run's summary.json moves at checkpoints only; its metrics.jsonl at every log_every steps."""
    return RunDir(record.path).current_step() if status == "running" else record.steps


def list_runs(root: str | Path) -> list[RunLine]:
    records = collect_runs(root)
    keys = setting_keys(records)
    lines = []
    for r in records:
        settings = {"divergence": r.divergence, **({"lambda": r.column} if is_static_column(r.column)
                                                   else {"anneal": r.column.lower()}), "seed": r.seed}
        settings.update({k: r.config.get(k) for k in keys if not k.startswith("anneal.")})
        total = r.total_steps if r.total_steps is not None else r.config.get("train.steps")
        status = _status(r)
        lines.append(RunLine(str(Path(r.path).relative_to(root)) if Path(r.path) != Path(root) else ".", status,
                             _current_step(r, status), int(total) if total is not None else None, settings,
                             {k: r.metrics[k] for k in KEY_METRICS if k in r.metrics}, round(_age(Path(r.path)), 1)))
    return lines + submitted_lines(root)


def submitted_lines(root: str | Path) -> list[RunLine]:
    """The jobs a sweep submitted to SLURM (its slurm_jobs.jsonl) that have not started training yet: queued, or
    gone from the queue without starting (cancelled, failed at start)."""

    lines = []
    for ledger in sorted(Path(root).rglob(LEDGER)):
        waiting = {f: j for f, j in read_ledger(ledger.parent).items() if not (Path(f) / "summary.json").exists()}
        states = queue_states(sorted(set(waiting.values())))
        for folder, job_id in sorted(waiting.items()):
            state = states.get(job_id)
            status = "queued" if state == "PENDING" else state.lower() if state else "never started"
            where = Path(folder).relative_to(Path(root).absolute()) if Path(folder).is_absolute() else Path(folder)
            lines.append(RunLine(str(where), status, None, None, {"slurm job": job_id}, {},
                                 round(time.time() - ledger.stat().st_mtime, 1)))
    return lines


def human_age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def rich_runs_table(lines: list[RunLine], root: str):

    colours = {"done": "green", "running": "blue", "stale": "yellow", "interrupted": "yellow", "failed": "red",
               "diverged": "red"}
    table = Table(title=f"runs under {root}", header_style="bold")
    for column in ("run", "status", "steps", "settings", "metrics", "age"):
        table.add_column(column, overflow="fold", justify="right" if column in ("steps", "age") else "left")
    for line in lines:
        colour = colours.get(line.status, "dim")
        table.add_row(line.path, f"[{colour}]{line.status}[/]", line.steps_text, line.settings_text,
                      line.metrics_text, human_age(line.age_s))
    return table


def runs_json(lines: list[RunLine]) -> str:
    """Numbers and keys for scripts: steps as integers, metrics under their summary.json / eval.json keys."""
    return json.dumps([line.__dict__ for line in lines], indent=1, ensure_ascii=False)
