"""Kingma et al. (2014) Table 1: semi-supervised MNIST with the M2 model, test error over label draws.

    python benchmarks/mnist_ssl.py --labels 100 --seeds 0 1 2                 # label summed out exactly
    python benchmarks/mnist_ssl.py --labels 100 --seeds 0 --estimator gumbel  # Gumbel-softmax over y
    python benchmarks/mnist_ssl.py --labels 100 --seeds 0 --estimator score   # score function (NVIL baseline)
    python benchmarks/mnist_ssl.py --labels 100 --seeds 0 1 2 --model m1m2      # M2 on the codes of M1
    python benchmarks/mnist_ssl.py --labels 100 --seeds 0 1 2 --model m1m2 --active-only  # on M1's active dims
    python benchmarks/mnist_ssl.py --labels 100 --seeds 0 1 2 --weighting paper  # eq. 9's weights, not upweighted

Every run is ``recipes/kingma_m2.toml`` with ``data.labelled``, ``data.label_seed`` (which balanced subset of
labelled images) and ``train.estimator`` set; it lives in ``runs/ssl/<labels>_<estimator>_seed<k>/`` and resumes
exactly when the command is repeated (``--epochs N`` names its runs and figures ``..._e<N>_...`` apart, and with the
recipe's constant learning rate starts from a copy of the default-length run where there is one). Figures: ``mnist_ssl_m2_<labels>[_<estimator>]_error_pct`` (mean over the
seeds that have finished, spread in the notes) and one row per seed; for ``--model m1m2``, M1
(``recipes/kingma_m1.toml``, trained once without labels in ``runs/ssl/m1/``) comes first and the figures are
``mnist_ssl_m1m2_<labels>...``; ``--active-only`` (``data.features_active_only``: M2 sees only the dimensions of M1
that are active, as the code released with the paper selects them) names runs and figures ``..._au...``, and
``--weighting paper`` (``train.ssl_weighting``: labelled terms weighted as in eq. 9) ``..._paperw...``, and
``--m1-epochs N`` (M1 trained longer, in ``runs/ssl/m1_e<N>/``) ``..._m1e<N>...``; ``--lr`` and ``--lr-schedule
cosine`` (M2's optimiser: the recipe's 3e-4 is the authors' Adam setting for 3000 epochs, slow for our 100-300)
``..._lr<lr>...`` and ``..._cos...``; ``--features-from intensities`` (M1 encodes the grey levels of the images for
M2, ``data.features_from``) ``..._grey``.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import dataclass
from typing import Any, Callable
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record, train_or_resume  # noqa: E402

from vaekit import checkpoint  # noqa: E402
from vaekit.config import CHOICES, load_recipe  # noqa: E402
from vaekit.report import evaluate_run  # noqa: E402

SCRIPT = "mnist_ssl"
RECIPE = ROOT / "recipes" / "kingma_m2.toml"
PAPER = {"m2": {100: 11.97, 600: 4.94, 1000: 3.60, 3000: 3.92},  # Kingma et al. 2014, Table 1, test error (%)
         "m1m2": {100: 3.33, 600: 2.59, 1000: 2.40, 3000: 2.18}}
ESTIMATORS = {"exact": ["train.estimator=exact"], "gumbel": ["train.estimator=gumbel", "train.temperature_rate=3e-5"],
              "score": ["train.estimator=score", "train.baseline=nvil"]}


@dataclass(frozen=True)
class VariantOption:
    """A command-line option that sets a variant apart: the ``suffix`` it adds to run and figure names (empty at
    the option's default, so the default runs keep their names) and the recipe ``overrides`` it makes. The
    recorded command repeats the option wherever it differs from its default."""
    flag: str
    suffix: Callable[[Any], str]
    overrides: Callable[[Any], list[str]]

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")


VARIANT_OPTIONS = (  # in the order of the name suffix (``..._cw0.5_au_paperw_m1e500_lr0.002_cos_grey``)
    VariantOption("--classifier-weight", lambda v: f"_cw{v:g}" if v else "",
                  lambda v: [f"train.classifier_weight={v}"] if v else []),
    VariantOption("--active-only", lambda v: "_au" if v else "", lambda v: ["data.features_active_only=true"] if v else []),
    VariantOption("--precision", lambda v: "", lambda v: [f"train.precision={v}"] if v else []),
    VariantOption("--weighting", lambda v: "_paperw" if v == "paper" else "", lambda v: [f"train.ssl_weighting={v}"]),
    VariantOption("--m1-epochs", lambda v: f"_m1e{v}" if v else "", lambda v: []),  # M1's run is named apart
    VariantOption("--lr", lambda v: f"_lr{v:g}" if v else "", lambda v: [f"train.lr={v}"] if v else []),
    VariantOption("--lr-schedule", lambda v: "_cos" if v == "cosine" else "", lambda v: [f"train.lr_schedule={v}"]),
    VariantOption("--features-from", lambda v: "_grey" if v == "intensities" else "",
                  lambda v: [f"data.features_from={v}"]),
)


def describe(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[str, list[str], str, str]:
    """What sets this variant apart: (name suffix, recipe overrides, figure tag, the command that reruns it)."""
    variant = "".join(option.suffix(getattr(args, option.dest)) for option in VARIANT_OPTIONS)
    overrides = [o for option in VARIANT_OPTIONS for o in option.overrides(getattr(args, option.dest))]
    tag = (f"{args.model}_{args.labels}" + ("" if args.estimator == "exact" else f"_{args.estimator}") + variant
           + (f"_e{args.epochs}" if args.epochs else ""))
    command = (f"python benchmarks/mnist_ssl.py --model {args.model} --labels {args.labels} --estimator "
               f"{args.estimator} --seeds " + " ".join(map(str, args.seeds))
               + (f" --epochs {args.epochs}" if args.epochs else ""))
    for option in VARIANT_OPTIONS:
        value = getattr(args, option.dest)
        if value != parser.get_default(option.dest):
            command += f" {option.flag}" + ("" if value is True else f" {value:g}" if isinstance(value, float)
                                            else f" {value}")
    return variant, overrides, tag, command


def continue_from_shorter(shorter: Path, run_dir: Path, config, epochs: int) -> None:
    """With a constant learning rate the first epochs of a longer run are the shorter run's, exactly: start
    ``run_dir`` from a copy of ``shorter`` instead of training them again."""
    if (epochs and not run_dir.exists() and (shorter / checkpoint.CHECKPOINT_NAME).exists()
            and config.train.lr_schedule == "constant" and checkpoint.load(shorter)["epoch"] <= epochs):
        shutil.copytree(shorter, run_dir)


def train_m1(epochs: int = 0, precision: str = "", runs: Path = ROOT / "runs" / "ssl") -> Path:
    """M1 (once, shared by every label draw): a Gaussian VAE on all training images, no labels; ``epochs``
    (0: the recipe's) names the run ``m1_e<N>``, continued from the recipe-length run."""
    config = load_recipe(ROOT / "recipes" / "kingma_m1.toml", ([f"train.epochs={epochs}"] if epochs else [])
                         + ([f"train.precision={precision}"] if precision else []))
    run_dir = runs / (f"m1_e{epochs}" if epochs else "m1")
    continue_from_shorter(runs / "m1", run_dir, config, epochs)
    train_or_resume(config, run_dir)
    return run_dir


def run_seed(labels: int, seed: int, estimator: str, epochs: int, m1: Path | None, variant: str,
             variant_overrides: list[str], runs: Path = ROOT / "runs" / "ssl") -> dict:
    """One label draw; ``variant`` (e.g. ``_au_m1e500``) names the run apart, ``variant_overrides`` make it so.
    The report gains ``precision``: the arithmetic of the run's last stretch of training (it may switch on resume)."""
    kind = "m2" if m1 is None else "m1m2"
    length = f"_e{epochs}" if epochs else ""
    overrides = [f"data.labelled={labels}", f"data.label_seed={seed}", f"train.seed={seed}", *ESTIMATORS[estimator],
                 f"name={kind}_{labels}_{estimator}{variant}{length}_seed{seed}"] + ([f"train.epochs={epochs}"] if epochs else [])
    if m1 is not None:
        overrides += [f"data.features={m1}", "model.likelihood=gaussian"]
    overrides += variant_overrides
    config = load_recipe(RECIPE, overrides)
    base = f"{'' if m1 is None else 'm1m2_'}{labels}_{estimator}{variant}"
    run_dir = runs / f"{base}{length}_seed{seed}"
    continue_from_shorter(runs / f"{base}_seed{seed}", run_dir, config, epochs)
    train_or_resume(config, run_dir)
    return {**evaluate_run(run_dir, split="test"),
            "precision": checkpoint.load(run_dir)["config"]["train"]["precision"]}


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--estimator", choices=ESTIMATORS, default="exact")
    parser.add_argument("--epochs", type=int, default=0, help="override the M2 recipe's epochs (0: keep)")
    parser.add_argument("--model", choices=("m2", "m1m2"), default="m2")
    parser.add_argument("--classifier-weight", type=float, default=0.0,
                        help="alpha per labelled example (0: the paper's 0.1 N / N_l); a variant with its own runs "
                             "and metric names (..._cw<alpha>_...)")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="",
                        help="train.precision for the epochs trained by this command (a run may switch on resume)")
    parser.add_argument("--weighting", choices=("upweighted", "paper"), default="upweighted",
                        help="train.ssl_weighting (paper: runs and metric names ..._paperw...)")
    parser.add_argument("--m1-epochs", type=int, default=0,
                        help="m1m2: train M1 this long (0: its recipe's), continuing runs/ssl/m1 (names ..._m1e<N>...)")
    parser.add_argument("--lr", type=float, default=0.0,
                        help="Adam's learning rate for M2 (0: the recipe's 3e-4); names ..._lr<lr>...")
    parser.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                        help="train.lr_schedule for M2 (cosine: to zero over the run; names ..._cos...)")
    parser.add_argument("--features-from", choices=CHOICES["data.features_from"], default="binarized",
                        help="m1m2: what M1 encodes for M2, data.features_from (intensities: the grey levels, as "
                             "the code released with the paper does; names ..._grey...)")
    parser.add_argument("--active-only", action="store_true",
                        help="m1m2: M2 sees only M1's active dimensions (runs and metric names ..._au...)")
    parser.add_argument("--runs-dir", default="runs/ssl",
                        help="where the runs live, relative to the repository (benchmarks/runs/ssl for runs longer "
                             "than a session: their checkpoints are committed and resumed in the next one)")
    return parser


def main() -> None:
    parser = arguments()
    args = parser.parse_args()
    if (args.active_only or args.m1_epochs or args.features_from != "binarized") and args.model != "m1m2":
        parser.error("--active-only, --m1-epochs and --features-from are about M1: use them with --model m1m2")
    variant, variant_overrides, tag, command = describe(args, parser)
    runs = ROOT / args.runs_dir
    if args.runs_dir != parser.get_default("runs_dir"):
        command += f" --runs-dir {args.runs_dir}"
    m1 = train_m1(args.m1_epochs, args.precision, runs) if args.model == "m1m2" else None
    errors = []
    for seed in args.seeds:
        report = run_seed(args.labels, seed, args.estimator, args.epochs, m1, variant, variant_overrides, runs)
        errors.append(report["error_pct"])
        record(SCRIPT, f"mnist_ssl_{tag}_seed{seed}_error_pct", report["error_pct"], "%", command,
               f"label draw {seed}; {report['epochs']} epochs, {report['train_seconds'] / 3600:.2f} h "
               f"(last trained in {report['precision']}); "
               f"test bound {report['elbo']:.2f} nats")
    spread = f"sd {statistics.stdev(errors):.2f} over {len(errors)} draws" if len(errors) > 1 else "ONE draw only"
    record(SCRIPT, f"mnist_ssl_{tag}_error_pct", statistics.mean(errors), "%", command,
           f"mean over label draws {args.seeds}: {', '.join(f'{e:.2f}' for e in errors)} ({spread}); "
           f"paper {PAPER[args.model].get(args.labels, 'n/a')}% (Kingma et al. 2014, Table 1, {args.model.upper()})")


if __name__ == "__main__":
    main()
