"""The Gaussian VAE (Kingma & Welling 2014) as three distributions.

    prior    p(z)   = N(0, I)                       :meth:`VAE.prior`
    encoder  q(z|x) = N(mu(x), diag sigma^2(x))     :meth:`VAE.encode`
    decoder  p(x|z) = Bernoulli or Gaussian         :meth:`VAE.decode`

The objectives in :mod:`vaekit.objectives` only call these three methods, so any module that
provides them (a conditional or discrete model, say) trains with the same code.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution, Independent, Normal

from ..config import ModelConfig
from ..nets import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder


class VAE(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = latent_dim
        self.register_buffer("prior_loc", torch.zeros(latent_dim), persistent=False)
        self.register_buffer("prior_scale", torch.ones(latent_dim), persistent=False)

    def prior(self) -> Distribution:
        """``p(z) = N(0, I)``, batch shape ``()``, event shape ``(Z,)``."""
        return Independent(Normal(self.prior_loc, self.prior_scale, validate_args=False), 1, validate_args=False)

    def encode(self, x: torch.Tensor) -> Distribution:
        """``q(z|x)`` for ``x`` of shape ``(B, D)``: batch shape ``(B,)``, event shape ``(Z,)``."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> Distribution:
        """``p(x|z)`` for ``z`` of shape ``(..., Z)``: batch shape ``(...)``, event shape ``(D,)``."""
        return self.decoder(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean of ``p(x|z)`` for ``z ~ p(z)``: ``(n, D)`` (pixel probabilities for a Bernoulli decoder)."""
        z = torch.randn(n, self.latent_dim, generator=generator, device=self.prior_loc.device)
        return self.decode(z).mean

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of ``p(x|z)`` at ``z = E_q[z|x]``."""
        return self.decode(self.encode(x).mean).mean


def build_model(config: ModelConfig, shape: tuple[int, int, int], likelihood: str) -> VAE:
    """Build the VAE a :class:`ModelConfig` describes for images of ``shape = (C, H, W)``."""
    dim = shape[0] * shape[1] * shape[2]
    if config.arch == "mlp":
        encoder = MLPEncoder(dim, config.hidden, config.latent, config.activation)
        decoder = MLPDecoder(config.latent, tuple(reversed(config.hidden)), dim, config.activation, likelihood)
    elif config.arch == "conv":
        hidden = config.hidden[0] if config.hidden else 256
        encoder = ConvEncoder(shape, config.latent, hidden, config.activation)
        decoder = ConvDecoder(shape, config.latent, hidden, config.activation, likelihood)
    else:
        raise ValueError(f"unknown model.arch {config.arch!r}: choose mlp or conv")
    return VAE(encoder, decoder, config.latent)
