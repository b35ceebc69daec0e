"""Distribution heads: the last layer of a network, turned into a ``torch.distributions`` object.

Every encoder and decoder ends in one of these, so that nothing downstream knows how the network
is built. Event dimensions are wrapped in ``Independent`` so that ``log_prob`` sums over them:

* :func:`diagonal_gaussian`  ``q(z|x) = N(mu, diag(sigma^2))`` from ``(..., 2Z)`` -> event shape ``(Z,)``
* :func:`bernoulli`          ``p(x|z) = prod_d Bernoulli(x_d; sigmoid(l_d))`` -> event shape ``(D,)``
* :func:`gaussian`           ``p(x|z) = prod_d N(x_d; mu_d, s_d^2)`` with a learned per-dimension scale
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, Independent, Normal, OneHotCategorical

from ..distributions import LogitBernoulli

MIN_LOG_VAR = -30.0  # sigma >= 3e-7: keeps exp() and 1/sigma finite when a unit collapses
MAX_LOG_VAR = 20.0


def full_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for a 16-bit floating type, ``dtype`` itself otherwise (float64 stays float64)."""
    return torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype


def full_precision(params: torch.Tensor) -> torch.Tensor:
    """``params`` in float32 if a mixed-precision step (``train.precision = 'bfloat16'``) left them in a
    16-bit type, the same tensor otherwise. Every distribution is built from it, so that log-densities, KL
    terms and losses are computed in full precision whatever the network's products were."""
    return params.to(full_dtype(params.dtype))


def diagonal_gaussian(params: torch.Tensor) -> Independent:
    """Split ``(..., 2Z)`` into mean and log-variance; return ``Independent(Normal(mu, sigma), 1)``.

    The log-variance parameterisation ``sigma = exp(logvar / 2)`` is Kingma & Welling's (2014, App. C.2).
    """
    mu, log_var = full_precision(params).chunk(2, dim=-1)
    scale = torch.exp(0.5 * log_var.clamp(MIN_LOG_VAR, MAX_LOG_VAR))
    return Independent(Normal(mu, scale, validate_args=False), 1, validate_args=False)


@dataclass(frozen=True)
class LatentSpec:
    """What z is: ``gaussian`` (``size`` real dimensions; with ``flow`` planar layers after the diagonal Gaussian,
    :mod:`vaekit.flows`), ``categorical`` (``size`` one-hot variables of ``categories`` values each) or
    ``bernoulli`` (``size`` binary units).

    ``params_dim`` is the encoder's output width, ``code_dim`` the decoder's input width.
    """

    kind: str = "gaussian"
    size: int = 20
    categories: int = 10
    flow: int = 0  # gaussian: planar layers after the diagonal Gaussian (vaekit.flows; 0 = none)

    @property
    def params_dim(self) -> int:
        sizes = {"gaussian": 2 * self.size + self.flow * (2 * self.size + 1),
                 "categorical": self.size * self.categories, "bernoulli": self.size}
        return sizes[self.kind]

    @property
    def code_dim(self) -> int:
        return self.size * self.categories if self.kind == "categorical" else self.size

    def posterior(self, params: torch.Tensor) -> Distribution:
        """``q(z|x)`` from the encoder output ``(..., params_dim)``."""
        if self.kind == "gaussian" and self.flow:
            from ..flows import PlanarFlowPosterior
            layers = full_precision(params[..., 2 * self.size:]).unflatten(-1, (self.flow, 2 * self.size + 1))
            return PlanarFlowPosterior(diagonal_gaussian(params[..., :2 * self.size]), layers)
        if self.kind == "gaussian":
            return diagonal_gaussian(params)
        if self.kind == "categorical":
            logits = full_precision(params).unflatten(-1, (self.size, self.categories))
            return Independent(OneHotCategorical(logits=logits, validate_args=False), 1, validate_args=False)
        return bernoulli(params)

    def prior(self, like: torch.Tensor) -> Distribution:
        """``p(z)``: N(0, I), uniform over categories, or Bernoulli(1/2) (dtype/device of ``like``)."""
        if self.kind == "gaussian":
            zeros = like.new_zeros(self.size)
            return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=False), 1, validate_args=False)
        if self.kind == "categorical":
            logits = like.new_zeros(self.size, self.categories)
            return Independent(OneHotCategorical(logits=logits, validate_args=False), 1, validate_args=False)
        return bernoulli(like.new_zeros(self.size))

    def flatten(self, z: torch.Tensor) -> torch.Tensor:
        """A sample of z as the decoder's input ``(..., code_dim)``."""
        return z.flatten(-2) if self.kind == "categorical" else z


def as_spec(latent: "int | LatentSpec") -> LatentSpec:
    return latent if isinstance(latent, LatentSpec) else LatentSpec("gaussian", int(latent))


def bernoulli(logits: torch.Tensor) -> Independent:
    """``Independent(Bernoulli(logits), 1)``: ``log p(x|z) = -sum_d BCEWithLogits(l_d, x_d)``; its KL to another
    such distribution is computed from the logits (:class:`vaekit.distributions.LogitBernoulli`)."""
    return Independent(LogitBernoulli(logits=full_precision(logits), validate_args=False), 1, validate_args=False)


class GaussianLikelihood(nn.Module):
    """``p(x|z) = N(x; mu(z), diag(s^2))`` with ``s = softplus(rho) + 1e-3`` learned per dimension.

    For continuous data (intensities in [0, 1]); the density is in nats per image (not a probability
    mass), so its NLL is not comparable with a Bernoulli NLL on binarised data.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.raw_scale = nn.Parameter(torch.full((dim,), -1.0))

    def forward(self, loc: torch.Tensor) -> Independent:
        scale = F.softplus(self.raw_scale) + 1e-3
        loc = full_precision(loc)
        return Independent(Normal(loc, scale.expand_as(loc), validate_args=False), 1, validate_args=False)


def likelihood_head(kind: str, dim: int) -> nn.Module:
    """A module mapping decoder outputs ``(..., D)`` to ``p(x|z)``."""
    if kind == "bernoulli":
        return _Function(bernoulli)
    if kind == "gaussian":
        return GaussianLikelihood(dim)
    raise ValueError(f"unknown likelihood {kind!r}: choose bernoulli or gaussian")


class _Function(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)
