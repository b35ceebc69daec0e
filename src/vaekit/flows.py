"""Normalizing flows for the posterior: planar flows (Rezende & Mohamed 2015, "Variational inference with
normalizing flows", Sec. 4.1 and App. A.1).

A diagonal Gaussian ``q_0(z_0|x)`` is pushed through K invertible maps, each

    f_k(z) = z + u_hat h(w^T z + b),        h = tanh,
    log |det df_k/dz| = log |1 + h'(w^T z + b) w^T u_hat|,

so ``log q_K(z_K|x) = log q_0(z_0|x) - sum_k log |det df_k/dz_{k-1}|`` (eq. 13). The parameters (u, w, b) of every
layer are amortised: the encoder outputs them per example beside the Gaussian's mean and log-variance (as in the
paper's experiments), ``2Z + K (2Z + 1)`` numbers in all. Invertibility needs ``w^T u_hat >= -1``; the paper's
reparameterisation ``u_hat = u + (m(w^T u) - w^T u) w / |w|^2`` gives ``w^T u_hat = m(w^T u) > -1``, so every
determinant is positive. We take ``m(a) = -1 + softplus(a + log(e - 1))``, the paper's ``m`` shifted so that
``m(0) = 0``: then small (u, w, b) make a layer close to the identity, and a new model starts as the plain
diagonal-Gaussian VAE (:func:`start_near_identity`).

A planar flow has no closed-form inverse, so :class:`PlanarFlowPosterior` knows ``log q(z|x)`` only at its own
samples: ``rsample`` remembers the log-density of what it returns, and ``log_prob`` of those very tensors reads
it back (the ELBO, the IWAE bound and the importance-sampled log-likelihood only ever ask for that). Its
``mean`` ``E_q[z]`` has no closed form either and is a Monte Carlo estimate from a fixed-seed generator (the
caller's random state is untouched). Shapes: params ``(B, K, 2Z + 1)``, samples ``(*S, B, Z)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, Independent, constraints

SHIFT = math.log(math.e - 1)  # softplus(SHIFT) = 1
MEAN_SAMPLES, MEAN_CHUNK = 4096, 256  # draws behind PlanarFlowPosterior.mean, and how many at a time


def start_near_identity(encoder: nn.Module, gaussian_params: int, scale: float = 0.01) -> None:
    """Shrink the weights and biases of ``encoder``'s last linear layer that output the flow's parameters (those
    after its first ``gaussian_params`` outputs) by ``scale``: the flow starts close to the identity, so a new
    model begins as the plain diagonal-Gaussian VAE and learns how far to bend q. (All-zero parameters would be
    the identity exactly but a saddle: no gradient reaches u or w there.)"""
    last = [m for m in encoder.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight[gaussian_params:] *= scale
        last.bias[gaussian_params:] *= scale


def planar_parameters(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split ``(..., 2Z + 1)`` into ``u_hat``, ``w`` ``(..., Z)`` and ``b`` ``(...)`` with ``w^T u_hat > -1``."""
    z_dim = (params.shape[-1] - 1) // 2
    u, w, b = params[..., :z_dim], params[..., z_dim:2 * z_dim], params[..., -1]
    wu = (w * u).sum(-1, keepdim=True)
    # m(a) > -1 (clamped where softplus rounds to 0); shifted so that m(0) = 0: small (u, w) give u_hat ~ u and a
    # layer near the identity (the paper's unshifted m(0) = -0.31 would add -0.31 w / |w|^2, large for small w)
    m = (F.softplus(wu + SHIFT) - 1).clamp_min(-1 + 1e-6)
    u_hat = u + (m - wu) * w / (w * w).sum(-1, keepdim=True).clamp_min(1e-12)
    return u_hat, w, b


def planar(z: torch.Tensor, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One planar layer: ``f(z)`` and ``log |det df/dz|`` for ``z`` ``(*S, B, Z)`` and params ``(B, 2Z + 1)``."""
    u_hat, w, b = planar_parameters(params)
    activation = torch.tanh((z * w).sum(-1) + b)                       # (*S, B)
    slope = 1 - activation ** 2                                         # h'(w^T z + b)
    log_det = torch.log1p(slope * (w * u_hat).sum(-1))                 # 1 + h' w^T u_hat > 0
    return z + u_hat * activation.unsqueeze(-1), log_det


class PlanarFlowPosterior(Distribution):
    """``q_K(z|x)``: ``base`` (an ``Independent(Normal)`` with batch ``(B,)``, event ``(Z,)``) through the planar
    layers given by ``params`` ``(B, K, 2Z + 1)``."""

    arg_constraints: dict = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, base: Independent, params: torch.Tensor):
        self.base, self.params = base, params
        self._recent: list[tuple[torch.Tensor, torch.Tensor]] = []  # (sample, its log q), newest last
        super().__init__(base.batch_shape, base.event_shape, validate_args=False)

    @property
    def layers(self) -> int:
        return self.params.shape[-2]

    def flow(self, z0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``z_K`` and ``sum_k log |det df_k/dz_{k-1}|`` for base points ``z0`` ``(*S, B, Z)``."""
        z, total = z0, z0.new_zeros(z0.shape[:-1])
        for k in range(self.layers):
            z, log_det = planar(z, self.params[..., k, :])
            total = total + log_det
        return z, total

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        z0 = self.base.rsample(sample_shape)
        z, log_det = self.flow(z0)
        self._recent = (self._recent + [(z, z0, log_det)])[-4:]
        return z

    def _origin(self, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z0, sum log det)`` behind a sample this posterior drew."""
        for sample, z0, log_det in reversed(self._recent):
            if value is sample:
                return z0, log_det
        raise NotImplementedError("a planar flow has no closed-form inverse: log q(z|x) is known only at the "
                                  "posterior's own samples (pass the tensor rsample returned)")

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        z0, log_det = self._origin(value)
        return self.base.log_prob(z0) - log_det

    def kl_estimate(self, prior: Distribution, value: torch.Tensor) -> torch.Tensor:
        """``KL(q_K || p)`` estimated at the sample ``value`` with the base's KL in closed form:

            KL(q_0 || p) + log p(z_0) - log p(z_K) - sum_k log |det df_k/dz_{k-1}|,

        unbiased, and exactly the diagonal VAE's analytic KL when the flow is the identity (the plain
        ``log q(z_K) - log p(z_K)`` would add the Monte Carlo noise of ``log q_0(z_0) - log p(z_0)``). Shape
        ``value.shape[:-1]``."""
        z0, log_det = self._origin(value)
        base_kl = torch.distributions.kl_divergence(self.base, prior.expand(self.base.batch_shape))
        return base_kl + prior.log_prob(z0) - prior.log_prob(value) - log_det

    @property
    def mean(self) -> torch.Tensor:
        """``E_q[z]`` by Monte Carlo: ``MEAN_SAMPLES`` draws from a fixed-seed generator, in chunks, ``(B, Z)``.
        Its error variance is Var_q[z_j] / 4096 per dimension, far below the 0.01 that makes a latent unit count
        as active (Burda et al. 2016), so noise does not make units look active."""
        loc, scale = self.base.base_dist.loc, self.base.base_dist.scale
        generator = torch.Generator(device=loc.device).manual_seed(0)
        total = torch.zeros_like(loc)
        for _ in range(MEAN_SAMPLES // MEAN_CHUNK):
            noise = torch.randn((MEAN_CHUNK, *loc.shape), generator=generator, device=loc.device, dtype=loc.dtype)
            total = total + self.flow(loc + scale * noise)[0].sum(0)
        return total / MEAN_SAMPLES
