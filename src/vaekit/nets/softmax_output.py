"""A softmax output layer over a large vocabulary and its per-token negative log-likelihood, cheap to
differentiate on the CPU.

For N real tokens with decoder states ``h`` ``(N, H)``, an output layer ``W`` ``(V, H)``, ``b`` ``(V,)`` and
targets ``y`` ``(N,)``:

    logits  L = h W^T + b                        (N, V)
    probs   P = softmax(L)                       (N, V)
    nll_n     = -log P[n, y_n]                   (N,)

With a 10k-word vocabulary the ``(N, V)`` matrices dominate the step. Given the upstream gradient ``g``
``(N,)`` and ``Y`` = one-hot(y), the gradient of ``sum_n g_n nll_n`` is

    dL = diag(g) (P - Y)
    dh = diag(g) (P W - W[y])                    (N, H)
    dW = P^T (diag(g) h) - scatter_y(diag(g) h)  (V, H)
    db = P^T g - bincount(y, g)                  (V,)

:func:`linear_token_nll` computes exactly this: the softmax of the forward pass is kept (computed in place
over the logits, which are one GEMM of ``[h | 1]`` and ``[W | b]``), and the row weights ``g`` and the
one-hot terms are applied to the small ``(N, H)`` / ``(V, H)`` sides. No ``(N, V)`` gradient is ever formed
(autograd through ``F.linear`` + ``F.cross_entropy`` forms it, exponentiates the logits a second time,
scales it row by row and sums it for the bias). It is differentiable once (the training gradient), not
twice. :func:`token_nll` is the same loss, by torch, for logits that already exist.

Under CPU autocast the logits and the backward GEMMs run in the autocast type (bfloat16) as autocast's own
``addmm`` would; the softmax is always computed and kept in float32 (float64 for float64 inputs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .heads import full_dtype, full_precision


_ALIGN = 16   # logits' row length is padded to a multiple of this many elements (64 bytes in float32)


def _output_table(weight: torch.Tensor, bias: torch.Tensor | None) -> tuple[torch.Tensor, bool]:
    """The table ``T`` of the logits ``h' T^T`` and whether ``h'`` is ``[h | 1]`` (else ``h``).

    The bias is a column of ``T``, ``[weight | bias]``: on the CPU torch's ``addmm`` first copies the bias into every
    row of the output and then accumulates into it, which costs more than the extra column (8.5% against 6% of the
    GEMM at (700 x 256) @ (256 x 10k), float32, one thread: ``benchmarks/ptb_profile.py``). Unless ``V`` is a
    multiple of 16, ``T`` gets rows ``[0 | -inf]`` up to the next one (:func:`aligned_logits`)."""
    vocab, width = weight.shape
    padded = -(-vocab // _ALIGN) * _ALIGN
    if padded == vocab:
        return (weight, False) if bias is None else (torch.cat([weight, bias[:, None]], 1), True)
    table = weight.new_zeros(padded, width + 1)
    table[:vocab, :width] = weight
    if bias is not None:
        table[:vocab, width] = bias
    table[vocab:, width] = float("-inf")
    return table, True


def _times_table(hidden: torch.Tensor, table: torch.Tensor, augmented: bool) -> torch.Tensor:
    return (torch.cat([hidden, hidden.new_ones(len(hidden), 1)], 1) if augmented else hidden) @ table.t()


def aligned_logits(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``hidden @ weight.T + bias`` ``(N, V')`` with ``V' = V`` rounded up to a multiple of 16, the extra
    columns ``-inf``: their softmax is exactly 0, so a log-softmax, a cross-entropy against targets ``< V`` or an
    argmax over the padded rows equals the one over ``(N, V)``. One GEMM of ``[hidden | 1]`` and ``[weight | bias]``
    padded with rows ``[0 | -inf]`` (:func:`_output_table`). With MKL, rows of 10,002 floats cost the logits GEMM
    25-35% of its speed against rows of 10,016 ((700 x 256) @ (256 x V), float32, one thread: 73 against 99 GFLOP/s
    on an AMD EPYC, 2026-12-07); the 14 padded columns add 0.14% to its arithmetic."""
    return _times_table(hidden, *_output_table(weight, bias))


EVAL_ROWS = 512  # logit rows formed at once when no gradient is needed: a (512 x 10k) block stays in the cache


def _scored_nll(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                target: torch.Tensor) -> torch.Tensor:
    """:func:`token_nll` of the aligned logits, formed ``EVAL_ROWS`` rows at a time (no autograd: evaluation,
    importance sampling, validation). The same arithmetic per row as one big block; on one thread of an AMD
    EPYC, (8192 x 256) states against 10,002 words, 1.68x as fast as ``F.cross_entropy(F.linear(...))`` over
    the whole block, whose 330 MB of logits and log-softmax go to memory and back (``benchmarks/ptb_eval_speed.py``)."""
    table, augmented = _output_table(weight, bias)
    out = [token_nll(_times_table(h, table, augmented), t)
           for h, t in zip(hidden.split(EVAL_ROWS), target.split(EVAL_ROWS))]
    return torch.cat(out) if out else hidden.new_zeros(0)


def token_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-row cross-entropy ``(N,)`` of ``logits`` ``(N, V)`` and ``target`` ``(N,)``, in float32 (or float64)
    whatever the logits' type (bfloat16 logits get their gradient in bfloat16)."""
    return F.cross_entropy(full_precision(logits), target, reduction="none")


class _LinearTokenNLL(torch.autograd.Function):
    """The output layer and the token NLL in one function (see the module docstring for the algebra)."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                target: torch.Tensor) -> torch.Tensor:
        logits = aligned_logits(hidden, weight, bias)     # under autocast: in its type, as autocast's own
        if logits.dtype == full_dtype(logits.dtype):
            probs = torch._softmax(logits, -1, False, out=logits)  # in place: the logits are not needed again
        else:
            probs = torch.softmax(logits, dim=-1, dtype=full_dtype(logits.dtype))
        nll = -probs[torch.arange(len(target), device=target.device), target].log()
        bad = ~torch.isfinite(nll)  # a picked probability below ~1e-38 (float32): log-softmax of those rows
        if bad.any():
            nll[bad] = token_nll(aligned_logits(hidden[bad], weight, bias), target[bad])
        probs = probs[:, :len(weight)]                     # a view: the padded columns' probabilities are 0
        ctx.save_for_backward(probs, hidden, weight, target)
        ctx.gemm_dtype = logits.dtype
        ctx.bias_dtype = None if bias is None else bias.dtype
        return nll

    @staticmethod
    @once_differentiable  # (a second derivative through the kept softmax would be wrong: refuse it)
    def backward(ctx, grad: torch.Tensor):
        probs, hidden, weight, target = ctx.saved_tensors
        dtype = ctx.gemm_dtype
        p = probs if probs.dtype == dtype else probs.to(dtype)
        g = grad.to(probs.dtype)
        w = weight.to(dtype)
        grad_hidden = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_hidden = ((p @ w).to(probs.dtype) - w[target].to(probs.dtype)) * g[:, None]
            grad_hidden = grad_hidden.to(hidden.dtype)
        if ctx.needs_input_grad[1]:
            scaled = hidden.to(probs.dtype) * g[:, None]                                  # diag(g) h  (N, H)
            grad_weight = (p.t() @ scaled.to(dtype)).to(probs.dtype).index_add_(0, target, -scaled).to(weight.dtype)
        if ctx.needs_input_grad[2]:
            grad_bias = (p.t() @ g.to(dtype)).to(probs.dtype).index_add_(0, target, -g).to(ctx.bias_dtype)
        return grad_hidden, grad_weight, grad_bias, None


def linear_token_nll(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                     target: torch.Tensor) -> torch.Tensor:
    """``-log softmax(hidden @ weight.T + bias)[target]`` per row ``(N,)``, in float32 (or float64); equal to
    ``token_nll(F.linear(hidden, weight, bias), target)`` and cheaper to differentiate (module docstring)."""
    if not torch.is_grad_enabled() or not any(t is not None and t.requires_grad for t in (hidden, weight, bias)):
        return _scored_nll(hidden, weight, bias, target)
    return _LinearTokenNLL.apply(hidden, weight, bias, target)
