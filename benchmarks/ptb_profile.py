"""Where a training step of the PTB sentence VAE spends its time, and what the fused output layer saves.

    python benchmarks/ptb_profile.py [--sentences 960] [--repeats 9]

(1) torch.profiler over one epoch of vaekit's trainer on the ``ptb_speed`` set-up (``recipes/ptb_vae.toml``,
untied output, no dropout, float32, one thread), after an unprofiled epoch that warms the process heap; the
self time of every operator is summed into: the output layer's GEMMs (``mm`` / ``addmm`` with a 10k-wide
operand), the LSTMs (oneDNN's ``mkldnn_rnn_layer`` and its backward), the softmax, the Adam update, and the
rest. (2) The output layer alone, forward and backward over ``--tokens`` decoder states (the mean number of
real tokens in a batch of 32 sentences): autograd through ``F.linear`` + ``F.cross_entropy`` against
:func:`vaekit.nets.softmax_output.linear_token_nll`, alternated, medians of ``--repeats``. (3) The logits
GEMM alone: ``addmm`` with the bias, and one GEMM of ``[h | 1]`` and ``[W | b]`` (what ``linear_token_nll``
did until 2026-12-07; it now also pads the rows to a multiple of 16 columns,
:func:`vaekit.nets.softmax_output.aligned_logits`), each as a ratio to the bias-free ``mm``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402
from ptb_speed import speed_config  # noqa: E402

from vaekit.allocator import retain_freed_memory  # noqa: E402
from vaekit.nets.softmax_output import linear_token_nll  # noqa: E402
from vaekit.runs import load_data  # noqa: E402
from vaekit.train import train  # noqa: E402

SCRIPT = "ptb_profile"


def categorise(name: str, shapes: list, vocab: int) -> str:
    if name in ("aten::mm", "aten::addmm") and any(vocab in s for s in shapes if s):
        return "output_gemms"
    if name.startswith("aten::mkldnn_rnn_layer"):
        return "lstm"
    if name == "aten::_softmax":
        return "softmax"
    if name == "aten::_fused_adam_":
        return "adam"
    return "other"


def step_profile(sentences: int) -> tuple[dict[str, float], int]:
    """Milliseconds per step by category, and the mean real tokens per batch."""
    from torch.profiler import ProfilerActivity, profile

    config = speed_config(sentences, "float32", 1)
    data = load_data(config.data)
    vocab = len(data.vocab)
    with tempfile.TemporaryDirectory() as tmp:
        train(config, Path(tmp) / "warm", data=data, progress=False)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            result = train(config, Path(tmp) / "run", data=data, progress=False)
    steps = result.step
    ms: dict[str, float] = {}
    for event in prof.key_averages(group_by_input_shape=True):
        key = categorise(event.key, event.input_shapes or [], vocab)
        ms[key] = ms.get(key, 0.0) + event.self_cpu_time_total / 1e3 / steps
    ms["total"] = sum(ms.values())
    tokens = sum(len(s) for s in data.train) // steps
    return ms, tokens


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def output_layer(tokens: int, vocab: int, repeats: int) -> dict[str, float]:
    torch.manual_seed(0)
    layer = torch.nn.Linear(256, vocab)
    hidden = (0.3 * torch.randn(tokens, 256)).requires_grad_()
    target = torch.randint(vocab, (tokens,))
    rows = torch.full((tokens,), 1 / 32)

    def autograd():
        layer.zero_grad(set_to_none=True)
        (F.cross_entropy(layer(hidden), target, reduction="none") * rows).sum().backward()

    def fused():
        layer.zero_grad(set_to_none=True)
        (linear_token_nll(hidden, layer.weight, layer.bias, target) * rows).sum().backward()

    h, w, b = hidden.detach(), layer.weight.detach(), layer.bias.detach()
    ones = h.new_ones(tokens, 1)
    gemms = {"mm": lambda: h @ w.t(), "addmm": lambda: torch.addmm(b, h, w.t()),
             "augmented": lambda: torch.cat([h, ones], 1) @ torch.cat([w, b[:, None]], 1).t()}
    times: dict[str, list[float]] = {}
    for _ in range(3):  # alternated rounds
        for name, fn in (("autograd", autograd), ("fused", fused), *gemms.items()):
            times.setdefault(name, []).append(median_ms(fn, repeats))
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=960)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(1)
    retain_freed_memory()  # as the trainer does (train.retain_memory), also for the isolated timings
    command = f"python benchmarks/ptb_profile.py --sentences {args.sentences} --repeats {args.repeats}"
    ms, tokens = step_profile(args.sentences)
    common = (f"ptb_speed set-up (embedding 256, LSTM 256, z 32, untied output, no dropout, batch 32, float32, "
              f"1 thread), first {args.sentences} PTB training sentences, torch.profiler self time per step of "
              f"one epoch after a warm-up epoch; {tokens} real tokens per batch on average")
    for key in ("output_gemms", "lstm", "softmax", "adam", "other", "total"):
        record(SCRIPT, f"ptb_step_ms_{key}", ms.get(key, 0.0), "ms", command, common)
    t = output_layer(tokens, 10002, args.repeats)
    setup = (f"output layer 256 -> 10002 with bias, {tokens} tokens, forward + backward, float32, 1 thread, "
             f"medians of 3 alternated rounds of {args.repeats}")
    record(SCRIPT, "ptb_output_layer_speedup_vs_autograd", t["autograd"] / t["fused"], "ratio", command,
           f"{setup}: F.linear + F.cross_entropy through autograd {t['autograd']:.1f} ms, linear_token_nll "
           f"{t['fused']:.1f} ms")
    gemm = f"logits GEMM ({tokens} x 256) @ (256 x 10002), float32, 1 thread; bias-free mm {t['mm']:.2f} ms"
    record(SCRIPT, "ptb_logits_addmm_over_mm", t["addmm"] / t["mm"], "ratio", command,
           f"{gemm}; torch.addmm with the bias {t['addmm']:.2f} ms")
    record(SCRIPT, "ptb_logits_augmented_over_mm", t["augmented"] / t["mm"], "ratio", command,
           f"{gemm}; one GEMM of [h | 1] and [W | b], the concatenations included, {t['augmented']:.2f} ms")


if __name__ == "__main__":
    main()
