"""How much faster importance-sampled scoring of a sentence VAE is with the output layer's NLL formed in row blocks.

Without autograd (evaluation, validation, importance sampling) ``vaekit.nets.softmax_output.linear_token_nll``
forms the logits ``EVAL_ROWS`` rows at a time from the 16-aligned ``[W | b]`` table and takes each block's
cross-entropy while the block is still in the cache. The reference is what it did before: one
``F.cross_entropy(F.linear(h, W, b), y)`` over all rows, whose logits (rows of 10,002 floats, which MKL multiplies
more slowly than rows of 10,016) and log-softmax go to memory and back. Two figures, each side timed in fresh
processes, alternated ``--repeats`` times, one torch thread, medians:

* the output layer alone: ``(--rows x 256)`` decoder states against the 10,002-word PTB vocabulary;
* end to end: ``vaekit eval``'s scoring (``evaluate_run``) of the first ``--sentences`` PTB test sentences with
  ``--k`` importance samples, the committed model ``--run`` (Li et al.'s fix, 256 units); both sides must give the
  same NLL (same seed; float32 rounding apart).

    python benchmarks/ptb_eval_speed.py [--rows 8192] [--sentences 64] [--k 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, in_fresh_process, record  # noqa: E402

SCRIPT = "ptb_eval_speed"
RUN = "benchmarks/runs/ptb_vae_pretrained"


def _use_reference() -> None:
    """Put back the one-block cross-entropy of the plain ``F.linear`` logits (the code before the row blocks)."""
    import torch.nn.functional as F

    from vaekit.nets import softmax_output

    softmax_output._scored_nll = lambda h, w, b, y: softmax_output.token_nll(F.linear(h, w, b), y)


def _output_layer_seconds(reference: bool, rows: int) -> float:
    from vaekit.nets.softmax_output import linear_token_nll

    torch.set_num_threads(1)
    if reference:
        _use_reference()
    gen = torch.Generator().manual_seed(0)
    hidden, weight = torch.randn(rows, 256, generator=gen), 0.1 * torch.randn(10002, 256, generator=gen)
    bias, target = 0.1 * torch.randn(10002, generator=gen), torch.randint(10002, (rows,), generator=gen)
    times = []
    with torch.no_grad():
        for _ in range(4):
            start = time.perf_counter()
            linear_token_nll(hidden, weight, bias, target)
            times.append(time.perf_counter() - start)
    return statistics.median(times[1:])  # the first call maps the process's memory


def _scoring(reference: bool, run: str, sentences: int, k: int) -> tuple[float, float]:
    from vaekit.report import evaluate_run

    torch.set_num_threads(1)
    if reference:
        _use_reference()
    start = time.perf_counter()
    report = evaluate_run(ROOT / run, k=k, split="test", limit=sentences, progress=False, write=False)
    return time.perf_counter() - start, report["nll"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run", default=RUN, help="a trained sentence-VAE run directory (relative to the repo)")
    args = parser.parse_args()
    command = (f"python benchmarks/ptb_eval_speed.py --rows {args.rows} --sentences {args.sentences} --k {args.k} "
               f"--repeats {args.repeats}" + (f" --run {args.run}" if args.run != RUN else ""))
    layer = {True: [], False: []}
    scoring = {True: [], False: []}
    nll = {}
    for _ in range(args.repeats):
        for reference in (True, False):
            layer[reference].append(in_fresh_process(_output_layer_seconds, reference, args.rows))
            seconds, nll[reference] = in_fresh_process(_scoring, reference, args.run, args.sentences, args.k)
            scoring[reference].append(seconds)
    ref_layer, our_layer = statistics.median(layer[True]), statistics.median(layer[False])
    ref_score, our_score = statistics.median(scoring[True]), statistics.median(scoring[False])
    if abs(nll[True] - nll[False]) > 1e-3:
        raise SystemExit(f"the two scorings disagree: NLL {nll[True]:.5f} (reference) against {nll[False]:.5f}")
    print(f"output layer: {ref_layer * 1e3:.0f} ms -> {our_layer * 1e3:.0f} ms ({ref_layer / our_layer:.2f}x); "
          f"scoring: {ref_score:.1f} s -> {our_score:.1f} s ({ref_score / our_score:.2f}x), NLL {nll[False]:.3f} "
          f"(reference {nll[True]:.3f})", file=sys.stderr)
    record(SCRIPT, "ptb_eval_output_layer_speedup_row_blocks", ref_layer / our_layer, "ratio", command,
           f"no-autograd NLL of ({args.rows} x 256) decoder states against 10,002 words, one thread: "
           f"{ref_layer * 1e3:.0f} ms as one F.cross_entropy(F.linear(...)), {our_layer * 1e3:.0f} ms in blocks of "
           f"512 rows of 16-aligned logits; medians of {args.repeats} alternated fresh processes")
    record(SCRIPT, "ptb_eval_scoring_speedup_row_blocks", ref_score / our_score, "ratio", command,
           f"importance-sampled scoring (evaluate_run, K = {args.k}) of the first {args.sentences} PTB test sentences "
           f"with {args.run}, one thread: {ref_score:.1f} s before, {our_score:.1f} s with the row blocks (NLL "
           f"{nll[True]:.4f} and {nll[False]:.4f}); medians of {args.repeats} alternated fresh processes")


if __name__ == "__main__":
    main()
