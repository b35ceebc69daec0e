"""One stochastic layer against two (Burda et al. 2016, Table 1's two architectures), same budget, on MNIST.

    python benchmarks/mnist_hierarchy.py --epochs 30

Both runs are Burda et al.'s: ``recipes/burda_vae.toml`` (x -> 200 -> 200 -> z, 50 units) and
``recipes/burda_vae_2layer.toml`` (x -> 200 -> 200 -> z_1, 100 units -> 100 -> 100 -> z_2, 50 units), with the
same initialisation (the authors': ``model.init = glorot``, ``model.output_bias = data``), the same seed, batch 20
and their learning-rate schedule compressed into ``--epochs`` (10k training images held out for validation).
Each run lives in ``runs/hierarchy/e<epochs>_<layers>layer/`` and resumes when repeated. Both are scored with
K = 1000 importance samples on the 10k test images, and compared image by image
(:func:`vaekit.report.paired_nll_difference`). Figures: ``mnist_hier_<layers>layer_e<epochs>_test_nll``,
``..._test_elbo``, ``mnist_hier_e<epochs>_2layer_minus_1layer_test_nll`` (paired; negative: the second layer
helps) and ``mnist_hier_e<epochs>_time_ratio``. The paper's figures after 3280 epochs: 86.76 and 85.33 nats.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record, train_or_resume  # noqa: E402

from vaekit.config import load_recipe  # noqa: E402
from vaekit.report import evaluate_run, paired_nll_difference  # noqa: E402

SCRIPT = "mnist_hierarchy"
K_IS = 1000
RECIPES = {1: "burda_vae.toml", 2: "burda_vae_2layer.toml"}
PAPER = {1: 86.76, 2: 85.33}  # Burda et al. 2016, Table 1, VAE (k = 1), after 3280 epochs


def run(layers: int, epochs: int, threads: int) -> tuple[Path, dict]:
    config = load_recipe(ROOT / "recipes" / RECIPES[layers],
                         ["model.init=glorot", "model.output_bias=data", f"train.epochs={epochs}",
                          f"train.threads={threads}", f"name=hier{layers}_e{epochs}"])
    run_dir = ROOT / "runs" / "hierarchy" / f"e{epochs}_{layers}layer"
    train_or_resume(config, run_dir)
    return run_dir, evaluate_run(run_dir, k=K_IS, split="test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    command = f"python benchmarks/mnist_hierarchy.py --epochs {args.epochs} --threads {args.threads}"
    runs = {layers: run(layers, args.epochs, args.threads) for layers in (1, 2)}
    for layers, (_, report) in runs.items():
        by_layer = report.get("active_units_by_layer")
        notes = (f"recipes/{RECIPES[layers]} with the authors' initialisation, {report['epochs']} epochs (the Burda "
                 f"schedule compressed into them), batch 20, {args.threads} thread(s); K = {K_IS} on {report['n']} "
                 f"test images; KL {report['kl']:.2f}, {report['active_units']} active units"
                 + (f" ({' + '.join(map(str, by_layer))} by layer)" if by_layer else "")
                 + f"; training {report['train_seconds']:.0f} s; paper {PAPER[layers]} after 3280 epochs")
        record(SCRIPT, f"mnist_hier_{layers}layer_e{args.epochs}_test_nll", report["nll"], "nats", command, notes)
        record(SCRIPT, f"mnist_hier_{layers}layer_e{args.epochs}_test_elbo", report["elbo"], "nats", command, notes)
    paired = paired_nll_difference(runs[2][0], runs[1][0], "test", K_IS)
    record(SCRIPT, f"mnist_hier_e{args.epochs}_2layer_minus_1layer_test_nll", paired["mean"], "nats", command,
           f"two stochastic layers minus one, image by image over {paired['n']} test images: paired standard error "
           f"{paired['stderr']:.3f}, two layers lower on {100 * paired['fraction_a_lower']:.1f}%; the paper's "
           f"difference after 3280 epochs is {PAPER[2] - PAPER[1]:.2f}")
    record(SCRIPT, f"mnist_hier_e{args.epochs}_time_ratio",
           runs[2][1]["train_seconds"] / runs[1][1]["train_seconds"], "ratio", command,
           "training seconds of the two-layer run over the one-layer run (same job, other jobs sharing the cores)")


if __name__ == "__main__":
    main()
