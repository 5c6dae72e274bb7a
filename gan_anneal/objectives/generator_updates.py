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
        return self.loss_on(generator(generator.sample_noise(n, device)), critic, divergence)

    def loss_on(self, fake, critic, divergence) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """The loss on samples already drawn: what lets train.reuse_fake share one G(z) with the critic step."""
        return divergence.generator_loss(critic(fake)), fake, {}


GENERATOR_UPDATES: Registry = Registry("generator update")
GENERATOR_UPDATES.register("reparam")(Reparameterised)

from gan_anneal.objectives.policy_gradient import BoundaryLogZ, PolicyGradient  # noqa: E402  (BGAN)

GENERATOR_UPDATES.register("policy_gradient")(PolicyGradient)  # discrete BGAN: M samples per z, w̃ = softmax_m F
GENERATOR_UPDATES.register("boundary_logz")(BoundaryLogZ)  # continuous BGAN: ½·(F − log Z_EMA)²


def build_generator_update(settings: dict):
    settings = dict(settings)
    return GENERATOR_UPDATES.build(settings.pop("name"), **settings)
