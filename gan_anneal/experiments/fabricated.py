"""Fabricated CIFAR-10 for smoke runs: random images in torchvision's exact on-disk format.

    <root>/cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta, GANNEAL_FABRICATED

torchvision checks every file's MD5 against the real ones, which fabricated files cannot match; the CIFAR-10
loader (data/images.py) lets that check pass for files in a folder carrying the GANNEAL_FABRICATED marker and
for nothing else, in whatever process loads them (a launcher's worker included): a real copy is still verified. Numbers made on this data mean
nothing; they only show that the pipeline runs.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from gan_anneal.data.images import FABRICATED_MARKER as MARKER
from gan_anneal.data.images import accept_fabricated_cifar10  # noqa: F401 (benchmarks import it from here)

FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_fabricated_cifar10(root: str | Path, per_batch: int = 64, seed: int = 0) -> Path:
    """Write (once) `per_batch` random 32×32 RGB images per batch file; returns the dataset root."""

    root = Path(root).expanduser().absolute()
    folder = root / "cifar-10-batches-py"
    if (folder / MARKER).is_file() and all((folder / f).is_file() for f in (*FILES, "batches.meta")):
        return root
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in FILES:
        # smooth colour blobs rather than white noise, so that a generator has something to learn
        low = rng.integers(0, 256, size=(per_batch, 3, 4, 4)).astype(np.float32)
        images = low.repeat(8, axis=2).repeat(8, axis=3) + rng.normal(0, 12, size=(per_batch, 3, 32, 32))
        data = np.clip(images, 0, 255).astype(np.uint8).reshape(per_batch, 3072)
        entry = {"batch_label": name, "data": data, "labels": rng.integers(0, 10, per_batch).tolist(),
                 "filenames": [f"{name}_{i}.png" for i in range(per_batch)]}
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": LABELS, "num_cases_per_batch": per_batch}, f, protocol=2)
    (folder / MARKER).write_text("Fabricated by ganneal for smoke runs: random images, not CIFAR-10.\n")
    return root
