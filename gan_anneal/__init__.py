"""ganneal: a GAN experiment runner for variational annealing and boundary-seeking GANs."""

__version__ = "0.1.0"
