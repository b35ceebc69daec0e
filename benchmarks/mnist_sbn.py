"""Helmholtz machines on binarised MNIST: sigmoid belief nets of one to three binary layers, several algorithms.

    python benchmarks/mnist_sbn.py --variant ws      # wake-sleep (Hinton et al. 1995)
    python benchmarks/mnist_sbn.py --variant rws     # reweighted wake-sleep, K = 5 (Bornschein & Bengio 2015)
    python benchmarks/mnist_sbn.py --variant nvil    # ELBO + score function + NVIL baseline (Mnih & Gregor 2014)
    python benchmarks/mnist_sbn.py --variant all
    python benchmarks/mnist_sbn.py --layers 3 --variant rws --runs-dir benchmarks/runs/sbn3   # SBN 200-200-200
    python benchmarks/mnist_sbn.py --layers 3 --variant vimco|nvil|ws         # VIMCO: IWAE bound, K = 5
    python benchmarks/mnist_sbn.py --layers 2 --variant nvil                  # SBN 200-200

``MODELS`` holds the nets: one layer is ``recipes/sbn200.toml``, two and three layers ``recipes/sbn200x3.toml``
(linear maps both ways; two layers with ``model.hierarchy = [200]``), each variant adding its overrides. A run
lives in ``<runs-dir>/<variant>/`` (default ``runs/sbn``, ``runs/sbn2``, ``runs/sbn3``) and resumes exactly when the
command is repeated. Each is scored by the importance-sampled test NLL with its own recognition net as the proposal
(K = ``--k``), and by the ELBO. Figures: ``mnist_sbn_<variant>_test_nll`` (the issue's names; ``mnist_sbn2_...``,
``mnist_sbn3_...`` for the deep nets), ``_test_elbo`` and ``_train_minutes``. Anchors: Mnih & Gregor (2014) for one
layer (wake-sleep 120.8, NVIL 113.1) and two (107.7, 99.8), as quoted in Yin & Zhou (2019), Table 2(a); for three
layers at K = 5, RWS 93.5 and VIMCO 92.8 nats (Mnih & Rezende 2016, as quoted in thu-ml/zhusuan pull request #21).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record, train_or_resume  # noqa: E402

from vaekit.config import load_recipe  # noqa: E402
from vaekit.report import evaluate_run, training_status  # noqa: E402

SCRIPT = "mnist_sbn"


@dataclass(frozen=True)
class Net:
    """One sigmoid belief net: its recipe (with ``overrides``), the name of its runs (``<name>_<variant>``) and the
    prefix of its figures, and the algorithms it is trained with (recipe overrides by variant name)."""
    recipe: str
    overrides: tuple[str, ...]
    name: str
    prefix: str
    description: str
    variants: dict[str, list[str]]


NVIL = ["train.objective=elbo", "train.estimator=score", "train.baseline=nvil",
        "train.k=1"]  # one sample per example, as Mnih & Gregor (not the deep recipe's k = 5 for RWS)
DEEP = {"ws": ["train.objective=wake-sleep"], "rws": ["train.objective=rws", "train.k=5"],
        "vimco": ["train.objective=iwae", "train.k=5"],  # the IWAE bound with VIMCO's leave-one-out baselines
        "nvil": NVIL}  # no closed-form KL between chains: the learning signal is the whole MC ELBO
MODELS = {  # by the number of binary layers of 200 units
    1: Net("sbn200", (), "sbn200", "mnist_sbn", "SBN 200 (784-200 recognition, 200-784 generative, learned prior biases)",
           {"ws": DEEP["ws"], "rws": DEEP["rws"], "nvil": NVIL}),
    2: Net("sbn200x3", ("model.hierarchy=[200]",), "sbn200x2", "mnist_sbn2",
           "SBN 200-200 (linear maps both ways, learned top biases)", DEEP),
    3: Net("sbn200x3", (), "sbn200x3", "mnist_sbn3", "SBN 200-200-200 (linear maps both ways, learned top biases)", DEEP),
}


def run_variant(layers: int, name: str, k: int, epochs: int, runs_dir: str) -> None:
    net = MODELS[layers]
    prefix, description = net.prefix, net.description
    overrides = [*net.overrides, *net.variants[name]] + ([f"train.epochs={epochs}"] if epochs else [])
    config = load_recipe(ROOT / "recipes" / f"{net.recipe}.toml", [*overrides, f"name={net.name}_{name}"])
    run_dir = ROOT / (runs_dir or f"runs/{prefix.removeprefix('mnist_')}") / name
    train_or_resume(config, run_dir)
    report = evaluate_run(run_dir, k=k, split="test")
    command = (f"python benchmarks/mnist_sbn.py" + (f" --layers {layers}" if layers != 1 else "")
               + f" --variant {name}" + (f" --epochs {epochs}" if epochs else "")
               + (f" --runs-dir {runs_dir}" if runs_dir else ""))
    status = training_status(report)
    notes = (f"{description}; {report['epochs']} epochs ({status}); importance-sampled with q(h|x), K = {k}; "
             f"overrides {overrides}"
             + (f"; active units {report['active_units_by_layer']} by layer" if report.get("active_units_by_layer")
                else ""))
    record(SCRIPT, f"{prefix}_{name}_test_nll", report["nll"], "nats", command, notes)
    record(SCRIPT, f"{prefix}_{name}_test_elbo", report["elbo"], "nats", command, "one-sample ELBO, mean over test")
    record(SCRIPT, f"{prefix}_{name}_train_minutes", report["train_seconds"] / 60, "minutes", command,
           f"trained with {config.train.threads or 'default'} thread(s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, choices=sorted(MODELS), default=1, help="binary layers of 200 units")
    parser.add_argument("--variant", required=True,
                        choices=sorted({name for net in MODELS.values() for name in net.variants} | {"all"}))
    parser.add_argument("--k", type=int, default=1000, help="importance samples for the test NLL")
    parser.add_argument("--epochs", type=int, default=0, help="override the recipe's epochs (0: keep)")
    parser.add_argument("--runs-dir", default="",
                        help="where the runs live, relative to the repository (default runs/sbn, runs/sbn2 or runs/sbn3; "
                             "benchmarks/runs/sbn<L> for runs longer than a session: their checkpoints are committed)")
    args = parser.parse_args()
    variants = MODELS[args.layers].variants
    if args.variant != "all" and args.variant not in variants:
        parser.error(f"--variant {args.variant} is not one of the {args.layers}-layer variants: {', '.join(variants)}")
    for name in (variants if args.variant == "all" else [args.variant]):
        run_variant(args.layers, name, args.k, args.epochs, args.runs_dir)


if __name__ == "__main__":
    main()
