"""What kind of data each `dataset=` option is, known without importing torch (bad-input paths stay fast).

tests/cli/test_bad_input.py checks this table against the dataset registry (gan_anneal/data), so a new data set
cannot be left out of it.
"""

from __future__ import annotations

IMAGES = ("cifar10", "celeba", "mnist", "mnist_small", "digits", "image_folder")  # IS / FID / KID apply
GREY_IMAGES = ("mnist", "mnist_small", "digits")  # one channel; image_folder: when dataset.channels is 1
DISCRETE = ("mnist_binary", "quantized", "text")  # one-hot / binary samples (BGAN's policy gradient)
TOYS = ("ring8", "grid25", "gauss1d")  # mixtures with closed-form metrics in summary.json
ENERGY_PREFIX = "energy_"  # targets known through an energy ψ (data/energies.py)


def dataset_kind(name: str) -> str:
    """images | discrete | toy | energy | unknown."""
    if name in IMAGES:
        return "images"
    if name in DISCRETE:
        return "discrete"
    if name in TOYS:
        return "toy"
    if name.startswith(ENERGY_PREFIX):
        return "energy"
    return "unknown"
