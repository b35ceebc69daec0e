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
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence


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
    bfloat16 LSTM primitive (see the module docstring). Everywhere else it is ``nn.LSTM`` unchanged."""

    def forward(self, input, hx=None):  # noqa: A002 -- nn.LSTM's own argument name
        if _cpu_autocast_in_bfloat16() and not bfloat16_lstm_available():
            with torch.autocast("cpu", enabled=False):
                return super().forward(_float32(input), _float32(hx))
        return super().forward(input, hx)
