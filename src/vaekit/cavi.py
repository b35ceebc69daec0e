"""Mean-field variational inference by coordinate ascent (CAVI), and EM as its point-mass limit.

The model is the Bayesian mixture of unit-variance Gaussians of Blei, Kucukelbir & McAuliffe (2017),
"Variational Inference: A Review for Statisticians", Sec. 3 (there in one dimension; here in D):

    mu_k ~ N(0, sigma^2 I_D)                k = 1..K       (component means)
    c_i  ~ Categorical(1/K, ..., 1/K)       i = 1..n       (assignments)
    x_i | c_i, mu ~ N(mu_{c_i}, I_D)

and the mean-field family q(mu, c) = prod_k N(mu_k; m_k, s_k^2 I_D) prod_i Cat(c_i; phi_i). Each CAVI update sets
one factor to its optimum with the others held fixed, q*(v) ∝ exp E_{-v}[log p(v, rest, x)] (their eq. 18), so the
ELBO never decreases:

    phi_ik ∝ exp( E[mu_k]^T x_i - E[mu_k^T mu_k] / 2 )       E[mu_k^T mu_k] = |m_k|^2 + D s_k^2     (eq. 24)
    s_k^2  = 1 / (1/sigma^2 + sum_i phi_ik)
    m_k    = s_k^2 sum_i phi_ik x_i                                                                  (eq. 25-26)

EM on the same model treats the means as parameters (MAP under their prior) instead of random variables: its
E-step is the phi update with the variance term D s_k^2 dropped, its M-step the m update. That is CAVI with
q(mu_k) shrunk to a point mass, and the two agree as n grows and s_k^2 ~ 1/n_k vanishes (:func:`em`).

Everything is exact and in closed form: :func:`elbo` gives the bound, :func:`log_evidence` enumerates
log p(x) = log sum_c p(c) p(x | c) over all K^n assignments (mu integrated out analytically) for small n, so
the tests check the bound, its gap and the coordinate updates against exact answers. Tensors are float64:
``x`` is ``(n, D)``, ``phi`` ``(n, K)``, ``m`` ``(K, D)``, ``s2`` ``(K,)``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import torch
from torch.distributions import Categorical, Independent, Normal

LOG_2PI = math.log(2 * math.pi)


@dataclass
class MixturePosterior:
    """The mean-field factors: ``phi`` ``(n, K)`` assignment probabilities, ``m`` ``(K, D)`` and ``s2`` ``(K,)``
    the means and (isotropic) variances of q(mu_k); ``trace`` the ELBO after each full sweep."""

    phi: torch.Tensor
    m: torch.Tensor
    s2: torch.Tensor
    trace: list[float] = field(default_factory=list)

    def q_means(self) -> Independent:
        """q(mu): batch shape ``(K,)``, event shape ``(D,)``."""
        scale = self.s2.sqrt().unsqueeze(-1).expand_as(self.m)
        return Independent(Normal(self.m, scale), 1)

    def q_assignments(self) -> Categorical:
        """q(c): batch shape ``(n,)`` over K values."""
        return Categorical(probs=self.phi)


def elbo(x: torch.Tensor, q: MixturePosterior, sigma2: float) -> torch.Tensor:
    """The ELBO E_q[log p(x, c, mu)] - E_q[log q(c, mu)] in closed form (a scalar, float64 as every fit here)."""
    x = _float64(x)
    n, d = x.shape
    k = q.m.shape[0]
    second_moment = (q.m ** 2).sum(-1) + d * q.s2                                   # E|mu_k|^2, (K,)
    log_prior_mu = (-0.5 * d * math.log(2 * math.pi * sigma2) - second_moment / (2 * sigma2)).sum()
    log_prior_c = -n * math.log(k)
    squared = (x ** 2).sum(-1, keepdim=True) - 2 * x @ q.m.T + second_moment         # E|x_i - mu_k|^2, (n, K)
    log_likelihood = (q.phi * (-0.5 * d * LOG_2PI - 0.5 * squared)).sum()
    entropy_c = -torch.special.xlogy(q.phi, q.phi).sum()
    entropy_mu = (0.5 * d * (LOG_2PI + 1 + torch.log(q.s2))).sum()
    return log_prior_mu + log_prior_c + log_likelihood + entropy_c + entropy_mu


def update_assignments(x: torch.Tensor, q: MixturePosterior, point_means: bool = False) -> None:
    """The optimal q(c_i) given q(mu) (eq. 24); ``point_means`` drops E[mu^T mu]'s variance term (EM's E-step)."""
    d = x.shape[1]
    second_moment = (q.m ** 2).sum(-1) + (0.0 if point_means else d * q.s2)
    q.phi = torch.softmax(x @ q.m.T - 0.5 * second_moment, dim=-1)


def update_means(x: torch.Tensor, q: MixturePosterior, sigma2: float) -> None:
    """The optimal q(mu_k) given q(c) (eqs. 25-26): a Gaussian with precision 1/sigma^2 + n_k."""
    q.s2 = 1.0 / (1.0 / sigma2 + q.phi.sum(0))
    q.m = q.s2.unsqueeze(-1) * (q.phi.T @ x)


def initial_posterior(x: torch.Tensor, components: int, seed: int = 0) -> MixturePosterior:
    """Means at ``components`` distinct data points drawn with ``seed``, unit variances, uniform assignments."""
    pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:components]
    n = len(x)
    return MixturePosterior(phi=torch.full((n, components), 1.0 / components, dtype=x.dtype), m=x[pick].clone(),
                            s2=torch.ones(components, dtype=x.dtype))


def cavi(x: torch.Tensor, components: int, sigma2: float = 10.0, iterations: int = 200, tol: float = 1e-10,
         seed: int = 0, init: MixturePosterior | None = None) -> MixturePosterior:
    """Coordinate ascent on the ELBO until it rises by less than ``tol`` in a sweep (or ``iterations`` sweeps).

    A sweep updates every q(c_i), then every q(mu_k); ``trace`` holds the ELBO after each sweep."""
    x = _float64(x)
    q = init if init is not None else initial_posterior(x, components, seed)
    for _ in range(iterations):
        update_assignments(x, q)
        update_means(x, q, sigma2)
        q.trace.append(float(elbo(x, q, sigma2)))
        if len(q.trace) > 1 and q.trace[-1] - q.trace[-2] < tol:
            break
    return q


def em(x: torch.Tensor, components: int, sigma2: float = 10.0, iterations: int = 200, tol: float = 1e-10,
       seed: int = 0) -> MixturePosterior:
    """EM for the MAP means of the same model: CAVI with point masses for the means. The E-step is
    :func:`update_assignments` without the variance term, the M-step ``mu_k = sum_i phi_ik x_i / (1/sigma^2 + n_k)``;
    ``trace`` holds log p(x, mu) = log p(mu) + sum_i log sum_k p(c_i = k) N(x_i; mu_k, I), which EM never lowers."""
    x = _float64(x)
    q = initial_posterior(x, components, seed)
    q.s2 = torch.zeros_like(q.s2)
    for _ in range(iterations):
        update_assignments(x, q, point_means=True)
        q.m = (q.phi.T @ x) / (1.0 / sigma2 + q.phi.sum(0)).unsqueeze(-1)
        q.trace.append(float(map_objective(x, q.m, sigma2)))
        if len(q.trace) > 1 and q.trace[-1] - q.trace[-2] < tol:
            break
    return q


def map_objective(x: torch.Tensor, means: torch.Tensor, sigma2: float) -> torch.Tensor:
    """log p(x, mu) with the assignments summed out: EM's objective."""
    x, means = _float64(x), _float64(means)
    k, d = means.shape
    log_prior = Independent(Normal(torch.zeros_like(means), math.sqrt(sigma2)), 1).log_prob(means).sum()
    log_components = Independent(Normal(means, torch.ones_like(means)), 1).log_prob(x.unsqueeze(1))  # (n, K)
    return log_prior + (torch.logsumexp(log_components, dim=-1) - math.log(k)).sum()


def log_evidence(x: torch.Tensor, components: int, sigma2: float) -> torch.Tensor:
    """Exact log p(x) by enumerating all K^n assignments (small n only).

    Given c, the points of component k are jointly Gaussian with mu_k integrated out: in each dimension
    N(0, I_{n_k} + sigma^2 1 1^T), whose log-density is closed-form (matrix determinant lemma and
    Sherman-Morrison): log det = log(1 + n_k sigma^2), quadratic form |x|^2 - sigma^2 (sum x)^2 / (1 + n_k sigma^2).
    """
    x = _float64(x)
    n, d = x.shape
    if components ** n > 2_000_000:
        raise ValueError(f"enumerating {components}^{n} assignments is too many: use at most ~2 million")
    terms = []
    for assignment in itertools.product(range(components), repeat=n):
        c = torch.tensor(assignment)
        total = -n * math.log(components)
        for k in range(components):
            points = x[c == k]
            n_k = len(points)
            if n_k == 0:
                continue
            shrink = sigma2 / (1 + n_k * sigma2)
            quadratic = (points ** 2).sum() - shrink * (points.sum(0) ** 2).sum()
            total = total - 0.5 * (n_k * d * LOG_2PI + d * math.log(1 + n_k * sigma2) + quadratic)
        terms.append(total)
    return torch.logsumexp(torch.stack([torch.as_tensor(t, dtype=torch.float64) for t in terms]), dim=0)


def _float64(x) -> torch.Tensor:
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.dim() != 2:
        raise ValueError(f"x must be (n, D) data points, got shape {tuple(x.shape)}")
    return x
