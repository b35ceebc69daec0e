"""Wake-sleep (Hinton, Dayan, Frey & Neal 1995) and reweighted wake-sleep (Bornschein & Bengio 2015).

Both train a generative model ``p(x, h) = p(h) p(x|h)`` and a recognition model ``q(h|x)`` with two
separate objectives, neither of which is the gradient of one bound, and neither of which needs ``h`` to be
reparameterisable (the classic use: sigmoid belief networks / Helmholtz machines with binary units).

* **Wake phase** -- ``h ~ q(h|x)`` for a data ``x``; the *generative* parameters ascend ``log p(x, h)``.
* **Sleep phase** -- a dream ``(h, x) ~ p(h) p(x|h)``; the *recognition* parameters ascend ``log q(h|x)``
  (the wrong KL, ``KL(p || q)``, averaged over the model's own dreams).
* **Reweighted wake-sleep** -- ``K`` samples ``h_k ~ q(h|x)`` with self-normalised importance weights
  ``w_k = p(x, h_k) / q(h_k|x) / sum_j (...)``; the generative parameters ascend ``sum_k w_k log p(x, h_k)``
  (an estimate of ``grad log p(x)`` whose bias vanishes as K grows), and the recognition parameters ascend
  ``sum_k w_k log q(h_k|x)`` (the wake-phase q update; ``sleep=True`` adds the sleep-phase one too).

Each function returns one loss whose gradient *is* the update of every phase at once: samples are detached,
so a term only reaches the parameters of its own phase (the tests check exactly this). ``bound`` reports
the single-sample ELBO (wake-sleep) or the K-sample importance-weighted bound (RWS) for monitoring.
"""

from __future__ import annotations

import math

import torch

from .objectives import Terms


def wake_phase_loss(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``-log p(x, h)`` at ``h ~ q(h|x)`` (detached): touches only p. Also returns ``log q(h|x)`` (detached)
    and ``log p(x|h)`` for the reported bound."""
    q = model.encode(x)
    with torch.no_grad():
        h = q.sample()
        log_q = q.log_prob(h)
    log_px_h = model.decode(h).log_prob(x)
    log_joint = log_px_h + model.prior().log_prob(h)
    return -log_joint, log_q, log_px_h


def sleep_phase_loss(model, n: int) -> torch.Tensor:
    """``-log q(h|x)`` at a dream ``(h, x) ~ p`` (detached): touches only q. Shape ``(n,)``."""
    with torch.no_grad():
        h = model.prior().sample((n,))
        x = model.decode(h).sample()
    return -model.encode(x).log_prob(h)


def wake_sleep(model, x: torch.Tensor) -> Terms:
    """One wake and one sleep phase on a batch ``x`` ``(B, D)`` (as many dreams as data)."""
    wake, log_q, log_px_h = wake_phase_loss(model, x)
    sleep = sleep_phase_loss(model, len(x))
    bound = (-wake - log_q).detach()  # log p(x, h) - log q(h|x): a one-sample ELBO
    return Terms(loss=wake + sleep, bound=bound, log_px_z=log_px_h.detach(), kl=(log_px_h.detach() - bound))


def reweighted_wake_sleep(model, x: torch.Tensor, k: int = 5, sleep: bool = False) -> Terms:
    """Bornschein & Bengio (2015), Sec. 3: K importance samples per example; wake updates of p and q."""
    q = model.encode(x)
    with torch.no_grad():
        h = q.sample((k,))                                          # (K, B, ...)
    log_q = q.log_prob(h)                                           # (K, B), differentiable in q
    log_px_h = model.decode(h).log_prob(x)
    log_joint = log_px_h + model.prior().log_prob(h)                # (K, B), differentiable in p
    log_w = (log_joint - log_q).detach()
    weights = torch.softmax(log_w, 0)
    loss = -(weights * (log_joint + log_q)).sum(0)
    if sleep:
        loss = loss + sleep_phase_loss(model, len(x))
    bound = torch.logsumexp(log_w, 0) - math.log(k)
    return Terms(loss=loss, bound=bound, log_px_z=(weights * log_px_h.detach()).sum(0),
                 kl=((weights * log_px_h.detach()).sum(0) - bound))
