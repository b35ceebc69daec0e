"""Probabilistic PCA (Tipping & Bishop 1999): a linear-Gaussian latent-variable model with exact answers.

    p(z)   = N(0, I_Z)
    p(x|z) = N(W z + mu, sigma^2 I_D)
    p(x)   = N(mu, W W^T + sigma^2 I_D)                                   (closed form)
    p(z|x) = N(M^{-1} W^T (x - mu), sigma^2 M^{-1}),  M = W^T W + sigma^2 I  (closed form)

Because ``log p(x)`` and the true posterior are known, this model is the ground truth against which
the ELBO, the IWAE bound and the importance-sampled likelihood are tested: ``ELBO <= L_k <= log p(x)``,
``L_k`` grows with ``k``, and with ``q = p(z|x)`` the ELBO equals ``log p(x)`` for every sample.

The encoder is either amortised and diagonal (``q(z|x) = N(A x + c, diag s^2)``, learnable, so the
bounds are strict) or the exact posterior (``exact_posterior=True``).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal


class PPCA(nn.Module):
    """Probabilistic PCA with ``data_dim`` = D observed and ``latent_dim`` = Z latent dimensions (float64 by
    default): :meth:`prior` ``N(0, I_Z)``, :meth:`encode` ``q(z|x)`` (amortised diagonal, or the exact posterior),
    :meth:`decode` ``p(x|z)``, and the exact :meth:`log_marginal` ``log p(x)`` and :meth:`posterior` (module docstring)."""

    def __init__(self, data_dim: int, latent_dim: int, sigma: float = 0.5, exact_posterior: bool = False,
                 generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64):
        super().__init__()
        g = generator
        self.latent_dim = latent_dim
        self.exact_posterior = exact_posterior
        self.W = nn.Parameter(torch.randn(data_dim, latent_dim, generator=g, dtype=dtype))
        self.mu = nn.Parameter(0.3 * torch.randn(data_dim, generator=g, dtype=dtype))
        self.log_sigma = nn.Parameter(torch.tensor(float(sigma), dtype=dtype).log())
        # amortised diagonal encoder (deliberately not the exact posterior)
        self.A = nn.Parameter(0.3 * torch.randn(latent_dim, data_dim, generator=g, dtype=dtype))
        self.c = nn.Parameter(0.1 * torch.randn(latent_dim, generator=g, dtype=dtype))
        self.log_s = nn.Parameter(torch.full((latent_dim,), -0.7, dtype=dtype))

    def prior(self) -> Distribution:
        zeros = torch.zeros(self.latent_dim, dtype=self.W.dtype)
        return Independent(Normal(zeros, torch.ones_like(zeros)), 1)

    def decode(self, z: torch.Tensor) -> Distribution:
        loc = z @ self.W.T + self.mu
        return Independent(Normal(loc, self.log_sigma.exp().expand_as(loc)), 1)

    def encode(self, x: torch.Tensor) -> Distribution:
        if self.exact_posterior:
            return self.posterior(x)
        loc = x @ self.A.T + self.c
        return Independent(Normal(loc, self.log_s.exp().expand_as(loc)), 1)

    def posterior(self, x: torch.Tensor) -> MultivariateNormal:
        """The exact ``p(z|x)``."""
        sigma2 = self.log_sigma.exp() ** 2
        M = self.W.T @ self.W + sigma2 * torch.eye(self.latent_dim, dtype=self.W.dtype)
        M_inv = torch.linalg.inv(M)
        loc = (x - self.mu) @ self.W @ M_inv.T
        return MultivariateNormal(loc, covariance_matrix=sigma2 * M_inv)

    def marginal(self) -> MultivariateNormal:
        """The exact ``p(x) = N(mu, W W^T + sigma^2 I)``."""
        D = self.mu.shape[0]
        cov = self.W @ self.W.T + self.log_sigma.exp() ** 2 * torch.eye(D, dtype=self.W.dtype)
        return MultivariateNormal(self.mu, covariance_matrix=cov)

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(x)``, shape ``(B,)``."""
        return self.marginal().log_prob(x)
