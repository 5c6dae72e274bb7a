"""Atomic checkpoints holding everything a run needs to continue bit-for-bit: models, optimisers,
regulariser state, the step, and every random number generator's state."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_anneal.results.files import atomic_path


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(path: Path, state: dict[str, Any], previous: Path | None = None) -> None:
    """Write `path` atomically; with `previous`, the file it replaces is kept there (moved only once the new one
    is complete, so some readable checkpoint exists at every instant)."""

    with atomic_path(path, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())  # the new file is whole on disk before the old one steps aside
        if previous is not None and path.is_file():
            os.replace(path, previous)


def load_checkpoint(path: Path, map_location="cpu") -> dict[str, Any]:
    return torch.load(path, map_location=map_location, weights_only=True)
