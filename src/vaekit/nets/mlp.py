"""Multilayer perceptron encoders and decoders.

Sizes used by the recipes:

* Burda et al. (2016), Sec. 5: two deterministic hidden layers of 200 tanh units, z = 50, a
  mirrored decoder (784-200-200-50 / 50-200-200-784).
* pytorch/examples VAE: one hidden layer of 400 ReLU units, z = 20 (784-400-20 / 20-400-784).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Distribution

from .heads import LatentSpec, as_spec, likelihood_head

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "softplus": nn.Softplus,
               "leaky_relu": nn.LeakyReLU}


def mlp(sizes: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]`` with ``activation`` between them (not after the last)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: choose from {', '.join(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """``q(z|x)``: ``(..., D)`` -> e.g. ``N(mu(x), diag sigma^2(x))`` with event shape ``(Z,)``, or a
    one-hot categorical / Bernoulli posterior (see :class:`LatentSpec`)."""

    def __init__(self, data_dim: int, hidden: Sequence[int], latent: int | LatentSpec, activation: str = "relu"):
        super().__init__()
        self.latent = as_spec(latent)
        self.net = mlp([data_dim, *hidden, self.latent.params_dim], activation)

    def forward(self, x: torch.Tensor) -> Distribution:
        return self.latent.posterior(self.net(x))


class MLPDecoder(nn.Module):
    """``p(x|z)``: ``(..., Z)`` (or ``(..., L, K)`` one-hot codes) -> distribution with event shape ``(D,)``."""

    def __init__(self, latent: int | LatentSpec, hidden: Sequence[int], data_dim: int, activation: str = "relu",
                 likelihood: str = "bernoulli"):
        super().__init__()
        self.latent = as_spec(latent)
        self.net = mlp([self.latent.code_dim, *hidden, data_dim], activation)
        self.head = likelihood_head(likelihood, data_dim)

    def forward(self, z: torch.Tensor) -> Distribution:
        return self.head(self.net(self.latent.flatten(z)))
