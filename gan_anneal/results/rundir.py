"""The run directory: the unit of record that `evaluate`, `table` and `resume` read.

    config.yaml       the composed, resolved config
    metrics.jsonl     one JSON object per logging step
    summary.json      status (running | done | failed | diverged | interrupted), timing, final metrics, versions
    checkpoints/      last.pt (atomic)
    samples/          pictures
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

STATUSES = ("running", "done", "failed", "diverged", "interrupted")


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in ("ganneal", "torch", "torchvision", "hydra-core", "omegaconf", "torch-fidelity", "numpy"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    return versions


class RunDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoints" / "last.pt"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    def exists(self) -> bool:
        return (self.path / "config.yaml").is_file()

    def require(self, checkpoint: bool = False) -> "RunDir":
        """The run, or a UserError saying why this folder will not do."""
        from gan_anneal.errors import UserError

        if not self.exists():
            raise UserError(f"'{self.path}' is not a run directory (no config.yaml there). Pass the folder "
                            "`ganneal train` printed.")
        if checkpoint and not self.checkpoint.is_file():
            raise UserError(f"'{self.path}' has no checkpoint ({self.checkpoint}); train it first (or resume it).")
        return self

    # config -------------------------------------------------------------------------------------
    def write_config(self, cfg: DictConfig) -> None:
        atomic_write_text(self.path / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))

    def read_config(self) -> DictConfig:
        return OmegaConf.load(self.path / "config.yaml")

    # metrics ------------------------------------------------------------------------------------
    def append_metrics(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        with open(self.path / "metrics.jsonl", "a") as f:
            for record in records:
                f.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def truncate_metrics(self, last_step: int) -> None:
        """On resume, forget records logged after the checkpoint: they will be logged again."""
        kept = [r for r in self.read_metrics() if r["step"] <= last_step]
        atomic_write_text(self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in kept))

    # summary ------------------------------------------------------------------------------------
    def read_summary(self) -> dict[str, Any]:
        path = self.path / "summary.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def update_summary(self, **fields: Any) -> dict[str, Any]:
        summary = self.read_summary()
        summary.update(fields)
        atomic_write_text(self.path / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
        return summary
