"""Planar-flow posteriors on MNIST (Rezende & Mohamed 2015): the same VAE with K planar layers after q(z|x)'s
diagonal Gaussian against K = 0, same recipe, seed and schedule.

    python benchmarks/mnist_flows.py --flows 0 16 --epochs 30

Each run is ``recipes/default.toml`` (MLP 512-256, z = 32, dynamically binarised MNIST, Adam 2e-3 cosine) with
``model.flow = K`` and ``train.epochs``; it lives in ``runs/flows/e<epochs>_flow<K>/`` and resumes when repeated.
Figures: ``mnist_flow<K>_e<epochs>_test_nll`` (importance-sampled, K_is = 1000 on the 10k test images) and
``..._test_elbo``; ``mnist_flow<K>_e<epochs>_nll_gain`` (the K = 0 run's NLL minus this one's: positive when the
flow helps) and ``..._time_ratio`` (its training seconds over the K = 0 run's, same machine, same job).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record, train_or_resume  # noqa: E402

from vaekit.config import load_recipe  # noqa: E402
from vaekit.report import evaluate_run  # noqa: E402

SCRIPT = "mnist_flows"
K_IS = 1000


def run(flow: int, epochs: int, threads: int) -> dict:
    config = load_recipe(ROOT / "recipes" / "default.toml", [f"model.flow={flow}", f"train.epochs={epochs}",
                                                             f"name=flow{flow}_e{epochs}"]
                         + ([f"train.threads={threads}"] if threads else []))
    run_dir = ROOT / "runs" / "flows" / f"e{epochs}_flow{flow}"
    train_or_resume(config, run_dir)
    return evaluate_run(run_dir, k=K_IS, split="test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--flows", type=int, nargs="+", default=[0, 16])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    flows = sorted(set(args.flows) | {0})  # the reference is always run
    command = (f"python benchmarks/mnist_flows.py --flows {' '.join(map(str, flows))} --epochs {args.epochs} "
               f"--threads {args.threads}")
    reports = {k: run(k, args.epochs, args.threads) for k in flows}
    reference = reports[0]
    for k, report in reports.items():
        tag = f"mnist_flow{k}_e{args.epochs}"
        notes = (f"recipes/default.toml with model.flow = {k}, {report['epochs']} epochs, {args.threads} thread(s); "
                 f"K = {K_IS} importance samples on {report['n']} test images; test KL {report['kl']:.2f}, "
                 f"{report['active_units']} active units; training {report['train_seconds']:.0f} s")
        record(SCRIPT, f"{tag}_test_nll", report["nll"], "nats", command, notes)
        record(SCRIPT, f"{tag}_test_elbo", report["elbo"], "nats", command, notes)
        if k:
            record(SCRIPT, f"{tag}_nll_gain", reference["nll"] - report["nll"], "nats", command,
                   f"test NLL without a flow ({reference['nll']:.2f}) minus with {k} planar layers "
                   f"({report['nll']:.2f}); positive: the flow helps")
            record(SCRIPT, f"{tag}_time_ratio", report["train_seconds"] / reference["train_seconds"], "ratio",
                   command, f"training seconds with {k} planar layers over without, same job and machine "
                            "(other jobs were sharing the cores)")


if __name__ == "__main__":
    main()
