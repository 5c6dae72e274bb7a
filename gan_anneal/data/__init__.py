"""Datasets and targets, built by name from the `dataset` config group."""

from __future__ import annotations

from gan_anneal.data import images
from gan_anneal.data.energies import ENERGIES
from gan_anneal.data.targets import Target, gauss1d, grid, ring
from gan_anneal.registry import Registry

DATASETS: Registry[Target] = Registry("dataset")
DATASETS.register("ring8")(ring)
DATASETS.register("grid25")(grid)
DATASETS.register("gauss1d")(gauss1d)
DATASETS.register("cifar10")(images.cifar10)
DATASETS.register("celeba")(images.celeba)
DATASETS.register("mnist")(images.mnist)
DATASETS.register("image_folder")(images.image_folder)
DATASETS.register("mnist_small")(images.mnist_small)
DATASETS.register("digits")(images.digits)
for _name, _energy in ENERGIES.items():  # targets known only through an energy ψ (data/energies.py)
    DATASETS.register(_name)(_energy)

from gan_anneal.data.discrete import mnist_binary, quantized, text  # noqa: E402  (BGAN)

DATASETS.register("mnist_binary")(mnist_binary)  # binarised mnist_small digits (threshold / stochastic)
DATASETS.register("quantized")(quantized)  # 16-colour images, one-hot, k-means palette
DATASETS.register("text")(text)  # 32-character sequences from a text file, one-hot


def build_dataset(settings: dict) -> Target:
    settings = dict(settings)
    return DATASETS.build(settings.pop("name"), **settings)
