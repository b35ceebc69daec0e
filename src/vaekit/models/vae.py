"""The Gaussian VAE (Kingma & Welling 2014) as three distributions.

    prior    p(z)   = N(0, I)                       :meth:`VAE.prior`
    encoder  q(z|x) = N(mu(x), diag sigma^2(x))     :meth:`VAE.encode`
    decoder  p(x|z) = Bernoulli or Gaussian         :meth:`VAE.decode`

The latent variable may also be discrete (:class:`vaekit.nets.LatentSpec`): ``categorical`` (L one-hot
variables of K values, a uniform prior; the categorical VAE of Jang et al. 2017) or ``bernoulli`` (binary
units with a Bernoulli(1/2) prior). The objectives in :mod:`vaekit.objectives` only call these three
methods, so any module that provides them trains with the same code.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution

from ..config import ModelConfig
from ..flows import start_near_identity
from ..nets import ConvDecoder, ConvEncoder, LatentSpec, MLPDecoder, MLPEncoder
from ..nets.heads import as_spec
from .m2 import M2


class VAE(nn.Module):
    """``encoder`` maps x ``(B, *shape)`` to the parameters of ``q(z|x)`` and ``decoder`` maps z ``(..., B, Z)`` to those
    of ``p(x|z)``; :meth:`prior`, :meth:`encode` and :meth:`decode` return ``torch.distributions`` objects with batch
    shape ``(B,)`` (or ``(..., B)`` for several z per x) and event shape ``(Z,)`` / ``(D,)``."""

    hierarchical = False  # z is one layer (HierarchicalVAE: several, of which only the first reaches x)

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent: int | LatentSpec, learn_prior: bool = False):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.latent = as_spec(latent)
        self.latent_dim = self.latent.code_dim
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # dtype and device of the prior
        self.prior_logits = nn.Parameter(torch.zeros(self.latent.params_dim)) if learn_prior else None

    def prior(self) -> Distribution:
        """``p(z)``: ``N(0, I)`` with event shape ``(Z,)``, or the uniform discrete prior of the latent spec, or
        (``learn_prior``) a factorised discrete prior with learned logits, the top layer of a sigmoid belief net."""
        if self.prior_logits is not None:
            return self.latent.posterior(self.prior_logits)
        return self.latent.prior(self._anchor)

    def encode(self, x: torch.Tensor) -> Distribution:
        """``q(z|x)`` for ``x`` of shape ``(B, D)``: batch shape ``(B,)``, event shape ``(Z,)``."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> Distribution:
        """``p(x|z)`` for ``z`` of shape ``(..., Z)``: batch shape ``(...)``, event shape ``(D,)``."""
        return self.decoder(z)

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None) -> torch.Tensor:
        """Mean of ``p(x|z)`` for ``z ~ p(z)``: ``(n, D)`` (pixel probabilities for a Bernoulli decoder)."""
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            z = self.prior().sample((n,))
        return self.decode(z).mean

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of ``p(x|z)`` at ``z = E_q[z|x]``."""
        return self.decode(self.encode(x).mean).mean


def build_model(config: ModelConfig, shape: tuple[int, int, int], likelihood: str) -> "VAE | M2":
    """Build the VAE (or, for ``arch = m2``, the semi-supervised M2; with ``hierarchy``, a
    :class:`~vaekit.models.hierarchical.HierarchicalVAE`) a :class:`ModelConfig` describes for images of
    ``shape = (C, H, W)``."""
    dim = shape[0] * shape[1] * shape[2]
    if config.hierarchy:
        from .hierarchical import HierarchicalVAE
        return HierarchicalVAE(dim, config.hidden, (config.latent, *config.hierarchy), config.hierarchy_hidden,
                               config.activation, likelihood, kind=config.latent_type, learn_prior=config.learn_prior)
    if config.arch == "m2":
        return M2(dim, classes=config.categories, latent=config.latent, hidden=config.hidden,
                  activation=config.activation, likelihood=likelihood)
    latent = LatentSpec(config.latent_type, config.latent, config.categories, config.flow)
    if config.arch == "mlp":
        encoder = MLPEncoder(dim, config.hidden, latent, config.activation)
        decoder = MLPDecoder(latent, tuple(reversed(config.hidden)), dim, config.activation, likelihood)
    elif config.arch == "conv":
        hidden = config.hidden[0] if config.hidden else 256
        encoder = ConvEncoder(shape, latent, hidden, config.activation, config.conv_channels)
        decoder = ConvDecoder(shape, latent, hidden, config.activation, likelihood, config.conv_channels)
    else:
        raise ValueError(f"unknown model.arch {config.arch!r}: choose mlp or conv")
    if latent.flow:
        start_near_identity(encoder, 2 * latent.size)
    return VAE(encoder, decoder, latent, learn_prior=config.learn_prior)


def glorot_(module: nn.Module) -> nn.Module:
    """Glorot & Bengio (2010) uniform initialisation of every ``nn.Linear`` in ``module``: weights from
    ``U(-b, b)``, ``b = sqrt(6 / (n_in + n_out))``, biases zero (as Burda et al. 2016 initialise their tanh MLPs;
    torch's default draws from ``U(-1/sqrt(n_in), 1/sqrt(n_in))``, about half as wide for 784 -> 200)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return module


@torch.no_grad()
def set_output_bias_to_data(model: "VAE", mean_image: torch.Tensor) -> None:
    """Start a Bernoulli MLP decoder at the data's mean image ``(D,)`` (intensities in [0, 1]): its output biases
    become ``logit(clip(mean pixel, 0.001, 0.999))`` (Burda et al. 2016), so that the first steps fit the digits
    rather than the average intensity."""
    bias = model.decoder.net[-1].bias
    bias.copy_(torch.logit(mean_image.double().clamp(0.001, 0.999)).to(bias.dtype))
