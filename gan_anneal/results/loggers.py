"""Where a run's numbers go: metrics.jsonl always, and whatever the `logger` group adds.

`logger=[jsonl,csv,tensorboard]` (a Hydra config-group list) selects several at once; each selected config adds
its node under `logger.` and this module builds one writer per node. metrics.jsonl stays the record of truth
(resume truncates it to the checkpoint, `ganneal table`, `curves` and `runs` read it); the others are views of
the same records, kept consistent with it across resumes:

  csv          metrics.csv: one row per record, one column per key seen so far (rebuilt from metrics.jsonl when
               a new key appears or the run resumes, so it never disagrees with it)
  tensorboard  event files in the run directory itself, so `tensorboard --logdir runs/` names each run by its
               folder (multirun jobs by their overrides); scalars as train/…, anneal/…, eval/…, and the sample
               pictures as images. Needs the `tensorboard` extra: pip install 'ganneal[tensorboard]'.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterable

from gan_anneal.errors import UserError
from gan_anneal.results.rundir import RunDir, atomic_write_text

COEFFICIENTS = ("lam", "beta", "w_lik", "w_ent", "lr_scale")  # the schedule's values: TensorBoard's anneal/ section


def scalar_tag(key: str) -> str:
    """metrics.jsonl key → TensorBoard tag: eval/fid stays, λ and the weights under anneal/, losses under train/."""
    if "/" in key:
        return key
    return f"anneal/{key}" if key in COEFFICIENTS else f"train/{key}"


class CsvLogger:
    name = "csv"

    def __init__(self, run: RunDir, settings: dict):
        self.run, self.path = run, run.path / "metrics.csv"
        self.columns: list[str] = []

    def start(self, step: int) -> None:
        self._rebuild()  # metrics.jsonl was just truncated to the checkpoint's step

    def write(self, records: list[dict[str, Any]]) -> None:
        if any(key not in self.columns for record in records for key in record):
            self._rebuild()  # the new records are already in metrics.jsonl
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns).writerows(records)

    def picture(self, path: Path, step: int) -> None:
        pass

    def close(self) -> None:
        pass

    def _rebuild(self) -> None:
        records = self.run.read_metrics()
        self.columns = ["step", *sorted({k for r in records for k in r} - {"step"})]
        out = io.StringIO()
        writer = csv.DictWriter(out, self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        atomic_write_text(self.path, out.getvalue())


class TensorBoardLogger:
    name = "tensorboard"

    def __init__(self, run: RunDir, settings: dict):
        try:
            # deferred: TensorBoard is slow to import and only this path needs it
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch's writer imports the tensorboard package
            raise UserError("logger=tensorboard needs the tensorboard package: pip install 'ganneal[tensorboard]' "
                            "(or drop it: logger=[jsonl,csv]).") from None
        self.run, self.settings, self.writer_class = run, settings, SummaryWriter
        self.writer = None

    def start(self, step: int) -> None:
        # purge_step: on resume, TensorBoard hides the events this directory logged after the checkpoint
        self.writer = self.writer_class(log_dir=str(self.run.path), purge_step=step or None,
                                        flush_secs=int(self.settings.get("flush_secs", 30)))

    def write(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            step = int(record["step"])
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.writer.add_scalar(scalar_tag(key), value, step)

    def picture(self, path: Path, step: int) -> None:
        if not self.settings.get("images", True):
            return
        import matplotlib.image  # deferred: matplotlib is slow to import and only this path needs it

        image = matplotlib.image.imread(path)  # H×W×(3|4) floats in [0, 1], whatever drew it
        self.writer.add_image("samples", image[..., :3], step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


WRITERS = {"csv": CsvLogger, "tensorboard": TensorBoardLogger}


class Loggers:
    """metrics.jsonl plus the selected writers, fed the same records."""

    def __init__(self, run: RunDir, writers: Iterable = ()):
        self.run, self.writers = run, list(writers)

    def start(self, step: int) -> None:
        for writer in self.writers:
            writer.start(step)

    def write(self, records: list[dict[str, Any]]) -> None:
        self.run.append_metrics(records)
        for writer in self.writers:
            writer.write(records)

    def picture(self, path: Path, step: int) -> None:
        for writer in self.writers:
            writer.picture(path, step)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


def build_loggers(settings: dict | None, run: RunDir) -> Loggers:
    """One writer per node under `logger` (jsonl is metrics.jsonl itself, always written)."""
    writers = []
    for key, node in (settings or {}).items():
        name = (node or {}).get("name", key)
        if name == "jsonl":
            continue
        if name not in WRITERS:
            raise UserError(f"Unknown logger '{name}'. Valid choices: jsonl, {', '.join(WRITERS)}.")
        writers.append(WRITERS[name](run, dict(node or {})))
    return Loggers(run, writers)
