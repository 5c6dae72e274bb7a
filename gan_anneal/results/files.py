"""Atomic writes, once: a temporary file in the same folder, flushed to disk, given the umask's mode, then
renamed, so readers never see half a file (run records, checkpoints, caches). A leaf: no torch, no ganneal."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, SoftFileLock, Timeout


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def follow_umask(path: str | os.PathLike) -> None:
    """mkstemp creates files 0600; give them the mode an ordinary open() would (group members on a cluster
    can then read runs and share caches)."""
    os.chmod(path, 0o666 & ~_umask())


@contextmanager
def atomic_path(path: Path, mode: str = "w"):
    """Yield an open temporary file; on a clean exit it is synced and renamed to `path`, else removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        follow_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as f:
        f.write(text)


@contextmanager
def compute_lock(path: Path, what: str, log=print):
    """Hold `path`'s file lock while computing something cached for many jobs (filelock; a soft lock where the
    file system has no working flock, e.g. some NFS mounts), so N jobs starting on an empty cache compute it
    once: the first computes, the others wait here and then load it. Says so when it has to wait."""

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log(f"{what}: another job is computing it ({path}); waiting for it")
        lock.acquire()
    except OSError:  # flock unsupported here: fall back to a lock file's existence
        lock = SoftFileLock(str(path))
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
