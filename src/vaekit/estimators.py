"""Gradient estimators for ``grad E_{q(z|x)}[f(z)]``, chosen from the posterior and a flag.

Every estimator is called as ``estimator(q, f, x, samples=1) -> Estimate`` where ``f(z)`` returns a
per-example value ``(B,)`` (``(S, B)`` for ``S = samples`` draws, averaged by the estimator) (for the ELBO,
``log p(x|z)``). ``Estimate.value`` is ``f(z)`` at the sample (what is reported) and ``Estimate.surrogate``
is a per-example tensor whose *gradient* is the estimator (what is differentiated), as Pyro separates
``loss`` from ``differentiable_loss``.

* :class:`Pathwise` -- reparameterisation, ``z = g(eps, phi)`` (Kingma & Welling 2014).
* :class:`ScoreFunction` -- REINFORCE (Williams 1992): ``(f(z) - b) grad log q(z|x)`` with a baseline
  ``b`` that does not depend on z: none, :class:`MovingAverageBaseline`, or the input-dependent
  :class:`NVILBaseline` with variance normalisation (Mnih & Gregor 2014); with ``samples = S > 1`` draws
  per example also the :class:`LeaveOneOutBaseline` (each draw's baseline is the mean signal of the other
  ``S - 1``: Mnih & Rezende 2016, Sec. 3; Kool et al. 2019).
* :class:`GumbelSoftmax` -- the Concrete / Gumbel-softmax relaxation (Jang et al. 2017; Maddison et al.
  2017), and its straight-through variant (one-hot forward values, relaxed gradients).
* :class:`Enumerate` -- the exact expectation ``sum_z q(z|x) f(z)`` for small discrete latents.
* :func:`vimco_surrogate` -- the multi-sample leave-one-out baseline of Mnih & Rezende (2016).
* :class:`DoublyReparameterized` -- the IWAE bound's inference-network gradient without its score-function
  part (DReG; Tucker et al. 2019), whose signal-to-noise ratio does not fall with k as the standard one's does
  (like 1/sqrt(k): Rainforth et al. 2018); :func:`dreg_surrogate` computes it.

Discrete latents are ``Independent(OneHotCategorical(logits ``(B, L, K)``), 1)`` (L variables of K
categories, one-hot samples) or ``Independent(Bernoulli(logits ``(B, L)``), 1)``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.distributions import (Bernoulli, Distribution, Independent, MultivariateNormal, Normal, OneHotCategorical,
                                 RelaxedBernoulli, RelaxedOneHotCategorical)

from .nets.heads import full_precision

Fn = Callable[[torch.Tensor], torch.Tensor]


def _mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """The mean of a statistic over data-parallel ranks (itself in a single process), so that running
    baselines stay identical on every rank."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        value = value.clone()
        dist.all_reduce(value)
        value /= dist.get_world_size()
    return value


@dataclass
class Estimate:
    value: torch.Tensor      # (B,) f(z) at the sample(s), or the exact expectation
    surrogate: torch.Tensor  # (B,) differentiate this; its value is not meaningful
    z: torch.Tensor          # the sample the decoder saw
    aux_loss: torch.Tensor | None = None  # loss of a learned baseline (minimise it alongside)


def _one_draw_only(estimator: nn.Module, samples: int) -> None:
    if samples != 1:
        raise ValueError(f"{type(estimator).__name__} takes one draw of z per example (samples > 1, train.k with "
                         "the ELBO, is for the pathwise and score-function estimators): set train.k = 1")


class Pathwise(nn.Module):
    """``z = q.rsample()``: gradients flow through the sample itself; with ``samples = S > 1`` the mean over
    ``S`` draws (``z`` of shape ``(S, B, ...)``)."""

    def forward(self, q: Distribution, f: Fn, x: torch.Tensor, samples: int = 1) -> Estimate:
        z = q.rsample((samples,)) if samples > 1 else q.rsample()
        value = f(z)
        if samples > 1:
            value = value.mean(0)
        return Estimate(value, value, z)


class MovingAverageBaseline(nn.Module):
    """``b = `` an exponential moving average of the batch-mean learning signal (a constant in z)."""

    def __init__(self, decay: float = 0.9):
        super().__init__()
        self.decay = decay
        self.register_buffer("value", torch.zeros(()))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    def forward(self, signal: torch.Tensor, x: torch.Tensor):
        b = self.value.expand_as(signal).clone()
        if self.training:
            with torch.no_grad():
                mean = _mean_over_ranks(signal.mean())
                new = torch.where(self.initialised, self.decay * self.value + (1 - self.decay) * mean, mean)
                self.value.copy_(new)
                self.initialised.fill_(True)
        return signal - b, None


class NVILBaseline(nn.Module):
    """Neural variational inference and learning (Mnih & Gregor 2014, Sec. 3.2 - 3.3).

    The centred signal is ``(l - c - b_psi(x)) / max(1, sqrt(v))`` with ``c`` a moving average of
    ``l - b_psi(x)``, ``v`` a moving average of its variance, and ``b_psi`` an MLP trained to minimise
    ``E[(l - c - b_psi(x))^2]`` (returned as the auxiliary loss). The division by ``max(1, sqrt(v))`` is an
    adaptive step size for the *whole* encoder (Mnih & Gregor divide the learning signal, which there holds
    the KL too): :class:`ScoreFunction` applies it to every gradient that reaches ``q``'s parameters, so an
    analytic KL term is scaled alike instead of overpowering a shrunken reconstruction signal (which
    collapses the posterior). ``normalise=False`` leaves the scale at 1: an unbiased estimate (diagnostics).
    """

    def __init__(self, data_dim: int, hidden: int = 100, decay: float = 0.9, normalise: bool = True):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(data_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.decay = decay
        self.normalise = normalise
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("var", torch.ones(()))

    def forward(self, signal: torch.Tensor, x: torch.Tensor):
        signal = signal.detach()
        learned = full_precision(self.net(x)).squeeze(-1)
        centred = signal - learned.detach()
        if self.training:
            with torch.no_grad():
                self.mean.mul_(self.decay).add_((1 - self.decay) * _mean_over_ranks(centred.mean()))
                spread = _mean_over_ranks((centred - self.mean).pow(2).mean())
                self.var.mul_(self.decay).add_((1 - self.decay) * spread)
        residual = signal - self.mean - learned
        return centred - self.mean, residual.pow(2)

    def encoder_scale(self) -> torch.Tensor | None:
        """The divisor of the encoder's gradients, ``max(1, sqrt(v))``, or None without normalisation."""
        return self.var.sqrt().clamp(min=1.0) if self.normalise else None


class LeaveOneOutBaseline(nn.Module):
    """For ``S`` draws ``z_1..z_S ~ q(z|x)`` per example, draw ``s``'s baseline is the mean learning signal of the
    other draws, ``b_s = (sum_{t != s} f(z_t)) / (S - 1)``: independent of ``z_s``, so the estimator stays unbiased,
    and free (no parameters, no running state). The centred signal is ``S / (S - 1) * (f(z_s) - mean_t f(z_t))``.
    Mnih & Rezende (2016, Sec. 3) for the ELBO's per-sample signals; Kool et al. (2019), "Buy 4 REINFORCE samples,
    get a baseline for free!"."""

    def forward(self, signal: torch.Tensor, x: torch.Tensor):
        if signal.dim() < 2 or signal.shape[0] < 2:
            raise ValueError("the leave-one-out baseline needs at least 2 draws per example: set train.k >= 2")
        s = signal.shape[0]
        return signal - (signal.sum(0, keepdim=True) - signal) / (s - 1), None


class ScoreFunction(nn.Module):
    """REINFORCE: ``surrogate = f(z) + stop_grad(f(z) - b) * log q(z|x)``, ``z ~ q`` not differentiated.

    The gradient of the surrogate is ``grad f(z)`` (the decoder's own parameters) plus
    ``(f(z) - b) grad log q(z|x)`` (the encoder's), an unbiased estimator of ``grad E_q[f]`` for any
    ``b`` independent of z. With ``samples = S > 1`` it averages ``S`` such terms from independent draws
    (``value`` and ``surrogate`` are their means, ``z`` has shape ``(S, B, ...)``), which a
    :class:`LeaveOneOutBaseline` needs.
    """

    def __init__(self, baseline: nn.Module | None = None):
        super().__init__()
        self.baseline = baseline

    def forward(self, q: Distribution, f: Fn, x: torch.Tensor, samples: int = 1) -> Estimate:
        z = q.sample((samples,)) if samples > 1 else q.sample()
        value = f(z)
        aux = None
        if self.baseline is None:
            signal = value.detach()
        else:
            signal, aux = self.baseline(value.detach(), x)
        log_q = q.log_prob(z)
        scale = getattr(self.baseline, "encoder_scale", lambda: None)()
        if scale is not None and torch.is_grad_enabled() and not _scale_gradients(q, 1.0 / scale.detach()):
            if log_q.requires_grad:  # a chain of layers: scale the score term itself (the signal, as Mnih & Gregor)
                factor = 1.0 / scale.detach()
                log_q.register_hook(lambda grad: grad * factor)
        surrogate = value + signal.detach() * log_q
        if samples > 1:
            value, surrogate = value.mean(0), surrogate.mean(0)
            aux = None if aux is None else aux.mean(0)
        return Estimate(value, surrogate, z, aux)


def _scale_gradients(q: Distribution, factor: torch.Tensor) -> bool:
    """Multiply every gradient that flows back into ``q``'s parameter tensors by ``factor``; False (nothing done)
    for a posterior without such tensors (a chain of layers computes them anew in each ``log_prob``)."""
    base = q.base_dist if isinstance(q, Independent) else q
    names = ("logits",) if isinstance(base, (OneHotCategorical, Bernoulli)) else ("loc", "scale")
    if not all(hasattr(base, name) for name in names):
        return False
    for name in names:  # the tensors every log-probability, sample score and KL of ``q`` is computed from
        tensor = getattr(base, name)
        if tensor.requires_grad:
            tensor.register_hook(lambda grad: grad * factor)
    return True


def relax(q: Distribution, temperature: float | torch.Tensor) -> Distribution:
    """The Concrete relaxation of a one-hot categorical or Bernoulli posterior, at ``temperature``."""
    base, dims = (q.base_dist, q.reinterpreted_batch_ndims) if isinstance(q, Independent) else (q, 0)
    temperature = torch.as_tensor(temperature, dtype=base.logits.dtype, device=base.logits.device)
    if isinstance(base, OneHotCategorical):
        relaxed = RelaxedOneHotCategorical(temperature, logits=base.logits)
    elif isinstance(base, Bernoulli):
        relaxed = RelaxedBernoulli(temperature, logits=base.logits)
    else:
        raise TypeError(f"cannot relax {type(base).__name__}: Gumbel-softmax needs a OneHotCategorical "
                        "or Bernoulli posterior")
    return Independent(relaxed, dims) if dims else relaxed


def straight_through(soft: torch.Tensor, one_hot: bool = True) -> torch.Tensor:
    """Forward: the hard sample (one-hot argmax, or rounding for Bernoulli); backward: the soft gradient."""
    if one_hot:
        hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True), 1.0)
    else:
        hard = (soft > 0.5).to(soft.dtype)
    return hard - soft.detach() + soft


class GumbelSoftmax(nn.Module):
    """``z = softmax((logits + g) / tau)``, ``g ~ Gumbel(0, 1)``, differentiated pathwise; biased for tau > 0.

    With ``hard=True`` (straight-through Gumbel), the decoder sees the one-hot argmax while gradients
    flow through the relaxed sample. ``temperature`` is set by the training policy (see
    :func:`vaekit.schedules.gumbel_temperature`).
    """

    def __init__(self, temperature: float = 1.0, hard: bool = False):
        super().__init__()
        self.temperature = temperature
        self.hard = hard

    def forward(self, q: Distribution, f: Fn, x: torch.Tensor, samples: int = 1) -> Estimate:
        _one_draw_only(self, samples)
        relaxed = relax(q, self.temperature)
        soft = relaxed.rsample()
        base = q.base_dist if isinstance(q, Independent) else q
        z = straight_through(soft, one_hot=isinstance(base, OneHotCategorical)) if self.hard else soft
        value = f(z)
        return Estimate(value, value, z)


def enumerate_support(q: Distribution, limit: int = 1 << 16) -> torch.Tensor:
    """Every joint value of a factorised discrete ``q``: shape ``(S, *batch, *event)`` with ``S = K^L``
    (``S = K`` for a single one-hot categorical)."""
    base, dims = (q.base_dist, q.reinterpreted_batch_ndims) if isinstance(q, Independent) else (q, 0)
    if isinstance(base, OneHotCategorical) and dims == 0:  # one variable (e.g. M2's class label)
        *batch, K = base.logits.shape
        values = torch.eye(K, dtype=base.logits.dtype, device=base.logits.device)
        return values.reshape(K, *[1] * len(batch), K).expand(K, *batch, K)
    if isinstance(base, OneHotCategorical):
        *batch, L, K = base.logits.shape
        if dims != 1:
            raise ValueError("enumeration expects OneHotCategorical(logits (B, K)) or "
                             "Independent(OneHotCategorical(logits (B, L, K)), 1)")
        values = torch.eye(K, dtype=base.logits.dtype, device=base.logits.device)
    elif isinstance(base, Bernoulli):
        *batch, L = base.logits.shape
        K = 2
        values = torch.tensor([0.0, 1.0], dtype=base.logits.dtype, device=base.logits.device)
    else:
        raise TypeError(f"cannot enumerate {type(base).__name__}")
    if K ** L > limit:
        raise ValueError(f"{K}^{L} = {K ** L} joint values exceed the enumeration limit {limit}; "
                         "use a sampling estimator")
    combos = torch.tensor(list(itertools.product(range(K), repeat=L)), device=values.device)  # (S, L)
    joint = values[combos]  # (S, L, K) or (S, L)
    shape = (joint.shape[0], *[1] * len(batch), *joint.shape[1:])
    return joint.reshape(shape).expand(joint.shape[0], *batch, *joint.shape[1:])


class Enumerate(nn.Module):
    """The exact ``E_q[f(z)] = sum_z q(z|x) f(z)`` (value and gradient), for small discrete latents."""

    def __init__(self, limit: int = 1 << 16):
        super().__init__()
        self.limit = limit

    def forward(self, q: Distribution, f: Fn, x: torch.Tensor, samples: int = 1) -> Estimate:
        _one_draw_only(self, samples)
        z = enumerate_support(q, self.limit)        # (S, B, ...)
        expectation = (q.log_prob(z).exp() * f(z)).sum(0)
        return Estimate(expectation, expectation, z)


def vimco_surrogate(log_w: torch.Tensor, log_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """VIMCO (Mnih & Rezende 2016): the k-sample bound and a surrogate for discrete latents.

    ``log_w``: ``(k, B)`` log importance weights ``log p(x, z_i) - log q(z_i|x)`` (differentiable in
    both models), ``log_q``: ``(k, B)`` ``log q(z_i|x)``. Each sample's learning signal is
    ``L_k - L_k^{-i}``, where ``L_k^{-i}`` replaces ``log w_i`` by the mean of the other log weights
    (the geometric mean of the other weights). Returns ``(bound, surrogate)``, each ``(B,)``.
    """
    k = log_w.shape[0]
    if k < 2:
        raise ValueError("VIMCO needs at least 2 samples")
    bound = torch.logsumexp(log_w, 0) - math.log(k)
    detached = log_w.detach()
    others_mean = (detached.sum(0, keepdim=True) - detached) / (k - 1)       # (k, B)
    loo = []
    for i in range(k):
        replaced = detached.clone()
        replaced[i] = others_mean[i]
        loo.append(torch.logsumexp(replaced, 0) - math.log(k))
    signal = bound.detach() - torch.stack(loo)                             # (k, B)
    return bound, bound + (signal * log_q).sum(0)


ESTIMATORS = ("auto", "pathwise", "score", "gumbel", "st-gumbel", "exact", "dreg")


class DoublyReparameterized(nn.Module):
    """Marks the IWAE bound's doubly reparameterised gradient (Tucker et al. 2019): :func:`vaekit.objectives.iwae_bound`
    then differentiates :func:`dreg_surrogate` instead of the bound. It has no state; with ``k = 1`` it is the
    "sticking the landing" gradient of the ELBO (Roeder et al. 2017)."""


def stop_gradient(q: Distribution) -> Distribution:
    """``q`` with its parameters cut from the graph: ``log q(z)`` then reaches the encoder only through ``z``.
    For the Gaussians whose parameters are their location and scale (``Independent(Normal)``,
    ``MultivariateNormal``) and chains of them (:class:`vaekit.distributions.LayerChain`, a hierarchy's q)."""
    from .distributions import LayerChain
    if isinstance(q, LayerChain):
        return q.stop_gradient(stop_gradient)
    if isinstance(q, Independent) and type(q.base_dist) is Normal:
        base = Normal(q.base_dist.loc.detach(), q.base_dist.scale.detach(), validate_args=False)
        return Independent(base, q.reinterpreted_batch_ndims, validate_args=False)
    if type(q) is MultivariateNormal:
        return MultivariateNormal(q.loc.detach(), scale_tril=q.scale_tril.detach(), validate_args=False)
    raise ValueError(f"the doubly reparameterised gradient needs a Gaussian q(z|x) given by its location and scale, "
                     f"not {type(q).__name__} (a flow): use train.estimator = 'auto'")


def dreg_surrogate(log_p_xz: Callable[[torch.Tensor], torch.Tensor], q: Distribution, k: int
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The IWAE bound ``L_k`` and a surrogate whose gradient is DReG (Tucker et al. 2019, eq. 7).

    With ``z_i = g(eps_i, phi)`` and ``log w_i = log p(x, z_i) - log q(z_i|x)``, the normalised weights
    ``w~_i = w_i / sum_j w_j`` (held constant) give the generative network ``sum_i w~_i grad_theta log w_i`` (the
    IWAE gradient itself) and the inference network ``sum_i w~_i^2 (d log w_i / d z_i) (d z_i / d phi)``, where
    ``log q`` is differentiated through ``z`` only (the score term ``grad_phi log q_phi(z)``, whose expectation is
    zero, is dropped). Both come from one surrogate ``sum_i w~_i log w_i`` with ``q``'s parameters stopped and a
    hook that scales the gradient arriving at ``z_i`` by ``w~_i``. Returns ``(bound, surrogate)``, each ``(B,)``,
    and the log-weights ``(k, B)`` (detached).
    """
    z = q.rsample((k,))                                          # (k, B, Z)
    log_w = log_p_xz(z) - stop_gradient(q).log_prob(z)          # (k, B)
    weights = torch.softmax(log_w.detach(), dim=0)
    if z.requires_grad:
        z.register_hook(lambda grad: grad * weights.unsqueeze(-1).to(grad.dtype))
    bound = torch.logsumexp(log_w.detach(), dim=0) - math.log(k)
    return bound, (weights * log_w).sum(0), log_w.detach()


def build_estimator(config, data_dim: int) -> nn.Module | None:
    """The estimator a :class:`vaekit.config.TrainConfig` names (None: choose from the posterior)."""
    name = config.estimator
    if name == "auto":
        return None if config.baseline == "none" else ScoreFunction(_baseline(config.baseline, data_dim))
    if name == "pathwise":
        return Pathwise()
    if name == "score":
        return ScoreFunction(_baseline(config.baseline, data_dim))
    if name in ("gumbel", "st-gumbel"):
        return GumbelSoftmax(config.temperature, hard=name == "st-gumbel")
    if name == "exact":
        return Enumerate()
    if name == "dreg":
        return DoublyReparameterized()
    raise ValueError(f"unknown estimator {name!r}: choose from {', '.join(ESTIMATORS)}")


def _baseline(name: str, data_dim: int) -> nn.Module | None:
    return {"none": lambda: None, "moving-average": MovingAverageBaseline, "loo": LeaveOneOutBaseline,
            "nvil": lambda: NVILBaseline(data_dim)}[name]()
