"""Stacked latent layers: the hierarchical VAE (Burda et al. 2016, Sec. 5) and the deep sigmoid belief net.

    prior    p(z)   = p(z_L) p(z_{L-1} | z_L) ... p(z_1 | z_2)                          :meth:`HierarchicalVAE.prior`
    encoder  q(z|x) = q(z_1 | x) q(z_2 | z_1) ... q(z_L | z_{L-1})                     :meth:`HierarchicalVAE.encode`
    decoder  p(x|z) = p(x | z_1)                                                        :meth:`HierarchicalVAE.decode`

**Gaussian layers** (``model.latent_type = gaussian``): every conditional is a diagonal Gaussian whose mean and
log-variance an MLP computes from the layer it is given, ``p(z_L) = N(0, I)``. Burda et al.'s MNIST architecture:
x -> 200 -> 200 -> z_1 (100) -> 100 -> 100 -> z_2 (50), the generative network mirrored (``model.latent = 100``,
``model.hierarchy = [50]``, ``model.hidden = [200, 200]``, ``model.hierarchy_hidden = [100, 100]``;
``recipes/burda_vae_2layer.toml``). Their Table 1 reports test NLLs of 85.33 (VAE) and 83.89 (IWAE, k = 5) nats
for it, against 86.76 and 85.54 with one stochastic layer.

**Binary layers** (``model.latent_type = bernoulli``): every conditional is a factorised Bernoulli,
``p(z_l = 1 | z_{l+1}) = sigmoid(W z_{l+1} + b)``, and ``p(z_L)`` has learned biases (``model.learn_prior``) or is
Bernoulli(1/2). With no hidden layers (``model.hidden = []``, ``model.hierarchy_hidden = []``) every map is linear:
the deep sigmoid belief net with its Helmholtz-machine recognition network of Mnih & Gregor (2014), Bornschein &
Bengio (2015) and Mnih & Rezende (2016), e.g. SBN 200-200-200 (``recipes/sbn200x3.toml``). Binary units have no
pathwise gradient: such a stack trains with wake-sleep or reweighted wake-sleep (:mod:`vaekit.wake_sleep`), with
the IWAE bound and VIMCO's leave-one-out baselines, or with the ELBO and a score-function estimator (NVIL), all of
which only draw from and score the chains.

``z`` is the concatenation ``[z_1, ..., z_L]`` and prior and posterior are :class:`vaekit.distributions.LayerChain`
objects, so the ELBO, the IWAE bound and the importance-sampled NLL of :mod:`vaekit.objectives` apply unchanged:
``log p(x, z) - log q(z|x)`` at the chain's own samples. The KL term has no closed form and is estimated by
Monte Carlo at the sampled z (as Burda et al. do for every model they train).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Distribution

from ..distributions import LayerChain
from ..nets import LatentSpec, MLPDecoder, MLPEncoder
from ..nets.mlp import mlp
from .vae import VAE


class ConditionalLayer(nn.Module):
    """One layer given another: ``N(mu(s), diag sigma^2(s))`` or ``prod_j Bernoulli(sigmoid(l_j(s)))`` over
    ``latent.size`` units given a layer ``s`` of ``given`` units, through hidden layers ``hidden`` (none: a linear
    map): ``(..., given)`` -> batch shape ``(...)``, event shape ``(latent.size,)``."""

    def __init__(self, given: int, hidden: Sequence[int], latent: LatentSpec, activation: str):
        super().__init__()
        self.latent = latent
        self.net = mlp([given, *hidden, latent.params_dim], activation)

    def forward(self, s: torch.Tensor) -> Distribution:
        return self.latent.posterior(self.net(s))


class HierarchicalVAE(VAE):
    """Stochastic layers of ``sizes = (Z_1, ..., Z_L)`` units (``Z_1`` next to the data), Gaussian or (``kind =
    'bernoulli'``) binary, ``hidden`` deterministic layers between x and ``z_1`` (mirrored in the decoder) and
    ``layer_hidden`` between two stochastic layers (mirrored in the prior). ``z`` has ``sum Z_l`` dimensions, layer
    by layer. ``learn_prior`` (binary units) learns the top layer's biases."""

    hierarchical = True

    def __init__(self, data_dim: int, hidden: Sequence[int], sizes: Sequence[int], layer_hidden: Sequence[int],
                 activation: str = "tanh", likelihood: str = "bernoulli", kind: str = "gaussian",
                 learn_prior: bool = False):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"a hierarchical VAE needs two or more latent layers of at least one unit, got {sizes}")
        if kind not in ("gaussian", "bernoulli"):
            raise ValueError(f"latent layers are gaussian or bernoulli, got {kind!r}")
        if learn_prior and kind == "gaussian":
            raise ValueError("learn_prior learns the top biases of binary layers; a Gaussian top layer is N(0, I)")
        layer = lambda size: LatentSpec(kind, size)  # noqa: E731
        super().__init__(MLPEncoder(data_dim, hidden, layer(sizes[0]), activation),
                         MLPDecoder(layer(sizes[0]), tuple(reversed(hidden)), data_dim, activation, likelihood),
                         LatentSpec(kind, sum(sizes)))
        self.sizes = sizes
        self.up = nn.ModuleList(ConditionalLayer(a, layer_hidden, layer(b), activation)        # q(z_{l+1} | z_l)
                                for a, b in zip(sizes[:-1], sizes[1:]))
        self.down = nn.ModuleList(ConditionalLayer(b, tuple(reversed(layer_hidden)), layer(a), activation)
                                  for a, b in zip(sizes[:-1], sizes[1:]))                     # p(z_l | z_{l+1})
        if learn_prior:
            self.prior_logits = nn.Parameter(torch.zeros(sizes[-1]))

    def prior(self) -> LayerChain:
        """``p(z_L) prod_l p(z_l | z_{l+1})``, drawn from the top: batch shape ``()``, event ``(sum Z_l,)``."""
        top_layer = LatentSpec(self.latent.kind, self.sizes[-1])
        top = top_layer.prior(self._anchor) if self.prior_logits is None else top_layer.posterior(self.prior_logits)
        return LayerChain(top, tuple(reversed(self.down)), self.sizes, top_down=True)

    def encode(self, x: torch.Tensor) -> LayerChain:
        """``q(z_1|x) prod_l q(z_{l+1} | z_l)`` for ``x`` ``(B, D)``: batch shape ``(B,)``, event ``(sum Z_l,)``."""
        return LayerChain(self.encoder(x), tuple(self.up), self.sizes)

    def decode(self, z: torch.Tensor) -> Distribution:
        """``p(x | z_1)`` for ``z`` ``(..., sum Z_l)``: only the layer next to the data enters."""
        return self.decoder(z[..., :self.sizes[0]])
