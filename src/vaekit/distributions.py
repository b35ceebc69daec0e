"""Distributions vaekit adds to ``torch.distributions``, and their KL registrations.

:class:`LogitBernoulli` is ``torch.distributions.Bernoulli`` with a KL computed from the logits. Torch's
closed form works on probabilities and sets the KL to infinity wherever a probability rounds to exactly
0 or 1; in float32 that happens for logits beyond about +-17, which a learned prior over binary units
(a sigmoid belief net's top layer) reaches in training. The true KL there is finite:

    KL(q || p) = sigma(a) (log sigma(a) - log sigma(b)) + sigma(-a) (log sigma(-a) - log sigma(-b))

for q = Bernoulli(sigmoid(a)), p = Bernoulli(sigmoid(b)), with every ``log sigma`` a stable ``logsigmoid``.

:class:`LayerChain` is the joint distribution of a stack of latent layers each drawn given the one before it:
the posterior ``q(z_1|x) q(z_2|z_1) ...`` and the prior ``p(z_L) p(z_{L-1}|z_L) ...`` of a hierarchical VAE
(:class:`vaekit.models.HierarchicalVAE`). No KL between two chains is registered, so the objectives estimate
it by Monte Carlo at the chain's own samples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Distribution, register_kl


class LogitBernoulli(Bernoulli):
    """A Bernoulli distribution whose KL to another :class:`LogitBernoulli` is computed from logits (finite
    for any finite logits). Construct it with ``logits=``. ``sample`` compares uniforms with the probabilities,
    ``1[u < p]`` with ``u ~ U[0, 1)``: the same distribution as ``torch.bernoulli``, drawn about 2.5x faster on a
    CPU (a sigmoid belief net draws every binary layer this way at every step)."""

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            probs = self.probs.expand(shape)
            return (torch.rand(shape, dtype=probs.dtype, device=probs.device) < probs).to(probs.dtype)


@register_kl(LogitBernoulli, LogitBernoulli)
def _kl_logit_bernoulli(q: LogitBernoulli, p: LogitBernoulli) -> torch.Tensor:
    a, b = torch.broadcast_tensors(q.logits, p.logits)
    on = torch.sigmoid(a)
    return on * (F.logsigmoid(a) - F.logsigmoid(b)) + (1 - on) * (F.logsigmoid(-a) - F.logsigmoid(-b))


class LayerChain(Distribution):
    """``r(z) = r_1(s_1) prod_{i>1} r_i(s_i | s_{i-1})``: layers drawn one after another, each from a distribution
    that a network (``steps[i]``) builds from the layer drawn before it.

    ``z`` is the concatenation of the layers in *layer* order, ``[z_1, ..., z_L]`` with ``sizes = (Z_1, ..., Z_L)``
    (event shape ``(sum Z_l,)``), whatever order they are drawn in: ``top_down = False`` draws ``z_1`` first
    (``first``), then ``z_2`` from ``steps[0](z_1)``, ... (an inference network); ``top_down = True`` draws ``z_L``
    first, then ``z_{L-1}`` from ``steps[0](z_L)``, ... (a generative prior). Each step returns a distribution
    with event shape ``(Z,)`` whose batch shape is that of its input's leading dimensions.

    ``rsample`` is pathwise when every layer's distribution is (Gaussians are), so the ELBO and the IWAE bound
    differentiate through the whole chain; binary layers (a deep sigmoid belief net) only ``sample``. ``log_prob``
    sums the layers' conditional log-densities at the given layers. ``mean`` is the *greedy* mean: each layer's
    mean given the mean of the layer before it. For nonlinear steps that is not ``E[z]`` of the upper layers (only
    of the first drawn); it is what reconstructions, active units and latent scatter plots use as a code.
    """

    arg_constraints: dict = {}

    def __init__(self, first: Distribution, steps: Sequence[Callable[[torch.Tensor], Distribution]],
                 sizes: Sequence[int], top_down: bool = False):
        self.first, self.steps, self.sizes, self.top_down = first, tuple(steps), tuple(int(s) for s in sizes), top_down
        if len(self.steps) != len(self.sizes) - 1:
            raise ValueError(f"a chain of {len(self.sizes)} layers takes {len(self.sizes) - 1} steps, "
                             f"got {len(self.steps)}")
        self.order = tuple(reversed(range(len(self.sizes)))) if top_down else tuple(range(len(self.sizes)))
        super().__init__(first.batch_shape, torch.Size([sum(self.sizes)]), validate_args=False)

    def expand(self, batch_shape, _instance=None) -> "LayerChain":
        return LayerChain(self.first.expand(torch.Size(batch_shape)), self.steps, self.sizes, self.top_down)

    def _draw(self, start: torch.Tensor, pick) -> torch.Tensor:
        layers: list[torch.Tensor | None] = [None] * len(self.sizes)
        layers[self.order[0]] = current = start
        for step, index in zip(self.steps, self.order[1:]):
            layers[index] = current = pick(step(current))
        return torch.cat(layers, dim=-1)

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        """Pathwise when the layers are (Gaussian layers are; binary layers are not): judged by the first layer."""
        return self.first.has_rsample

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        """``(*sample_shape, *batch_shape, sum Z_l)``, differentiable with respect to every step's parameters."""
        return self._draw(self.first.rsample(sample_shape), lambda d: d.rsample())

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        """Ancestral sampling, layer after layer (without gradients; binary layers draw 0/1 units)."""
        with torch.no_grad():
            if self.has_rsample:
                return self.rsample(sample_shape)
            return self._draw(self.first.sample(sample_shape), lambda d: d.sample())

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log r_1(s_1) + sum_i log r_i(s_i | s_{i-1})`` at the layers of ``z`` (shape ``(..., sum Z_l)``)."""
        layers = z.split(self.sizes, dim=-1)
        log_p = self.first.log_prob(layers[self.order[0]])
        for step, given, index in zip(self.steps, self.order[:-1], self.order[1:]):
            log_p = log_p + step(layers[given]).log_prob(layers[index])
        return log_p

    @property
    def mean(self) -> torch.Tensor:
        return self._draw(self.first.mean, lambda d: d.mean)

    def stop_gradient(self, stop: Callable[[Distribution], Distribution]) -> "LayerChain":
        """The same chain with every parameter cut from the graph: ``stop`` cuts the first layer's distribution,
        and the steps (modules) run on their parameters detached, so that ``log_prob`` reaches them only through
        ``z`` (what doubly reparameterised gradients need; :func:`vaekit.estimators.stop_gradient`)."""
        from torch.func import functional_call

        def detached(step: torch.nn.Module):
            params = {name: p.detach() for name, p in step.named_parameters()}
            return lambda s: functional_call(step, params, (s,))

        if not all(isinstance(step, torch.nn.Module) for step in self.steps):
            raise ValueError("stop_gradient needs the chain's steps to be modules (their parameters are detached)")
        return LayerChain(stop(self.first), [detached(step) for step in self.steps], self.sizes, self.top_down)
