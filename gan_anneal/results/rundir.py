"""The run directory: the unit of record that `evaluate`, `table` and `resume` read.

    config.yaml       the composed, resolved config
    metrics.jsonl     one JSON object per logging step
    summary.json      status (running | done | failed | diverged | interrupted), timing, final metrics, versions
    checkpoints/      last.pt (atomic; only finite states), previous.pt (the one before, kept as a fallback),
                      best.pt (the best value of train.best_metric so far, when set)
    samples/          pictures
    train.log         progress lines, one every few seconds, and what happened (start, resume, end)
    .lock             the live writer (host, pid); a dead holder's lock is taken over
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from gan_anneal.errors import UserError
from gan_anneal.results.files import atomic_write_text, follow_umask  # noqa: F401 (re-exported)

STATUSES = ("running", "done", "failed", "diverged", "interrupted")
LOCK_STALE_S = 600  # a lock from another host whose heartbeat is older than this is taken over


def package_versions() -> dict[str, str]:

    versions = {"python": platform.python_version()}
    for name in ("ganneal", "torch", "torchvision", "hydra-core", "omegaconf", "torch-fidelity", "numpy"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    return versions


RECORDS_DIR = "records"  # results committed beside the code (a sweep rewrites its sweep.yaml there): not code


def source_revision(root: Path | None = None) -> dict[str, Any] | None:
    """The git commit of the ganneal source and whether its code had uncommitted changes, when it runs from a
    checkout (an editable install); None for an installed wheel or when git is absent. Changes under records/
    are results, not code, so a sweep writing its records into the checkout does not mark its runs dirty."""
    root = root or Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", ".",
                                f":(exclude){RECORDS_DIR}"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(dirty), "path": str(root)}


def _unreadable(error: BaseException) -> str:
    """Why a checkpoint did not load, never an empty message (an empty file raises a bare EOFError)."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else f"{type(error).__name__}: the file is empty or cut short"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def provenance() -> dict[str, Any]:
    """What reproduces a run besides its config: the command, the source revision, the host and the versions."""

    command = os.environ.get("GANNEAL_COMMAND") or " ".join(shlex.quote(a) for a in sys.argv)
    return {"command": command,
            "source": source_revision(), "host": socket.gethostname(), "versions": package_versions()}


class RunDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoints" / "last.pt"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def best_checkpoint(self) -> Path:
        """The state with the best value of train.best_metric so far (kept only when that is set)."""
        return self.path / "checkpoints" / "best.pt"

    def checkpoint_file(self, which: str = "last") -> Path:
        """last.pt, or best.pt for which="best" (a UserError when the run kept none): what evaluate and the probes read."""

        if which != "best":
            return self.checkpoint
        if not self.best_checkpoint.is_file():
            raise UserError(f"{self.path} has no best checkpoint ({self.best_checkpoint}): a run keeps one when it "
                            "trains with train.best_metric set (e.g. train.eval_every=500 train.best_metric=eval/fid)."
                            " Use --checkpoint last.")
        return self.best_checkpoint

    @property
    def previous_checkpoint(self) -> Path:
        return self.path / "checkpoints" / "previous.pt"

    def exists(self) -> bool:
        return (self.path / "config.yaml").is_file()

    def has_checkpoint(self) -> bool:
        return self.checkpoint.is_file() or self.previous_checkpoint.is_file()

    def load_checkpoint(self, map_location="cpu", log=print) -> dict:
        """last.pt, or previous.pt (with a message) when last.pt cannot be read."""
        # deferred: loads torch; this module stays torch-free at import
        from gan_anneal.results.checkpoint import load_checkpoint

        start_over = (f"To start over, delete the run (rm -r {self.path}) or train into another directory "
                      "(hydra.run.dir=...).")
        try:
            return load_checkpoint(self.checkpoint, map_location=map_location)
        except Exception as error:  # truncated or corrupt: any of pickle's, zipfile's or torch's errors
            why = _unreadable(error)
            if not self.previous_checkpoint.is_file():
                raise UserError(f"{self.checkpoint} cannot be read ({why}) and there is no previous.pt to fall back "
                                f"on, so the run cannot be resumed. {start_over}") from None
        try:
            state = load_checkpoint(self.previous_checkpoint, map_location=map_location)
        except Exception as error:  # noqa: BLE001 -- the same: neither file is usable
            raise UserError(f"Neither checkpoint of {self.path} can be read: {self.checkpoint.name} ({why}) and "
                            f"{self.previous_checkpoint.name} ({_unreadable(error)}), so the run cannot be resumed. "
                            f"{start_over}") from None
        message = f"{self.checkpoint} cannot be read ({why}); resuming from {self.previous_checkpoint}"
        log(message)
        self.log(message)  # the run's own record says which checkpoint it continued from
        return state

    def save_checkpoint(self, state: dict) -> None:
        """Write last.pt atomically, keeping the one before as previous.pt until the new one is complete."""
        # deferred: loads torch; this module stays torch-free at import
        from gan_anneal.results.checkpoint import save_checkpoint

        save_checkpoint(self.checkpoint, state, previous=self.previous_checkpoint)

    # the writer lock ------------------------------------------------------------------------------
    @property
    def lock_path(self) -> Path:
        return self.path / ".lock"

    def lock_holder(self) -> str | None:
        try:
            holder = json.loads(self.lock_path.read_text())
            return f"pid {holder['pid']} on {holder['host']}"
        except (OSError, ValueError, KeyError):
            return None

    def writer_alive(self) -> bool:
        """Whether the process named in .lock still runs (same host), or its heartbeat is recent (other host)."""
        try:
            holder = json.loads(self.lock_path.read_text())
            age = time.time() - self.lock_path.stat().st_mtime
        except (OSError, ValueError):
            return False
        if holder.get("host") != socket.gethostname():
            return age < LOCK_STALE_S
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # another user's live process
            return True
        return int(holder["pid"]) != os.getpid()  # our own pid: left by an earlier run in this process

    def acquire_lock(self) -> None:
        """Become the directory's one writer; take over a dead holder's lock."""

        self.path.mkdir(parents=True, exist_ok=True)
        record = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()})
        for _ in range(2):
            try:
                fd = os.open(self.lock_path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                if self.writer_alive():
                    raise UserError(f"{self.path} is being written by {self.lock_holder()}; one writer per run "
                                    f"directory. If that process is gone, delete {self.lock_path}.") from None
                self.lock_path.unlink(missing_ok=True)  # a dead holder's lock
                continue
            with os.fdopen(fd, "w") as f:
                f.write(record)
            return
        raise UserError(f"could not take the lock {self.lock_path}; another process is starting in {self.path}.")

    def heartbeat(self) -> None:
        try:
            os.utime(self.lock_path)
        except OSError:
            pass

    def release_lock(self) -> None:
        try:
            if json.loads(self.lock_path.read_text()).get("pid") == os.getpid():
                self.lock_path.unlink()
        except (OSError, ValueError):
            pass

    def discard_unstarted(self) -> None:
        """Remove a directory that holds no run, only what Hydra and a refused start left (.hydra/, the lock, the
        log), so that no table or sweep counts the user's mistake as a failed cell."""
        if not self.path.is_dir() or self.exists() or (self.path / "summary.json").exists():
            return
        leftovers = {".hydra", ".lock", "train.log"}
        if any(p.name not in leftovers for p in self.path.iterdir()):
            return

        shutil.rmtree(self.path / ".hydra", ignore_errors=True)
        for name in (".lock", "train.log"):
            (self.path / name).unlink(missing_ok=True)
        try:
            self.path.rmdir()
        except OSError:
            pass

    def log(self, line: str) -> None:
        """Append a line to train.log (the run's own record of what happened, for SLURM and nohup users)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / "train.log", "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")

    def require(self, checkpoint: bool = False) -> "RunDir":
        """The run, or a UserError saying why this folder will not do."""

        if not self.exists():
            raise UserError(f"'{self.path}' is not a run directory (no config.yaml there). Pass the folder "
                            "`ganneal train` printed.")
        if checkpoint and not self.checkpoint.is_file():
            raise UserError(f"'{self.path}' has no checkpoint ({self.checkpoint}); train it first (or resume it).")
        return self

    # config -------------------------------------------------------------------------------------
    def write_config(self, cfg: DictConfig) -> None:
        atomic_write_text(self.path / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))

    def write_hydra_record(self, files: dict) -> None:
        """`.hydra/<name>` for each {name: config}: the command's record, as Hydra itself would lay it out."""
        (self.path / ".hydra").mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            atomic_write_text(self.path / ".hydra" / name, OmegaConf.to_yaml(content))

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
        records = []
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:  # a line torn by kill -9 while it was written: dropped (logged again on resume)
                continue
        return records

    def current_step(self) -> int | None:
        """How far a run has got: its last logged step (metrics.jsonl moves every log_every steps), else the
        checkpointed step in summary.json."""
        logged = [r.get("step") for r in self.read_metrics()[-1:] if isinstance(r.get("step"), int)]
        steps = self.read_summary().get("steps")
        return max([*logged, *([steps] if isinstance(steps, int) else [])], default=None)

    def truncate_metrics(self, last_step: int) -> None:
        """On resume, forget records logged after the checkpoint (and any torn line): they will be logged again."""
        if not (self.path / "metrics.jsonl").exists():
            return
        kept = [r for r in self.read_metrics() if r["step"] <= last_step]
        atomic_write_text(self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in kept))

    # summary ------------------------------------------------------------------------------------
    def read_summary(self) -> dict[str, Any]:
        path = self.path / "summary.json"
        return json.loads(path.read_text()) if path.exists() else {}

    @property
    def eval_file(self) -> Path:
        return self.path / "eval.json"

    def read_evaluations(self) -> dict[str, Any]:
        """eval.json (results/evaluations.py says its layout); {} when there is none or it is unreadable, which a
        table shows as a run without IS/FID rather than failing."""
        try:
            record = json.loads(self.eval_file.read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) else {}

    def write_evaluations(self, record: dict[str, Any]) -> None:
        atomic_write_text(self.eval_file, json.dumps(record, indent=2, sort_keys=True) + "\n")

    def update_summary(self, **fields: Any) -> dict[str, Any]:
        summary = self.read_summary()
        summary.update(fields)
        atomic_write_text(self.path / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
        return summary
