"""The M2 model of Kingma, Rezende, Mohamed & Welling (2014), "Semi-supervised learning with deep
generative models", Sec. 2.2: the class label ``y`` is a discrete latent variable beside a Gaussian ``z``.

    prior     p(y) = Cat(1/C),  p(z) = N(0, I)                :meth:`M2.prior_y`, :meth:`M2.prior_z`
    decoder   p(x|y, z) = Bernoulli(f(y, z))                  :meth:`M2.decode`
    encoder   q(y|x) = Cat(pi(x))  (the classifier)           :meth:`M2.encode_y`
              q(z|x, y) = N(mu(x, y), diag sigma^2(x, y))     :meth:`M2.encode_z`

``y`` enters the networks as a one-hot (or relaxed, for Gumbel-softmax) vector of C values, so the same
code serves every estimator of the unlabelled bound (:mod:`vaekit.semi_supervised`). The paper's MNIST
networks have one hidden layer of 500 softplus units and z = 50.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, Independent, Normal, OneHotCategorical

from ..nets.heads import diagonal_gaussian, full_precision, likelihood_head
from ..nets.mlp import mlp


class M2(nn.Module):
    """Kingma et al.'s (2014) M2 on ``data_dim`` = D inputs: :meth:`prior_y` uniform over ``classes`` = C,
    :meth:`prior_z` ``N(0, I)``, :meth:`encode_y` ``q(y|x)`` (the classifier), :meth:`encode_z` ``q(z|x, y)`` and
    :meth:`decode` ``p(x|y, z)``; ``y`` is one-hot ``(..., B, C)`` (module docstring)."""

    def __init__(self, data_dim: int, classes: int = 10, latent: int = 50, hidden: Sequence[int] = (500,),
                 activation: str = "softplus", likelihood: str = "bernoulli"):
        super().__init__()
        self.classes, self.latent_dim, self.data_dim = classes, latent, data_dim
        self.classifier = mlp([data_dim, *hidden, classes], activation)
        self.z_encoder = mlp([data_dim + classes, *hidden, 2 * latent], activation)
        self.decoder = mlp([latent + classes, *reversed(hidden), data_dim], activation)
        self.head = likelihood_head(likelihood, data_dim)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def prior_y(self) -> Distribution:
        """``p(y)``: uniform over the C classes (one-hot values)."""
        return OneHotCategorical(logits=self._anchor.new_zeros(self.classes), validate_args=False)

    def prior_z(self) -> Distribution:
        zeros = self._anchor.new_zeros(self.latent_dim)
        return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=False), 1, validate_args=False)

    def encode_y(self, x: torch.Tensor) -> Distribution:
        """``q(y|x)`` for ``x`` ``(..., D)``: batch shape ``(...)``, one-hot event ``(C,)``."""
        return OneHotCategorical(logits=full_precision(self.classifier(x)), validate_args=False)

    def encode_z(self, x: torch.Tensor, y: torch.Tensor) -> Distribution:
        """``q(z|x, y)`` for ``x`` ``(..., D)`` and ``y`` ``(..., C)`` (broadcast): event ``(Z,)``.

        The first layer of the network on ``[x, y]`` is ``W_x x + W_y y + b``: its x part is computed once per
        image and broadcast over the values of y, so summing y out exactly (C copies of every image) does not
        multiply the encoder's largest product by C."""
        first = self.z_encoder[0]
        d = x.shape[-1]
        hidden = F.linear(x, first.weight[:, :d], first.bias) + F.linear(y, first.weight[:, d:])
        return diagonal_gaussian(self.z_encoder[1:](hidden))

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> Distribution:
        """``p(x|y, z)`` for ``z`` ``(..., Z)`` and ``y`` ``(..., C)``: event ``(D,)``."""
        shape = torch.broadcast_shapes(z.shape[:-1], y.shape[:-1])
        return self.head(self.decoder(torch.cat([z.expand(*shape, -1), y.expand(*shape, -1)], -1)))

    @torch.no_grad()
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """The most probable class under ``q(y|x)``: ``(N,)`` int64."""
        return self.classifier(x).argmax(-1)

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """Mean of ``p(x|y, z)`` for ``z ~ p(z)`` and the classes in turn (``y = i mod C``): ``(n, D)``."""
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            z = self.prior_z().sample((n,))
        y = torch.eye(self.classes, dtype=z.dtype, device=z.device)[torch.arange(n, device=z.device) % self.classes]
        return self.decode(z, y).mean

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of ``p(x|y_hat, z)`` at ``y_hat = argmax q(y|x)`` and ``z = E_q[z|x, y_hat]``."""
        y_hat = torch.eye(self.classes, dtype=x.dtype, device=x.device)[self.classify(x)]
        return self.decode(self.encode_z(x, y_hat).mean, y_hat).mean

    @torch.no_grad()
    def analogies(self, x: torch.Tensor) -> torch.Tensor:
        """Kingma et al. (2014), Fig. 1: each image's style ``z = E_q[z|x, y_hat]`` decoded with every class,
        ``(N, C, D)``."""
        y_hat = torch.eye(self.classes, dtype=x.dtype, device=x.device)[self.classify(x)]
        z = self.encode_z(x, y_hat).mean
        eye = torch.eye(self.classes, dtype=x.dtype, device=x.device)
        return self.decode(z[:, None, :], eye[None]).mean
