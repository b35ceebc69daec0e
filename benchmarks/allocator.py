"""What keeping freed memory in the heap (``train.retain_memory``, :mod:`vaekit.allocator`) buys the sentence VAE.

Each timed run gets a fresh process, alternately with the setting off (glibc ``malloc`` as it comes) and on,
``--repeats`` times each; one torch thread. Training: one epoch of the PTB speed set-up (``ptb_speed.py``'s
config: the ``ptb_vae`` model, untied output, no dropout, batch 32) on the first ``--sentences`` training
sentences, in float32 and in bfloat16, after a warm-up epoch in the same process; the figure is the ratio of
median epoch times (off over on) and the minor page faults per step. Evaluation: the importance-sampled NLL
(K = 100) of ``--eval-sentences`` test sentences under a model trained here for one epoch; ratio of medians.

    python benchmarks/allocator.py [--sentences 1600] [--repeats 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import in_fresh_process, record  # noqa: E402
from ptb_speed import speed_config  # noqa: E402

SCRIPT = "allocator"


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _train_once(sentences: int, precision: str, retain: bool) -> tuple[float, float]:
    """Seconds of one timed training epoch and minor page faults per step (child process)."""
    from vaekit.runs import load_data
    from vaekit.train import train

    torch.set_num_threads(1)
    config = speed_config(sentences, precision, 1, (f"train.retain_memory={str(retain).lower()}",))
    data = load_data(config.data)
    with tempfile.TemporaryDirectory() as tmp:
        train(config, Path(tmp) / "warm-up", data=data, progress=False)
        start, faults = time.perf_counter(), _faults()
        result = train(config, Path(tmp) / "timed", data=data, progress=False)
        return time.perf_counter() - start, (_faults() - faults) / result.step


def _eval_once(run_dir: str, sentences: int, retain: bool) -> float:
    """Seconds of a K = 100 evaluation of the first ``sentences`` test sentences (child process)."""
    import vaekit.report as report

    torch.set_num_threads(1)
    if not retain:
        report.retain_freed_memory = lambda: False
    start = time.perf_counter()
    report.evaluate_run(run_dir, k=100, limit=sentences, write=False)
    return time.perf_counter() - start


def _train_eval_model(run_dir: Path, sentences: int) -> None:
    from vaekit.train import train

    torch.set_num_threads(1)
    train(speed_config(sentences, "float32", 1), run_dir, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=1600, help="training sentences per timed epoch")
    parser.add_argument("--eval-sentences", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the timed children run (and as the records' machine field then says)
    command = (f"python benchmarks/allocator.py --sentences {args.sentences} --eval-sentences {args.eval_sentences} "
               f"--repeats {args.repeats}")
    common = (f"PTB sentence VAE (ptb_speed set-up), first {args.sentences} training sentences, 1 torch thread, "
              f"{args.repeats} fresh processes per setting, alternated")
    for precision, suffix in (("float32", ""), ("bfloat16", "_bf16")):
        off, on, faults_off, faults_on = [], [], [], []
        for _ in range(args.repeats):
            seconds, faults = in_fresh_process(_train_once, args.sentences, precision, False)
            off.append(seconds), faults_off.append(faults)
            seconds, faults = in_fresh_process(_train_once, args.sentences, precision, True)
            on.append(seconds), faults_on.append(faults)
        print(f"{precision}: off {off} s, on {on} s", file=sys.stderr)
        record(SCRIPT, f"ptb_retain_memory_train_speedup{suffix}", statistics.median(off) / statistics.median(on),
               "ratio", command, f"{common}; {precision}; epoch {statistics.median(off):.2f} s with malloc as it "
               f"comes vs {statistics.median(on):.2f} s keeping freed memory")
        record(SCRIPT, f"ptb_page_faults_per_step{suffix}", statistics.median(faults_off), "faults/step", command,
               f"{common}; {precision}; minor page faults per training step, malloc as it comes")
        record(SCRIPT, f"ptb_page_faults_per_step_retained{suffix}", statistics.median(faults_on), "faults/step",
               command, f"{common}; {precision}; minor page faults per training step, keeping freed memory")
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "model"
        in_fresh_process(_train_eval_model, run_dir, args.sentences)
        off, on = [], []
        for _ in range(args.repeats):
            off.append(in_fresh_process(_eval_once, str(run_dir), args.eval_sentences, False))
            on.append(in_fresh_process(_eval_once, str(run_dir), args.eval_sentences, True))
    print(f"evaluation: off {off} s, on {on} s", file=sys.stderr)
    record(SCRIPT, "ptb_retain_memory_eval_speedup", statistics.median(off) / statistics.median(on), "ratio", command,
           f"importance-sampled NLL, K = 100, first {args.eval_sentences} test sentences, model trained one epoch "
           f"on {args.sentences} sentences; 1 torch thread, {args.repeats} fresh processes per setting; "
           f"{statistics.median(off):.2f} s vs {statistics.median(on):.2f} s")


if __name__ == "__main__":
    main()
