"""Training policy for text VAEs: word dropout and free bits (they live beside the trainer, never in a net).

* :func:`word_dropout` -- Bowman et al. (2016, Sec. 3.2): replace each decoder *input* word by
  ``<unk>`` with probability ``rate``, so that the decoder must lean on z. Padding and ``<s>`` stay.
  Training only: generation and evaluation never call it.
* :func:`free_bits_kl` -- Kingma et al. (2016, App. C.8): the KL penalty ``sum_j max(lambda, E_batch KL_j)``,
  so that the first ``lambda`` nats of every latent dimension (averaged over the batch) are free.
"""

from __future__ import annotations

import torch


def word_dropout(inputs: torch.Tensor, rate: float, unk_id: int, keep: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """``inputs`` ``(B, T)`` with each position where ``keep`` is False replaced by ``unk_id`` w.p. ``rate``.

    ``keep`` ``(B, T)`` is True where a token must never be dropped (padding, ``<s>``).
    """
    if rate <= 0:
        return inputs
    if not 0 <= rate <= 1:
        raise ValueError(f"word dropout rate {rate} is not a probability")
    drop = (torch.rand(inputs.shape, generator=generator) < rate) & ~keep
    return inputs.masked_fill(drop, unk_id)


def free_bits_kl(kl_per_dim: torch.Tensor, free_nats: float) -> torch.Tensor:
    """``sum_j max(free_nats, mean_b KL_{b,j})`` for ``kl_per_dim`` of shape ``(B, Z)``: a scalar penalty.

    Its gradient vanishes for dimensions whose batch-mean KL is below ``free_nats``.
    """
    per_dim = kl_per_dim.mean(0)
    return torch.clamp(per_dim, min=free_nats).sum()
