"""Objectives as plain functions of a model's three distributions.

A model supplies ``prior()`` = p(z), ``encode(x)`` = q(z|x) and ``decode(z)`` = p(x|z), all
``torch.distributions`` objects. Every function returns per-example values, shape ``(B,)``.

* :func:`elbo` -- ``E_q[log p(x|z)] - beta * KL(q(z|x) || p(z))`` (Kingma & Welling 2014, eq. 10),
  with the KL in closed form where one is registered and by Monte Carlo otherwise.
* :func:`iwae_bound` -- ``E[log (1/k) sum_i p(x, z_i) / q(z_i|x)]`` (Burda et al. 2016, eq. 8).
* :func:`log_likelihood` -- the importance-sampled estimate of ``log p(x)`` with K samples, in chunks,
  used for evaluation (Burda et al. use K = 5000).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.distributions import Distribution, kl_divergence


@dataclass
class Terms:
    """Per-example terms of an objective, each ``(B,)``.

    ``loss`` is what the optimiser minimises (its mean over the batch); ``bound`` is the value of the
    variational bound on log p(x) in nats (for the ELBO with beta != 1 it is still the beta = 1 bound).
    """

    loss: torch.Tensor
    bound: torch.Tensor
    log_px_z: torch.Tensor
    kl: torch.Tensor


def kl_term(q: Distribution, p: Distribution, z: torch.Tensor | None = None) -> torch.Tensor:
    """``KL(q || p)``: closed form when torch knows the pair, else ``log q(z) - log p(z)`` at samples ``z``.

    New closed forms are added with ``torch.distributions.kl.register_kl``, not here; a posterior whose KL has no
    closed form but a better estimator than the plain difference offers ``kl_estimate(p, z)`` (the planar flow
    keeps its base Gaussian's KL in closed form, :mod:`vaekit.flows`). ``z`` has shape
    ``(S, B, Z)`` or ``(B, Z)``; a Monte Carlo estimate is averaged over the leading sample axis.
    """
    if p.batch_shape != q.batch_shape:  # a prior without batch dimensions: torch's closed forms do not broadcast
        p = p.expand(q.batch_shape)
    if z is not None and hasattr(q, "kl_estimate"):  # a posterior with its own lower-variance estimator (flows)
        mc = q.kl_estimate(p, z)
        return mc.mean(0) if mc.dim() > len(q.batch_shape) else mc
    try:
        return kl_divergence(q, p)
    except NotImplementedError:
        if z is None:
            raise
        mc = q.log_prob(z) - p.log_prob(z)
        return mc.mean(0) if mc.dim() > len(q.batch_shape) else mc


def free_bits_penalty(q: Distribution, p: Distribution, free_nats: float, batch: int) -> torch.Tensor:
    """Kingma et al. (2016): ``sum_j max(free_nats, mean_b KL_j)``, spread evenly over the ``batch``
    examples so that the batch mean of the per-example loss carries it once. Needs a factorised q and p
    with a closed-form KL per dimension."""
    from .text_policy import free_bits_kl

    base_q = q.base_dist if isinstance(q, torch.distributions.Independent) else q
    base_p = p.base_dist if isinstance(p, torch.distributions.Independent) else p
    per_dim = kl_divergence(base_q, base_p).reshape(batch, -1)
    return free_bits_kl(per_dim, free_nats).expand(batch)


def _penalty(kl: torch.Tensor, free_bits_penalty: torch.Tensor | None, capacity: float | None) -> torch.Tensor:
    """What beta multiplies: the KL itself, its free-bits version, or Burgess et al.'s (2018) ``|KL - C|`` on the
    batch-mean KL (spread evenly over the examples, so that the batch mean of the loss carries it once)."""
    if capacity is not None:
        return (kl.mean() - capacity).abs().expand_as(kl)
    return kl if free_bits_penalty is None else free_bits_penalty


def elbo(model, x, beta: float = 1.0, samples: int = 1, estimator=None, free_bits: float = 0.0,
         capacity: float | None = None, auxiliary=None) -> Terms:
    """The evidence lower bound ``E_q[log p(x|z)] - beta * KL(q(z|x) || p(z))``.

    ``x``: ``(B, D)``. The gradient of the expectation follows from the posterior: pathwise
    (reparameterisation) when ``q.has_rsample``, otherwise a score-function estimator; an explicit
    ``estimator`` from :mod:`vaekit.estimators` (Gumbel-softmax, a baselined score function, exact
    enumeration) overrides that. With ``samples > 1`` the reconstruction term averages that many
    ``z ~ q(z|x)`` (pathwise and score-function estimators; the leave-one-out baseline needs ``samples >= 2``).
    ``bound`` is the ELBO itself (beta = 1); ``loss`` is what is
    differentiated (for a score-function estimator a surrogate, plus a learned baseline's own loss).
    With ``capacity = C`` the loss is ``-(E_q[log p(x|z)] - beta |KL - C|)`` (controlled capacity,
    Burgess et al. 2018, eq. 8; beta is their gamma); the bound is unchanged. ``auxiliary(z)`` adds a
    per-example loss at the sampled z that is not part of the bound (e.g. a bag-of-words loss). For a discrete
    posterior whose KL has no closed form (the chain of a deep sigmoid belief net) the whole Monte Carlo ELBO is
    the score function's learning signal (:func:`_elbo_score_function_whole`).
    """
    q = model.encode(x)
    prior = model.prior()
    penalty = None
    if free_bits > 0:
        penalty = free_bits_penalty(q, prior, free_bits, q.batch_shape[0])
    if auxiliary is not None and estimator is None and not q.has_rsample:
        raise ValueError("an auxiliary loss needs a reparameterised z")
    if samples > 1 and auxiliary is not None:
        raise ValueError("an auxiliary loss takes one z per example: set train.k = 1")
    if estimator is None:
        from .estimators import Pathwise, ScoreFunction
        estimator = Pathwise() if q.has_rsample else ScoreFunction()
    closed_kl = None
    if not q.has_rsample:  # a discrete z: its KL in closed form, or (a chain of layers) inside the learning signal
        try:
            closed_kl = kl_term(q, prior)
        except NotImplementedError:
            return _elbo_score_function_whole(model, x, q, prior, beta, samples, estimator, penalty, capacity)
    estimate = estimator(q, lambda z: model.decode(z).log_prob(x), x, samples=samples)
    kl = closed_kl if closed_kl is not None else kl_term(q, prior, estimate.z)
    bound = estimate.value - kl
    loss = -(estimate.surrogate - beta * _penalty(kl, penalty, capacity))
    if estimate.aux_loss is not None:
        loss = loss + estimate.aux_loss
    if auxiliary is not None:
        loss = loss + auxiliary(estimate.z)
    return Terms(loss=loss, bound=bound, log_px_z=estimate.value, kl=kl)


def _elbo_score_function_whole(model, x, q, prior, beta, samples, estimator, penalty, capacity) -> Terms:
    """The ELBO of a discrete posterior whose KL has no closed form (a deep sigmoid belief net's chain): the
    score-function estimator's learning signal is the whole Monte Carlo ELBO ``log p(x|z) + beta (log p(z) -
    log q(z|x))``, as Mnih & Gregor (2014, eq. 6) write NVIL's ``l(x, h) = log p(x, h) - log q(h|x)``. The direct
    gradient of ``-log q(z|x)`` in it has expectation zero; that of ``log p(z)`` trains the prior."""
    if penalty is not None or capacity is not None:
        raise ValueError("free bits and a KL capacity need a closed-form KL, which a chain of layers has not")
    parts = {}

    def signal(z):
        parts["log_px_z"] = log_px_z = model.decode(z).log_prob(x)
        parts["kl"] = kl = q.log_prob(z) - prior.log_prob(z)
        return log_px_z - beta * kl

    estimate = estimator(q, signal, x, samples=samples)
    log_px_z, kl = parts["log_px_z"].detach(), parts["kl"].detach()
    if samples > 1:
        log_px_z, kl = log_px_z.mean(0), kl.mean(0)
    loss = -estimate.surrogate if estimate.aux_loss is None else -estimate.surrogate + estimate.aux_loss
    return Terms(loss=loss, bound=log_px_z - kl, log_px_z=log_px_z, kl=kl)


def log_weights(model, x: torch.Tensor, k: int, q: Distribution | None = None) -> torch.Tensor:
    """Importance log-weights ``log p(x|z_i) + log p(z_i) - log q(z_i|x)``, ``z_i ~ q(z|x)``: shape ``(k, B)``."""
    q = model.encode(x) if q is None else q
    z = q.rsample((k,)) if q.has_rsample else q.sample((k,))
    return model.decode(z).log_prob(x) + model.prior().log_prob(z) - q.log_prob(z)


def iwae_bound(model, x: torch.Tensor, k: int, estimator=None) -> Terms:
    """The importance-weighted bound ``L_k = E[logsumexp_i log w_i - log k]`` (Burda et al. 2016).

    ``L_1`` is the ELBO, ``L_k <= L_{k+1} <= log p(x)``. Its gradient weights each sample's
    gradient by its normalised importance weight. For a discrete ``q`` (no ``rsample``) the encoder's
    gradient is VIMCO's score-function estimator with leave-one-out baselines (Mnih & Rezende 2016).
    With ``estimator = DoublyReparameterized()`` the encoder's gradient is DReG (Tucker et al. 2019;
    :func:`vaekit.estimators.dreg_surrogate`), the decoder's unchanged.
    ``log_px_z`` and ``kl`` are reported for the k samples on average (the KL here is the Monte Carlo
    ``E_q[log q - log p]``).
    """
    q = model.encode(x)
    if estimator is not None:
        return _iwae_dreg(model, x, q, k, estimator)
    z = q.rsample((k,)) if q.has_rsample else q.sample((k,))
    log_px_z = model.decode(z).log_prob(x)
    log_q = q.log_prob(z)
    log_ratio = model.prior().log_prob(z) - log_q
    if q.has_rsample:
        bound = torch.logsumexp(log_px_z + log_ratio, dim=0) - math.log(k)
        loss = -bound
    else:  # discrete z: VIMCO's leave-one-out baselines for the score-function part (Mnih & Rezende 2016)
        from .estimators import vimco_surrogate
        bound, surrogate = vimco_surrogate(log_px_z + log_ratio, log_q)
        loss, bound = -surrogate, bound.detach()
    return Terms(loss=loss, bound=bound, log_px_z=log_px_z.mean(0).detach(), kl=(-log_ratio).mean(0).detach())


def _iwae_dreg(model, x: torch.Tensor, q: Distribution, k: int, estimator) -> Terms:
    """:func:`iwae_bound` with the doubly reparameterised gradient (the only estimator it accepts)."""
    from .estimators import DoublyReparameterized, dreg_surrogate
    if not isinstance(estimator, DoublyReparameterized):
        raise ValueError("the IWAE objective chooses its own estimator (pathwise for a Gaussian z, VIMCO for a "
                         "discrete one), or the doubly reparameterised one: train.estimator = 'auto' or 'dreg'")
    prior = model.prior()
    log_px_z = []

    def log_p_xz(z):
        log_px_z.append(model.decode(z).log_prob(x))
        return log_px_z[0] + prior.log_prob(z)

    bound, surrogate, log_w = dreg_surrogate(log_p_xz, q, k)
    return Terms(loss=-surrogate, bound=bound, log_px_z=log_px_z[0].mean(0).detach(),
                 kl=(log_px_z[0].detach() - log_w).mean(0))  # E_q[log q - log p(z)] = E_q[log p(x|z) - log w]


@torch.no_grad()
def log_likelihood(model, x: torch.Tensor, k: int = 5000, sample_chunk: int = 500,
                   q: Distribution | None = None) -> torch.Tensor:
    """Importance-sampled ``log p(x) ~= logsumexp_{i<=K} log w_i - log K`` with ``q(z|x)`` as proposal.

    ``x``: ``(B, D)``; returns ``(B,)``. The K samples are drawn ``sample_chunk`` at a time and
    combined by a log-sum-exp over chunks, so memory is ``O(B * sample_chunk * D)`` whatever K is.
    The estimate is a stochastic lower bound (``L_K``) that converges to log p(x) as K grows.
    ``q``: another proposal with batch shape ``(B,)`` (e.g. :func:`vaekit.evaluate.refine_posterior`'s); any
    proposal gives a lower bound on the same model's log p(x), a closer one a tighter bound.
    """
    q = model.encode(x) if q is None else q
    chunks = []
    remaining = k
    while remaining > 0:
        s = min(sample_chunk, remaining)
        chunks.append(torch.logsumexp(log_weights(model, x, s, q), dim=0))
        remaining -= s
    return torch.logsumexp(torch.stack(chunks), dim=0) - math.log(k)


def exact_log_likelihood(model, x) -> Terms:
    """Maximum likelihood for a model without latent variables (the LSTM language model baseline):
    ``loss = -log p(x)``, the exact ``model.log_prob(x)``; ``bound`` is that log-likelihood and ``kl`` is 0."""
    log_px = model.log_prob(x)
    return Terms(loss=-log_px, bound=log_px.detach(), log_px_z=log_px.detach(), kl=torch.zeros_like(log_px))


OBJECTIVES = {"elbo": elbo, "iwae": iwae_bound, "mle": exact_log_likelihood, "wake-sleep": None, "rws": None}


def objective(name: str, model, x, k: int = 1, beta: float = 1.0, estimator=None, free_bits: float = 0.0,
              capacity: float | None = None, auxiliary=None) -> Terms:
    """Dispatch by name: ``elbo`` (with ``samples=k``), ``iwae`` (with ``k``), ``mle`` (no latent), or the
    two-phase ``wake-sleep`` and ``rws`` (reweighted wake-sleep with ``k`` samples)."""
    if name == "elbo":
        return elbo(model, x, beta=beta, samples=k, estimator=estimator, free_bits=free_bits, capacity=capacity,
                    auxiliary=auxiliary)
    if name == "iwae":
        if beta != 1.0 or free_bits:
            raise ValueError("beta and free bits apply to the ELBO only; the IWAE bound has no separate KL term")
        return iwae_bound(model, x, k, estimator)
    if name == "mle":
        return exact_log_likelihood(model, x)
    if name in ("wake-sleep", "rws"):  # two-phase updates, not the gradient of one bound (vaekit.wake_sleep)
        from .wake_sleep import reweighted_wake_sleep, wake_sleep
        return wake_sleep(model, x) if name == "wake-sleep" else reweighted_wake_sleep(model, x, k)
    raise ValueError(f"unknown objective {name!r}: choose {', '.join(OBJECTIVES)}")
