"""Generators and critics, built by name from the `model` config group.

A model factory takes the data's shape (without the batch axis) and its own settings and returns
(generator, critic). Generators expose `z_dim` and `sample_noise(n, device)`.
"""

from __future__ import annotations

from torch import nn

from gan_anneal.models.mlp import MLPCritic, MLPGenerator
from gan_anneal.registry import Registry

MODELS: Registry[tuple[nn.Module, nn.Module]] = Registry("model")


@MODELS.register("mlp")
def _mlp(data_shape, z_dim: int = 2, hidden: int = 128, depth: int = 3):
    (x_dim,) = data_shape
    generator = MLPGenerator(z_dim, x_dim, hidden, depth)
    return generator, MLPCritic(x_dim, hidden, depth)


def build_models(settings: dict, data_shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    settings = dict(settings)
    return MODELS.build(settings.pop("name"), data_shape=tuple(data_shape), **settings)
