"""A VAE on Fashion-MNIST (Xiao et al. 2017): the mission's second image data set, measured like MNIST.

    python benchmarks/fashion_mnist.py                      # recipes/fashion_mnist.toml, in runs/fashion/conv
    python benchmarks/fashion_mnist.py --threads 1 --k 1000

Trains ``recipes/fashion_mnist.toml`` (dynamically binarised images, the small convolutional encoder/decoder,
z = 32, 30 epochs; the run resumes exactly when the command is repeated), scores it on the 10,000 test images
with the importance-sampled NLL (``--k``, the recipe's 1000 by default), and plots its latent traversals.
Figures: ``fashion_vae_test_nll``, ``fashion_vae_test_elbo``, ``fashion_vae_active_units``,
``fashion_vae_train_minutes``. The data come from the Debian package ``dataset-fashion-mnist``
(``apt-get install dataset-fashion-mnist``). No published figure is claimed as an anchor: papers report
Fashion-MNIST likelihoods under other binarisations and architectures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record, train_or_resume  # noqa: E402

from vaekit.config import load_recipe  # noqa: E402
from vaekit.report import evaluate_run, plot_run, training_status  # noqa: E402

SCRIPT = "fashion_mnist"
RECIPE = ROOT / "recipes" / "fashion_mnist.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=0, help="importance samples for the test NLL (0: the recipe's)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--epochs", type=int, default=0, help="override the recipe's 30 epochs (0: keep)")
    parser.add_argument("--run-dir", default="runs/fashion/conv", help="relative to the repository")
    args = parser.parse_args()
    overrides = ([f"train.threads={args.threads}"] if args.threads else []) + (
        [f"train.epochs={args.epochs}"] if args.epochs else [])
    config = load_recipe(RECIPE, overrides)
    run_dir = ROOT / args.run_dir
    train_or_resume(config, run_dir)
    report = evaluate_run(run_dir, k=args.k or None, split="test")
    plot_run(run_dir, ["traversals"])
    command = ("python benchmarks/fashion_mnist.py" + (f" --threads {args.threads}" if args.threads else "")
               + (f" --epochs {args.epochs}" if args.epochs else "")
               + (f" --k {args.k}" if args.k else "")
               + (f" --run-dir {args.run_dir}" if args.run_dir != "runs/fashion/conv" else ""))
    setup = (f"recipes/fashion_mnist.toml (conv encoder/decoder, z = {config.model.latent}, dynamically binarised), "
             f"{report['epochs']} epochs ({training_status(report)})")
    record(SCRIPT, "fashion_vae_test_nll", report["nll"], "nats", command,
           f"{setup}; importance-sampled, K = {report['k']}, 10,000 test images; +- {report.get('nll_stderr', 0):.2f} "
           f"standard error over images; test KL {report['kl']:.2f}")
    record(SCRIPT, "fashion_vae_test_elbo", report["elbo"], "nats", command, f"{setup}; one-sample ELBO, mean over test")
    record(SCRIPT, "fashion_vae_active_units", report["active_units"], "units", command,
           f"{setup}; of {config.model.latent} (Burda et al.'s covariance criterion, 0.01)")
    record(SCRIPT, "fashion_vae_train_minutes", report["train_seconds"] / 60, "minutes", command,
           f"{setup}; trained with {config.train.threads or 'default'} thread(s)")


if __name__ == "__main__":
    main()
