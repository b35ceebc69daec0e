"""Data-parallel scaling on this machine: MNIST VAE examples/s with 1 and 2 processes, one thread each.

    python benchmarks/mnist_ddp.py [--epochs 3]

Runs ``vaekit train recipes/pytorch_examples.toml --nproc N`` (torchrun, gloo) with
``train.threads=1`` and batch 128 per process, and takes the median of the per-epoch
examples/s that the trainer itself logs (all ranks' examples over the epoch's wall time).
Efficiency = examples/s with 2 processes / (2 x examples/s with 1). The same is measured with 512
examples per process, where the per-step gradient all-reduce weighs less.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record  # noqa: E402


def run(nproc: int, epochs: int, batch: int = 128) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        env = dict(os.environ, OMP_NUM_THREADS="1")
        subprocess.run([sys.executable, "-m", "vaekit", "train", "recipes/pytorch_examples.toml", "--out", str(out),
                        "--nproc", str(nproc), "--epochs", str(epochs), "--no-eval", "--set", "train.threads=1",
                        "--set", "train.val_every=0", "--set", f"train.batch_size={batch}"], cwd=ROOT, env=env, check=True)
        speeds = [json.loads(line)["examples_per_s"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    return statistics.median(speeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    command = f"python benchmarks/mnist_ddp.py --epochs {args.epochs}"
    one = run(1, args.epochs)
    two = run(2, args.epochs)
    common = "784-400-20 VAE, batch 128 per process, 1 torch thread per process, gloo"
    record("mnist_ddp", "mnist_ddp_1proc_examples_per_s", one, "examples/s", command, common)
    record("mnist_ddp", "mnist_ddp_2proc_examples_per_s", two, "examples/s", command, common)
    record("mnist_ddp", "mnist_ddp_2proc_efficiency", two / (2 * one), "0..1", command,
           f"{two:.0f} / (2 x {one:.0f}) examples/s on this 2-core machine")
    # The same with 4x the batch per process: the gradient all-reduce (2.6 MB per step) is amortised.
    one_big, two_big = run(1, args.epochs, 512), run(2, args.epochs, 512)
    record("mnist_ddp", "mnist_ddp_2proc_efficiency_batch512", two_big / (2 * one_big), "0..1", command,
           f"batch 512 per process: {two_big:.0f} / (2 x {one_big:.0f}) examples/s")


if __name__ == "__main__":
    main()
