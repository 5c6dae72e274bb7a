"""Generators and critics, built by name from the `model` config group.

A model factory takes the data's shape (without the batch axis) and its own settings and returns
(generator, critic). Generators expose `z_dim` and `sample_noise(n, device)`.
"""

from __future__ import annotations

from torch import nn

from gan_anneal.errors import UserError
from gan_anneal.models.mlp import MLPCritic, MLPGenerator
from gan_anneal.registry import Registry
from gan_anneal.schema import gradient_penalised

MODELS: Registry[tuple[nn.Module, nn.Module]] = Registry("model")


@MODELS.register("mlp")
def _mlp(data_shape, z_dim: int = 2, hidden: int = 128, depth: int = 3, init: str | None = None,
         init_center=None, init_scale: float = 0.1):
    if len(data_shape) != 1:
        raise UserError(f"model=mlp needs flat data, but the dataset's samples have shape {tuple(data_shape)}. "
                        "Use an image model: model=dcgan32 (32×32), model=dcgan64 (64×64) or model=dcgan.")
    (x_dim,) = data_shape
    generator = MLPGenerator(z_dim, x_dim, hidden, depth)
    if init == "blob":  # a deliberately poor start: a tight blob at init_center (the kidney experiment)
        if init_center is None or not init_scale or init_scale <= 0:
            raise UserError("model.init=blob needs model.init_center (one coordinate per data dimension) and a "
                            f"positive model.init_scale; got init_center={init_center}, init_scale={init_scale}.")
        generator.init_blob(init_center, float(init_scale))
    elif init is not None:
        raise UserError(f"Unknown model.init '{init}'. Valid choices: null (PyTorch's default), blob.")
    return generator, MLPCritic(x_dim, hidden, depth)


from gan_anneal.models.discrete import discrete_dcgan, text_resnet  # noqa: E402  (BGAN)

MODELS.register("discrete_dcgan")(discrete_dcgan)  # Bernoulli / categorical DCGAN heads for binary or quantised images
MODELS.register("text_resnet")(text_resnet)  # 1-D conv residual nets for one-hot character sequences


from functools import partial  # noqa: E402

from gan_anneal.models.dcgan import dcgan  # noqa: E402  (images)

MODELS.register("dcgan")(dcgan)  # DCGAN for any power-of-two image size
MODELS.register("dcgan32")(partial(dcgan, resolution=32, name="dcgan32"))  # docs/design.md decision 6
MODELS.register("dcgan64")(partial(dcgan, resolution=64, name="dcgan64"))  # CelebA 64×64


def build_models(settings: dict, data_shape: tuple[int, ...], divergence: dict | None = None) -> tuple[nn.Module, nn.Module]:
    settings = dict(settings)
    settings.pop("cpu_threads", None)  # a host setting (train/build.py), not an architecture one
    if settings.get("critic_norm") == "auto":  # batch statistics mix the samples a per-sample gradient penalty separates
        settings["critic_norm"] = "layer" if gradient_penalised(divergence) else "batch"
    return MODELS.build(settings.pop("name"), data_shape=tuple(data_shape), **settings)
