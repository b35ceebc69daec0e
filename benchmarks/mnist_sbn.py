"""Helmholtz machines on binarised MNIST: one sigmoid belief net (SBN 200), three training algorithms.

    python benchmarks/mnist_sbn.py --variant ws      # wake-sleep (Hinton et al. 1995)
    python benchmarks/mnist_sbn.py --variant rws     # reweighted wake-sleep, K = 5 (Bornschein & Bengio 2015)
    python benchmarks/mnist_sbn.py --variant nvil    # ELBO + score function + NVIL baseline (Mnih & Gregor 2014)
    python benchmarks/mnist_sbn.py --variant all

Every variant is ``recipes/sbn200.toml`` with the overrides in ``VARIANTS``; a run lives in
``runs/sbn/<variant>/`` and resumes exactly when the command is repeated. Each is scored by the
importance-sampled test NLL with its own recognition net as the proposal (K = ``--k``), and by the ELBO.
Figures: ``mnist_sbn_<variant>_test_nll`` (the issue's names), ``_test_elbo`` and ``_train_minutes``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record  # noqa: E402

from vaekit import checkpoint  # noqa: E402
from vaekit.config import load_recipe  # noqa: E402
from vaekit.report import evaluate_run, training_status  # noqa: E402
from vaekit.train import train  # noqa: E402

SCRIPT = "mnist_sbn"
RECIPE = ROOT / "recipes" / "sbn200.toml"
VARIANTS = {
    "ws": ["train.objective=wake-sleep"],
    "rws": ["train.objective=rws", "train.k=5"],
    "nvil": ["train.objective=elbo", "train.estimator=score", "train.baseline=nvil"],
}


def run_variant(name: str, k: int, epochs: int) -> None:
    overrides = [*VARIANTS[name], f"name=sbn200_{name}"] + ([f"train.epochs={epochs}"] if epochs else [])
    config = load_recipe(RECIPE, overrides)
    run_dir = ROOT / "runs" / "sbn" / name
    result = train(config, run_dir, resume=(run_dir / checkpoint.CHECKPOINT_NAME).exists(), progress=False)
    if result.interrupted:
        sys.exit(130)  # checkpoint written: repeat the command to continue
    report = evaluate_run(run_dir, k=k, split="test")
    command = f"python benchmarks/mnist_sbn.py --variant {name}" + (f" --epochs {epochs}" if epochs else "")
    status = training_status(report)
    notes = (f"SBN 200 (784-200 recognition, 200-784 generative, learned prior biases); {report['epochs']} epochs "
             f"({status}); importance-sampled with q(h|x), K = {k}; overrides {overrides[:-1]}")
    record(SCRIPT, f"mnist_sbn_{name}_test_nll", report["nll"], "nats", command, notes)
    record(SCRIPT, f"mnist_sbn_{name}_test_elbo", report["elbo"], "nats", command, "one-sample ELBO, mean over test")
    record(SCRIPT, f"mnist_sbn_{name}_train_minutes", report["train_seconds"] / 60, "minutes", command,
           f"trained with {config.train.threads or 'default'} thread(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", required=True, choices=[*VARIANTS, "all"])
    parser.add_argument("--k", type=int, default=1000, help="importance samples for the test NLL")
    parser.add_argument("--epochs", type=int, default=0, help="override the recipe's epochs (0: keep)")
    args = parser.parse_args()
    for name in (VARIANTS if args.variant == "all" else [args.variant]):
        run_variant(name, args.k, args.epochs)


if __name__ == "__main__":
    main()
