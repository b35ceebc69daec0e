"""A small convolutional encoder/decoder for images whose sides are divisible by 4 (e.g. 28x28).

Encoder: two stride-2 4x4 convolutions (C -> 32 -> 64 channels, H -> H/4), a hidden linear layer,
then ``2Z`` outputs. The decoder mirrors it with transposed convolutions. Inputs arrive flat,
``(..., C*H*W)``, like every other net here; leading sample dimensions are folded into the batch.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution

from .heads import LatentSpec, as_spec, likelihood_head
from .mlp import ACTIVATIONS


def _check_shape(shape: tuple[int, int, int]) -> None:
    if shape[1] % 4 or shape[2] % 4:
        raise ValueError(f"the conv net needs image sides divisible by 4, got {shape[1]}x{shape[2]}; "
                         "use model.arch = 'mlp' or resize the images")


class ConvEncoder(nn.Module):
    def __init__(self, shape: tuple[int, int, int], latent: int | LatentSpec, hidden: int = 256,
                 activation: str = "relu", channels: tuple[int, int] = (32, 64)):
        super().__init__()
        _check_shape(shape)
        self.latent = as_spec(latent)
        act = ACTIVATIONS[activation]
        c, h, w = shape
        self.shape = shape
        self.net = nn.Sequential(
            nn.Conv2d(c, channels[0], 4, 2, 1), act(),
            nn.Conv2d(channels[0], channels[1], 4, 2, 1), act(),
            nn.Flatten(),
            nn.Linear(channels[1] * (h // 4) * (w // 4), hidden), act(),
            nn.Linear(hidden, self.latent.params_dim),
        )

    def forward(self, x: torch.Tensor) -> Distribution:
        lead = x.shape[:-1]
        out = self.net(x.reshape(-1, *self.shape))
        return self.latent.posterior(out.reshape(*lead, -1))


class ConvDecoder(nn.Module):
    def __init__(self, shape: tuple[int, int, int], latent: int | LatentSpec, hidden: int = 256,
                 activation: str = "relu", likelihood: str = "bernoulli", channels: tuple[int, int] = (32, 64)):
        super().__init__()
        _check_shape(shape)
        act = ACTIVATIONS[activation]
        c, h, w = shape
        self.latent = as_spec(latent)
        self.net = nn.Sequential(
            nn.Linear(self.latent.code_dim, hidden), act(),
            nn.Linear(hidden, channels[1] * (h // 4) * (w // 4)), act(),
            nn.Unflatten(1, (channels[1], h // 4, w // 4)),
            nn.ConvTranspose2d(channels[1], channels[0], 4, 2, 1), act(),
            nn.ConvTranspose2d(channels[0], c, 4, 2, 1),
            nn.Flatten(),
        )
        self.head = likelihood_head(likelihood, c * h * w)

    def forward(self, z: torch.Tensor) -> Distribution:
        z = self.latent.flatten(z)
        lead = z.shape[:-1]
        out = self.net(z.reshape(-1, self.latent.code_dim))
        return self.head(out.reshape(*lead, -1))
