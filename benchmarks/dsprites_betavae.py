"""beta-VAE on dSprites: disentanglement over beta and seeds (Higgins et al. 2017; Locatello et al. 2019).

    python benchmarks/dsprites_betavae.py --betas 1 4 16 --seeds 0 1 2
    python benchmarks/dsprites_betavae.py --betas 4 --seeds 0 --steps 2000      # a quick look
    python benchmarks/dsprites_betavae.py --betas 4 --seeds 0 --steps 300000    # the papers' length

Every run is ``recipes/betavae_dsprites.toml`` with ``train.beta`` and ``train.seed`` set; it lives in
``runs/betavae/b<beta>_s<seed>/`` and resumes exactly. ``--steps`` sets another length (``train.max_steps``):
those runs live in ``runs/betavae/b<beta>_s<seed>_<steps>/`` and their figures carry the length in their
names (``dsprites_b4_s0_300k_mig``, ``dsprites_betavae_300k_mig``), apart from the recipe-length ones. Each
trained encoder (posterior means) is scored by the BetaVAE score, the FactorVAE score and the MIG (:mod:`vaekit.disentanglement`) on images
rendered on demand from uniformly drawn factors. Figures: one row per (beta, seed) and metric, the mean over
seeds per beta, and the issue's ``dsprites_betavae_{mig,factorvae_score,betavae_score}`` for the beta with the
best mean MIG. BENCHMARKS.md says what the published ranges are known to be and where they were not looked up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record, train_or_resume  # noqa: E402

from vaekit.config import load_recipe  # noqa: E402
from vaekit.data import dsprites  # noqa: E402
from vaekit.disentanglement import betavae_score, factorvae_score, mutual_information_gap  # noqa: E402
from vaekit.report import plot_run  # noqa: E402
from vaekit.runs import load_model  # noqa: E402

SCRIPT = "dsprites_betavae"
RECIPE = ROOT / "recipes" / "betavae_dsprites.toml"


def scores(run_dir: Path, n_points: int, seed: int) -> dict[str, float]:
    _, model, _ = load_model(run_dir)

    @torch.no_grad()
    def encode(images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(images).float()
        return torch.cat([model.encode(x[i:i + 4096]).mean for i in range(0, len(x), 4096)]).numpy()

    kw = dict(encode=encode, sample_factors=dsprites.sample_factors, render=dsprites.render)
    return {"betavae_score": betavae_score(**kw, n_factors=5, n_train=n_points, n_eval=n_points // 2, seed=seed),
            "factorvae_score": factorvae_score(**kw, n_factors=5, n_train=n_points, n_eval=n_points // 2, seed=seed),
            "mig": mutual_information_gap(**kw, n=10000, seed=seed)}


def recipe_tag(recipe: Path) -> str:
    """'' for the default recipe, ``<arch>`` for ``betavae_dsprites_<arch>.toml``."""
    if recipe.resolve() == RECIPE.resolve():
        return ""
    if not recipe.stem.startswith("betavae_dsprites_"):
        raise SystemExit(f"--recipe {recipe}: name it betavae_dsprites_<arch>.toml, so that its runs and figures are "
                         "told apart")
    return recipe.stem.removeprefix("betavae_dsprites_")


def describe_net(model) -> str:
    """``MLP [512, 512]`` or ``conv [32, 32, 64, 64] + 256``, for the figures' notes."""
    if model.arch == "conv":
        return f"conv {list(model.conv_channels)} + {model.hidden[0] if model.hidden else 256}"
    return f"MLP {list(model.hidden)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--betas", type=float, nargs="+", default=[1.0, 4.0, 16.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=0, help="override train.max_steps (0: the recipe's)")
    parser.add_argument("--points", type=int, default=1000, help="training points of the two classifier scores")
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="a betavae_dsprites_<arch>.toml recipe (default: "
                        "betavae_dsprites, the MLP); its runs and figures carry <arch> in their names")
    parser.add_argument("--device", default="", help="train.device (cpu, cuda, cuda:N, auto; default: the recipe's)")
    args = parser.parse_args()
    arch = recipe_tag(args.recipe)
    command = (f"python benchmarks/dsprites_betavae.py --betas {' '.join(f'{b:g}' for b in args.betas)} --seeds "
               f"{' '.join(map(str, args.seeds))}" + (f" --steps {args.steps}" if args.steps else "")
               + (f" --recipe {args.recipe.resolve().relative_to(ROOT)}" if arch else "")
               + (f" --device {args.device}" if args.device else ""))
    # a run length other than the recipe's gets its own run directories and metric names (e.g. "_300k"), so
    # that a long run never continues, or relabels, the recipe-length runs; its epochs are left open so that
    # train.max_steps ends it
    tag = "" if not args.steps else f"_{args.steps // 1000}k" if args.steps % 1000 == 0 else f"_{args.steps}steps"
    length = [f"train.max_steps={args.steps}", "train.epochs=1000"] if args.steps else []
    length += [f"train.device={args.device}"] if args.device else []
    prefix = f"dsprites_{arch}" if arch else "dsprites"
    by_beta: dict[float, dict[str, list[float]]] = {}
    for beta in args.betas:
        for seed in args.seeds:
            overrides = [f"train.beta={beta}", f"train.seed={seed}", f"name=betavae{'_' + arch if arch else ''}"
                         f"_b{beta:g}_s{seed}{tag}"]
            config = load_recipe(args.recipe, overrides + length)
            run_dir = ROOT / "runs" / "betavae" / arch / f"b{beta:g}_s{seed}{tag}"  # (no tag, no level)
            result = train_or_resume(config, run_dir)
            plot_run(run_dir, ("traversals", "samples", "curves"))
            found = scores(run_dir, args.points, seed)
            for metric, value in found.items():
                by_beta.setdefault(beta, {}).setdefault(metric, []).append(value)
                record(SCRIPT, f"{prefix}_b{beta:g}_s{seed}{tag}_{metric}", value, "score", command,
                       f"{result.step} steps of batch {config.train.batch_size}; {describe_net(config.model)}, "
                       f"z = {config.model.latent}")
    for beta, metrics in by_beta.items():
        for metric, values in metrics.items():
            spread = f"sd {statistics.stdev(values):.3f}" if len(values) > 1 else "one seed"
            record(SCRIPT, f"{prefix}_b{beta:g}{tag}_{metric}", statistics.mean(values), "score", command,
                   f"mean over seeds {args.seeds} ({spread})")
    best = max(by_beta, key=lambda b: statistics.mean(by_beta[b]["mig"]))
    for metric, values in by_beta[best].items():
        record(SCRIPT, f"dsprites_betavae{'_' + arch if arch else ''}{tag}_{metric}", statistics.mean(values), "score",
               command,
               f"beta = {best:g} (best mean MIG of betas {args.betas}); mean over seeds {args.seeds}")


if __name__ == "__main__":
    main()
