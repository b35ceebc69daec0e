"""Inverted dropout (Srivastava et al. 2014) with its mask drawn by comparing uniforms on the CPU.

While training, ``dropout(x, p)`` keeps each entry with probability ``1 - p`` and scales what it keeps by
``1 / (1 - p)``, so ``E[dropout(x)] = x``; in evaluation it is the identity. This is the distribution of
``torch.nn.functional.dropout``; only the way the mask is drawn differs: on the CPU the mask is
``1[u >= p]`` with ``u ~ U[0, 1)`` in float32, which torch draws faster than with the per-element Bernoulli
sampler behind ``F.dropout``. The sentence VAE drops its embeddings and LSTM outputs at every step: with dropout
0.5 its bfloat16 training step runs 1.02x as fast with these masks (``benchmarks/dropout_speed.py``, AMD EPYC,
one thread). On other devices ``F.dropout`` (fused there) is used as it is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``x`` with each entry zeroed with probability ``p`` and the rest scaled by ``1 / (1 - p)`` (training),
    or ``x`` itself (``training = False`` or ``p = 0``). Differentiable in ``x``: the gradient is the same mask."""
    _check(p)
    if not training or p == 0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    if p == 1:
        return x * 0
    keep = torch.rand(x.shape, dtype=torch.float32, device=x.device) >= p
    return x * keep.to(x.dtype).mul_(1 / (1 - p))


def _check(p: float) -> float:
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability {p}: must be in [0, 1]")
    return p


class Dropout(nn.Module):
    """:func:`dropout` as a module, in place of ``torch.nn.Dropout(p)`` (no parameters, no state)."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = _check(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
