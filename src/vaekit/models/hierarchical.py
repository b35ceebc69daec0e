"""A VAE with a stack of Gaussian latent layers (Burda et al. 2016, Sec. 5, the two-stochastic-layer models).

    prior    p(z)   = p(z_L) p(z_{L-1} | z_L) ... p(z_1 | z_2),  p(z_L) = N(0, I)      :meth:`HierarchicalVAE.prior`
    encoder  q(z|x) = q(z_1 | x) q(z_2 | z_1) ... q(z_L | z_{L-1})                     :meth:`HierarchicalVAE.encode`
    decoder  p(x|z) = p(x | z_1)                                                        :meth:`HierarchicalVAE.decode`

Every conditional is a diagonal Gaussian whose mean and log-variance an MLP computes from the layer it is
given. Burda et al.'s MNIST architecture: x -> 200 -> 200 -> z_1 (100) -> 100 -> 100 -> z_2 (50), the
generative network mirrored (``model.latent = 100``, ``model.hierarchy = [50]``, ``model.hidden = [200, 200]``,
``model.hierarchy_hidden = [100, 100]``; ``recipes/burda_vae_2layer.toml``). Their Table 1 reports test NLLs
of 85.33 (VAE) and 83.89 (IWAE, k = 5) nats for it, against 86.76 and 85.54 with one stochastic layer.

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
from ..nets.heads import diagonal_gaussian
from ..nets.mlp import mlp
from .vae import VAE


class ConditionalGaussian(nn.Module):
    """``N(mu(s), diag sigma^2(s))`` over ``size`` dimensions given a layer ``s`` of ``given`` dimensions, through
    hidden layers ``hidden``: ``(..., given)`` -> batch shape ``(...)``, event shape ``(size,)``."""

    def __init__(self, given: int, hidden: Sequence[int], size: int, activation: str):
        super().__init__()
        self.net = mlp([given, *hidden, 2 * size], activation)

    def forward(self, s: torch.Tensor) -> Distribution:
        return diagonal_gaussian(self.net(s))


class HierarchicalVAE(VAE):
    """Stochastic layers of ``sizes = (Z_1, ..., Z_L)`` Gaussian units (``Z_1`` next to the data), ``hidden``
    deterministic layers between x and ``z_1`` (mirrored in the decoder) and ``layer_hidden`` between two
    stochastic layers (mirrored in the prior). ``z`` has ``sum Z_l`` dimensions, layer by layer."""

    hierarchical = True

    def __init__(self, data_dim: int, hidden: Sequence[int], sizes: Sequence[int], layer_hidden: Sequence[int],
                 activation: str = "tanh", likelihood: str = "bernoulli"):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"a hierarchical VAE needs two or more latent layers of at least one unit, got {sizes}")
        super().__init__(MLPEncoder(data_dim, hidden, sizes[0], activation),
                         MLPDecoder(sizes[0], tuple(reversed(hidden)), data_dim, activation, likelihood),
                         LatentSpec("gaussian", sum(sizes)))
        self.sizes = sizes
        self.up = nn.ModuleList(ConditionalGaussian(a, layer_hidden, b, activation)        # q(z_{l+1} | z_l)
                                for a, b in zip(sizes[:-1], sizes[1:]))
        self.down = nn.ModuleList(ConditionalGaussian(b, tuple(reversed(layer_hidden)), a, activation)  # p(z_l | z_{l+1})
                                  for a, b in zip(sizes[:-1], sizes[1:]))

    def prior(self) -> LayerChain:
        """``p(z_L) prod_l p(z_l | z_{l+1})``, drawn from the top: batch shape ``()``, event ``(sum Z_l,)``."""
        top = LatentSpec("gaussian", self.sizes[-1]).prior(self._anchor)
        return LayerChain(top, tuple(reversed(self.down)), self.sizes, top_down=True)

    def encode(self, x: torch.Tensor) -> LayerChain:
        """``q(z_1|x) prod_l q(z_{l+1} | z_l)`` for ``x`` ``(B, D)``: batch shape ``(B,)``, event ``(sum Z_l,)``."""
        return LayerChain(self.encoder(x), tuple(self.up), self.sizes)

    def decode(self, z: torch.Tensor) -> Distribution:
        """``p(x | z_1)`` for ``z`` ``(..., sum Z_l)``: only the layer next to the data enters."""
        return self.decoder(z[..., :self.sizes[0]])
