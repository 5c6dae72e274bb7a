"""How the generator's loss is formed from the critic: the estimator of the generator gradient.

`reparam` — continuous generators: back-propagate the divergence's generator loss through x = G(z).
Discrete generators (BGAN's policy gradient) register their own estimator here; the loop only calls
`loss(generator, critic, divergence, n, device)` and gets (loss, differentiable samples or None, extras).
"""

from __future__ import annotations

import torch

from gan_anneal.registry import Registry


class Reparameterised:
    def loss(self, generator, critic, divergence, n: int, device) -> tuple[torch.Tensor, torch.Tensor, dict]:
        fake = generator(generator.sample_noise(n, device))
        return divergence.generator_loss(critic(fake)), fake, {}


GENERATOR_UPDATES: Registry = Registry("generator update")
GENERATOR_UPDATES.register("reparam")(Reparameterised)


def build_generator_update(settings: dict):
    settings = dict(settings)
    return GENERATOR_UPDATES.build(settings.pop("name"), **settings)
