"""Sohn et al. (2015) on MNIST quadrant completion: the CVAE against its deterministic baseline.

    python benchmarks/mnist_cvae.py                       # 1, 2 and 3 given quadrants, CVAE and baseline
    python benchmarks/mnist_cvae.py --quadrants 1 --variants cvae hybrid
    python benchmarks/mnist_cvae.py --quadrants 0         # generation by digit: c = the one-hot label, x = the image

Every run is ``recipes/sohn_cvae.toml`` with ``data.quadrants`` and the variant's overrides; it lives in
``runs/cvae/<variant>_q<quadrants>/`` and resumes exactly when the command is repeated. Figures (issue 5
names): ``mnist_cvae_quadrant{1,2,3}_ncll`` (importance-sampled, S = ``eval.k`` = 100) and
``mnist_baseline_quadrant{1,2,3}_ncll`` (exact), in nats per image over the predicted pixels; the
``gsnn`` and ``hybrid`` variants write ``mnist_<variant>_quadrant<q>_ncll`` (a GSNN never trains q(z|x,c), so its
likelihood is importance-sampled with the prior network p(z|c) as the proposal). ``--quadrants 0`` conditions on the
digit instead (``data.condition = label``): ``mnist_<variant>_label_ncll`` is ``-log p(x|y)`` over whole images,
and ``samples.png`` in the run directory draws ten digits of each class.

Comparability: the Pyro CVAE tutorial's 71.8 / 51.0 / 24.2 nats (1 / 2 / 3 quadrants) are Monte Carlo
ELBO-style losses on *non-binarised* intensities, so they are a rough reference, not a like-for-like
anchor; Sohn et al.'s own table has not been checked here yet (see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record, train_or_resume  # noqa: E402

from vaekit.config import load_recipe  # noqa: E402
from vaekit.report import evaluate_run, plot_run, training_status  # noqa: E402

SCRIPT = "mnist_cvae"
RECIPE = ROOT / "recipes" / "sohn_cvae.toml"
VARIANTS = {"cvae": ["train.objective=elbo"], "baseline": ["model.arch=cvae-nn", "train.objective=mle"],
            "gsnn": ["train.objective=gsnn"], "hybrid": ["train.objective=hybrid", "train.hybrid_alpha=0.5"]}
PYRO = {1: 71.8, 2: 51.0, 3: 24.2}


def run(variant: str, quadrants: int) -> dict:
    tag = f"quadrant{quadrants}" if quadrants else "label"
    condition = [f"data.quadrants={quadrants}"] if quadrants else ["data.condition=label", "data.quadrants=0"]
    config = load_recipe(RECIPE, [*VARIANTS[variant], *condition, f"name=cvae_{variant}_{tag}"])
    run_dir = ROOT / "runs" / "cvae" / (f"{variant}_q{quadrants}" if quadrants else f"{variant}_label")
    train_or_resume(config, run_dir)
    report = evaluate_run(run_dir, split="test")
    plot_run(run_dir)
    command = f"python benchmarks/mnist_cvae.py --quadrants {quadrants} --variants {variant}"
    how = (f"importance-sampled, S = {report['k']}, proposal {'p(z|c)' if report['proposal'] == 'prior' else 'q(z|x,c)'}"
           if report["k"] else "exact")
    status = training_status(report)
    reference = (f"Pyro tutorial (intensities, not binarised): {PYRO[quadrants]}" if quadrants else
                 "-log p(x|y) of whole test images given their digit")
    record(SCRIPT, f"mnist_{variant}_{tag}_ncll", report["ncll"], "nats", command,
           f"{how}; ± {report['ncll_stderr']:.2f}; {report['epochs']} epochs ({status}), "
           f"{report['train_seconds'] / 60:.1f} min; {reference}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quadrants", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["cvae", "baseline"])
    args = parser.parse_args()
    for q in args.quadrants:
        for variant in args.variants:
            run(variant, q)


if __name__ == "__main__":
    main()
