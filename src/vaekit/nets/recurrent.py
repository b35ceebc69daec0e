"""An LSTM that trains under bfloat16 autocast on every CPU.

Under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (``train.precision = 'bfloat16'``) torch sends
``nn.LSTM`` to oneDNN's bfloat16 LSTM primitive. CPUs without native bfloat16 support (AVX2-only parts such as
many AMD EPYC machines) have no such primitive, and the forward pass fails with "could not create a primitive
descriptor". :class:`LSTM` asks once per process whether the primitive exists (:func:`bfloat16_lstm_available`)
and, where it does not, runs the recurrence in float32 with autocast off for that call, so the same recipe
trains everywhere: on such a CPU the recurrence is float32 (exactly the float32 LSTM's output), the rest of the
step stays in bfloat16.

Shapes and arguments are ``torch.nn.LSTM``'s; the parameters and the state dict are the same, so checkpoints
move freely between the two classes.

``weight_drop`` adds DropConnect on the hidden-to-hidden weights (Merity et al. 2018, "Regularizing and
Optimizing LSTM Language Models", Sec. 2; Wan et al. 2013): while training, each forward pass multiplies every
``weight_hh_l<k>`` by a fresh Bernoulli(1 - p) mask scaled by 1 / (1 - p), one mask for the whole batch and every
time step, so the recurrence itself is regularised without touching the fast fused kernels (the masked matrix is
handed to the same ``nn.LSTM`` call). In evaluation the weights are used as they are. (On a GPU, cuDNN then
compacts the weights at each training call and says so in a warning: the masked matrix is not part of its flat
weight buffer.)
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from .dropout import dropout


@functools.lru_cache(maxsize=None)
def bfloat16_lstm_available() -> bool:
    """Whether this CPU runs ``nn.LSTM`` under bfloat16 autocast (one tiny forward and backward, once)."""
    probe = nn.LSTM(4, 4, batch_first=True)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, _ = probe(torch.zeros(1, 2, 4, requires_grad=True))
        out.float().sum().backward()
    except RuntimeError:
        return False
    return True


def _float32(value):
    """Tensors, packed sequences and ``(h, c)`` tuples in float32 (other floating types and ints untouched)."""
    if isinstance(value, PackedSequence):
        return value._replace(data=_float32(value.data))
    if isinstance(value, tuple):
        return tuple(_float32(v) for v in value)
    if isinstance(value, torch.Tensor) and value.dtype in (torch.bfloat16, torch.float16):
        return value.float()
    return value


def _cpu_autocast_in_bfloat16() -> bool:
    if hasattr(torch, "get_autocast_dtype"):  # torch >= 2.4
        return torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    return torch.is_autocast_cpu_enabled() and torch.get_autocast_cpu_dtype() == torch.bfloat16


class LSTM(nn.LSTM):
    """``torch.nn.LSTM`` that falls back to a float32 recurrence under CPU bfloat16 autocast where the CPU has no
    bfloat16 LSTM primitive, with optional DropConnect on its recurrent weights (``weight_drop``; see the module
    docstring). With ``weight_drop = 0`` and no such fallback it is ``nn.LSTM`` unchanged."""

    def __init__(self, *args, weight_drop: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0 <= weight_drop < 1:
            raise ValueError(f"weight_drop = {weight_drop}: must be in [0, 1)")
        self.weight_drop = weight_drop

    def forward(self, input, hx=None):  # noqa: A002 -- nn.LSTM's own argument name
        if not (self.training and self.weight_drop):
            return self._forward(input, hx)
        kept = self._flat_weights  # nn.LSTM's forward reads its weights from this list
        self._flat_weights = [dropout(w, self.weight_drop) if name.startswith("weight_hh") else w
                              for w, name in zip(kept, self._flat_weights_names)]
        try:
            return self._forward(input, hx)
        finally:
            self._flat_weights = kept

    def _forward(self, input, hx):  # noqa: A002
        if _cpu_autocast_in_bfloat16() and not bfloat16_lstm_available():
            with torch.autocast("cpu", enabled=False):
                return super().forward(_float32(input), _float32(hx))
        return super().forward(input, hx)
