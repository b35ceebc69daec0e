"""Bias and variance of gradient estimators on a fixed model and batch.

For parameters ``phi`` (normally the encoder's) and a batch ``x``, each estimator gives random draws
``g_1 .. g_n`` of ``grad_phi L(x)``, where ``L`` is the batch-mean ELBO. Against a reference gradient
``g*`` (the exact, enumerated one for small discrete latents; for a Gaussian latent the mean of many
pathwise draws) we report

    bias      = || mean_i g_i - g* || / || g* ||          (relative; sampling noise included, see ``bias_se``)
    variance  = sum_j Var_i(g_ij)                          (trace of the covariance of one draw)
    snr       = || mean_i g_i || / sqrt(variance)

The score function (Williams 1992) is unbiased but its variance grows with the spread of the learning
signal; baselines (moving average, NVIL: Mnih & Gregor 2014) shrink it without adding bias; the
Gumbel-softmax relaxation (Jang et al. 2017) trades a bias that grows with the temperature for a low
variance; the pathwise gradient of a Gaussian latent (Kingma & Welling 2014) is typically orders of
magnitude less variable than the score function on the same model (Mohamed et al. 2020, Sec. 5).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .objectives import elbo, iwae_bound


@dataclass
class GradientStats:
    name: str
    bias: float        # || mean g - g* || / || g* ||
    bias_se: float     # the bias an unbiased estimator shows from sampling noise alone: sqrt(variance / n) / || g* ||
    variance: float    # trace of the covariance of one draw
    snr: float         # || mean g || / sqrt(variance)
    draws: int

    def as_dict(self) -> dict:
        return asdict(self)


def gradient_draws(model, x: torch.Tensor, estimator: nn.Module | None, params: list[torch.Tensor],
                   n: int, samples: int = 1, objective: str = "elbo") -> torch.Tensor:
    """``n`` independent draws of ``grad_params`` of the batch-mean ELBO: shape ``(n, P)``; each draw averages
    ``samples`` draws of z per example (a score function with the leave-one-out baseline needs at least 2).
    With ``objective = "iwae"`` the bound is ``L_k`` with ``k = samples`` (the estimator: None, or
    :class:`~vaekit.estimators.DoublyReparameterized`).

    ``estimator=None`` uses the model's default (pathwise when ``q`` can ``rsample``). The estimator is
    put in eval mode, so running baselines stay fixed while drawing (each draw is then unbiased).
    """
    if estimator is not None:
        estimator.eval()
    out = []
    for _ in range(n):
        if objective == "iwae":
            loss = iwae_bound(model, x, samples, estimator).loss.mean()
        else:
            loss = elbo(model, x, estimator=estimator, samples=samples).loss.mean()
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        out.append(torch.cat([(-g if g is not None else torch.zeros_like(p)).flatten()
                              for g, p in zip(grads, params)]))
    return torch.stack(out)


def warm_up_baseline(model, x: torch.Tensor, estimator: nn.Module, steps: int = 200, lr: float = 1e-2) -> None:
    """Fit a score-function estimator's baseline on the fixed batch (the model itself is not changed):
    a moving average settles, an NVIL network minimises its own squared-error loss."""
    estimator.train()
    params = [p for p in estimator.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=lr) if params else None
    for _ in range(steps):
        estimate_loss = elbo(model, x, estimator=estimator).loss.mean()
        if optimizer is not None:
            optimizer.zero_grad()
            grads = torch.autograd.grad(estimate_loss, params)
            for p, g in zip(params, grads):
                p.grad = g
            optimizer.step()


def summarise(name: str, draws: torch.Tensor, reference: torch.Tensor) -> GradientStats:
    draws = draws.double()
    reference = reference.double()
    mean = draws.mean(0)
    variance = draws.var(0).sum().item() if len(draws) > 1 else 0.0
    scale = reference.norm().item()
    return GradientStats(name=name, bias=(mean - reference).norm().item() / scale,
                         bias_se=math.sqrt(variance / len(draws)) / scale, variance=variance,
                         snr=mean.norm().item() / math.sqrt(variance) if variance > 0 else math.inf,
                         draws=len(draws))
