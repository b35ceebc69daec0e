"""What mixed precision costs and buys: one recipe trained in float32 and with ``train.precision = bfloat16``,
from the same seed, data order and schedule, in this one job, each scored in float32.

    python benchmarks/mixed_precision.py recipes/burda_vae.toml --epochs 121 --k 1000

The two runs advance alternately, one epoch at a time (each resumes exactly from its checkpoint), so
that a change in the machine's load hits both alike; their training speeds are compared over the same
stretch of time. Both are then scored by importance-sampled NLL on the test set with the same K and
seed, in float32. Runs live in ``runs/mixed_precision/<recipe name>_e<epochs>_<precision>/`` and are
resumed when the command is repeated.

Figures (``<tag>`` = ``<recipe name>_e<epochs>``): ``<tag>_{float32,bfloat16}_test_nll``,
``<tag>_bf16_minus_fp32_test_nll`` (nats: positive means mixed precision trained a worse model) and
``<tag>_bf16_train_speedup`` (training examples per second, bfloat16 over float32).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record  # noqa: E402

from vaekit import checkpoint  # noqa: E402
from vaekit.config import load_recipe  # noqa: E402
from vaekit.report import evaluate_run  # noqa: E402
from vaekit.runs import load_data  # noqa: E402
from vaekit.train import train  # noqa: E402

SCRIPT = "mixed_precision"
PRECISIONS = ("float32", "bfloat16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--k", type=int, default=1000, help="importance samples for the test NLL")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    configs = {p: load_recipe(args.recipe, [f"train.epochs={args.epochs}", f"train.precision={p}",
                                            f"train.threads={args.threads}", "eval.plots=false"])
               for p in PRECISIONS}
    tag = f"{configs['float32'].name}_e{args.epochs}"
    run_dirs = {p: ROOT / "runs" / SCRIPT / f"{tag}_{p}" for p in PRECISIONS}
    data = load_data(configs["float32"].data)

    for epoch in range(1, args.epochs + 1):
        for p in PRECISIONS:
            run_dir = run_dirs[p]
            done = checkpoint.load(run_dir)["epoch"] if (run_dir / checkpoint.CHECKPOINT_NAME).exists() else 0
            if done >= epoch:
                continue
            stage = load_recipe(None, [f"train.epochs={epoch}"], base=configs[p].to_dict())
            result = train(stage, run_dir, resume=done > 0, data=data, progress=False)
            if result.interrupted:
                sys.exit(130)  # checkpoints written: repeat the command to continue

    command = f"python benchmarks/mixed_precision.py {args.recipe} --epochs {args.epochs} --k {args.k}"
    reports = {p: evaluate_run(run_dirs[p], k=args.k, split="test") for p in PRECISIONS}
    speed = {p: reports[p]["steps"] / reports[p]["train_seconds"] for p in PRECISIONS}
    common = (f"{args.recipe}, {args.epochs} epochs each, seed {configs['float32'].train.seed}, "
              f"{args.threads} training thread(s), trained alternately epoch by epoch; test NLL with K = {args.k} "
              "in float32")
    for p in PRECISIONS:
        r = reports[p]
        record(SCRIPT, f"{tag}_{p}_test_nll", r["nll"], "nats", command,
               f"{common}; trained in {p}: test ELBO {r['elbo']:.2f}, KL {r['kl']:.2f}, {r['active_units']} active "
               f"units, {r['train_seconds'] / 3600:.2f} h of training")
    record(SCRIPT, f"{tag}_bf16_minus_fp32_test_nll", reports["bfloat16"]["nll"] - reports["float32"]["nll"], "nats",
           command, f"{common}; positive: the bfloat16-trained model is worse")
    record(SCRIPT, f"{tag}_bf16_train_speedup", speed["bfloat16"] / speed["float32"], "ratio", command,
           f"{common}; optimiser steps per second of training, {speed['bfloat16']:.1f} vs {speed['float32']:.1f}")


if __name__ == "__main__":
    main()
