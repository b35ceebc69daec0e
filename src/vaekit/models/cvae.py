"""The conditional VAE of Sohn, Lee & Yan (2015), "Learning structured output representation using deep
conditional generative models", with its prior network, and their deterministic baseline.

    prior network  p(z|c)    = N(mu_p(c), diag sigma_p^2(c))     :meth:`CVAE.prior`
    recognition    q(z|x, c) = N(mu_q(x, c), diag sigma_q^2(x, c)) :meth:`CVAE.encode`
    generation     p(x|z, c) = Bernoulli(f(z, c))                :meth:`CVAE.decode`

``c`` is the condition (for MNIST quadrant completion, the pixels of the given quadrants) and ``x`` what
is predicted (the other pixels). With ``prior_network=False`` the prior is N(0, I) and the model is the
plain conditional VAE (the conditional ELBO then reduces to the ordinary one when c carries nothing).
:class:`ConditionalNN` is the deterministic baseline ``p(x|c) = Bernoulli(f(c))`` (Sohn et al., Sec. 5.1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from ..nets.heads import bernoulli, diagonal_gaussian
from ..nets.mlp import mlp


class CVAE(nn.Module):
    """Sohn et al.'s (2015) CVAE for x ``(B, x_dim)`` given c ``(B, c_dim)``: :meth:`prior` ``p(z|c)`` (the prior
    network, or ``N(0, I)`` without one), :meth:`encode` ``q(z|x, c)``, :meth:`decode` ``p(x|z, c)`` (module docstring)."""

    def __init__(self, x_dim: int, c_dim: int, latent: int = 32, hidden: Sequence[int] = (500, 500),
                 activation: str = "relu", prior_network: bool = True):
        super().__init__()
        self.x_dim, self.c_dim, self.latent_dim = x_dim, c_dim, latent
        self.recognition = mlp([x_dim + c_dim, *hidden, 2 * latent], activation)
        self.prior_net = mlp([c_dim, *hidden, 2 * latent], activation) if prior_network else None
        self.generation = mlp([latent + c_dim, *reversed(hidden), x_dim], activation)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def prior(self, c: torch.Tensor) -> Distribution:
        """``p(z|c)``: batch shape ``c.shape[:-1]``, event ``(Z,)``; N(0, I) without a prior network."""
        if self.prior_net is not None:
            return diagonal_gaussian(self.prior_net(c))
        zeros = c.new_zeros(*c.shape[:-1], self.latent_dim)
        return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=False), 1, validate_args=False)

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> Distribution:
        return diagonal_gaussian(self.recognition(torch.cat([x, c], -1)))

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> Distribution:
        shape = torch.broadcast_shapes(z.shape[:-1], c.shape[:-1])
        return bernoulli(self.generation(torch.cat([z.expand(*shape, -1), c.expand(*shape, -1)], -1)))

    @torch.no_grad()
    def complete(self, c: torch.Tensor, samples: int = 1) -> torch.Tensor:
        """Means of ``p(x|z, c)`` for ``z ~ p(z|c)``: ``(samples, B, x_dim)``."""
        z = self.prior(c).sample((samples,))
        return self.decode(z, c).mean


class ConditionalNN(nn.Module):
    """``p(x|c) = Bernoulli(f(c))``: a deterministic network, the baseline of Sohn et al. (2015)."""

    def __init__(self, x_dim: int, c_dim: int, hidden: Sequence[int] = (500, 500), activation: str = "relu"):
        super().__init__()
        self.x_dim, self.c_dim = x_dim, c_dim
        self.net = mlp([c_dim, *hidden, x_dim], activation)

    def predict(self, c: torch.Tensor) -> Distribution:
        return bernoulli(self.net(c))

    @torch.no_grad()
    def complete(self, c: torch.Tensor, samples: int = 1) -> torch.Tensor:
        return self.predict(c).mean.expand(samples, *c.shape[:-1], self.x_dim)
