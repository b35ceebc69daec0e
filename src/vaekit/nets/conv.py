"""A convolutional encoder/decoder: stride-2 4x4 convolutions, each halving the image's sides.

Encoder: convolutions through ``channels`` (default C -> 32 -> 64, so H -> H/4), a hidden linear layer, then
``2Z`` outputs; the decoder mirrors it with transposed convolutions. With ``channels = (32, 32, 64, 64)`` and
a 256-unit hidden layer it is the 64x64 architecture of the disentanglement papers (Higgins et al. 2017 for
CelebA, Burgess et al. 2018, Locatello et al. 2019 for dSprites). The image's sides must be divisible by
``2 ** len(channels)``. Inputs arrive flat, ``(..., C*H*W)``, like every other net here; leading sample
dimensions are folded into the batch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution

from .heads import LatentSpec, as_spec, likelihood_head
from .mlp import ACTIVATIONS


def _check_shape(shape: tuple[int, int, int], channels: tuple[int, ...]) -> tuple[int, int]:
    """The sides ``(H, W) / 2^len(channels)`` of the last feature map; ValueError naming the fix if they are not whole."""
    factor = 2 ** len(channels)
    if not channels or shape[1] % factor or shape[2] % factor:
        raise ValueError(f"a conv net of {len(channels)} stride-2 layers needs image sides divisible by {factor}, got "
                         f"{shape[1]}x{shape[2]}; set model.conv_channels to fewer layers, use model.arch = 'mlp', "
                         "or resize the images")
    return shape[1] // factor, shape[2] // factor


class ConvEncoder(nn.Module):
    def __init__(self, shape: tuple[int, int, int], latent: int | LatentSpec, hidden: int = 256,
                 activation: str = "relu", channels: tuple[int, ...] = (32, 64)):
        super().__init__()
        h, w = _check_shape(shape, channels)
        self.latent = as_spec(latent)
        act = ACTIVATIONS[activation]
        self.shape = shape
        layers, previous = [], shape[0]
        for out in channels:
            layers += [nn.Conv2d(previous, out, 4, 2, 1), act()]
            previous = out
        self.net = nn.Sequential(
            *layers,
            nn.Flatten(),
            nn.Linear(channels[-1] * h * w, hidden), act(),
            nn.Linear(hidden, self.latent.params_dim),
        )

    def forward(self, x: torch.Tensor) -> Distribution:
        lead = x.shape[:-1]
        out = self.net(x.reshape(-1, *self.shape))
        return self.latent.posterior(out.reshape(*lead, -1))


class ConvDecoder(nn.Module):
    def __init__(self, shape: tuple[int, int, int], latent: int | LatentSpec, hidden: int = 256,
                 activation: str = "relu", likelihood: str = "bernoulli", channels: tuple[int, ...] = (32, 64)):
        super().__init__()
        h, w = _check_shape(shape, channels)
        act = ACTIVATIONS[activation]
        c = shape[0]
        self.latent = as_spec(latent)
        layers = []
        for out_index in range(len(channels) - 1, 0, -1):  # mirrored: the last encoder layer's channels first
            layers += [nn.ConvTranspose2d(channels[out_index], channels[out_index - 1], 4, 2, 1), act()]
        self.net = nn.Sequential(
            nn.Linear(self.latent.code_dim, hidden), act(),
            nn.Linear(hidden, channels[-1] * h * w), act(),
            nn.Unflatten(1, (channels[-1], h, w)),
            *layers,
            nn.ConvTranspose2d(channels[0], c, 4, 2, 1),
            nn.Flatten(),
        )
        self.head = likelihood_head(likelihood, c * shape[1] * shape[2])

    def forward(self, z: torch.Tensor) -> Distribution:
        z = self.latent.flatten(z)
        lead = z.shape[:-1]
        out = self.net(z.reshape(-1, self.latent.code_dim))
        return self.head(out.reshape(*lead, -1))
