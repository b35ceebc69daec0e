"""Bias and variance of each gradient estimator on a fixed model and a fixed MNIST batch (issue 4).

    python benchmarks/estimator_variance.py [--draws 1000] [--batch 32]

Two small VAEs (MLP 784-200, decoder mirrored) are first trained for ``--steps`` steps by the one trainer
(the categorical one with Gumbel-softmax, which is cheap; the exact gradient is only needed when measuring),
so the gradients are taken at a trained point, not at initialisation (see ``--steps``):

* a categorical VAE with 3 variables of 10 categories (1000 joint values): its exact gradient is
  enumerated, and every sampling estimator (score function without baseline, with a moving average,
  with NVIL's learned baseline; Gumbel-softmax at three temperatures; straight-through Gumbel; and,
  with 4 draws of z per image, the score function alone and with leave-one-out baselines) is compared
  with it;
* a Gaussian VAE with 10 latent dimensions: the score-function and pathwise gradients of the same
  ELBO, both unbiased, compared by their variance (the reference is the mean of the pathwise draws).

Gradients are those of the batch-mean ELBO with respect to the encoder's parameters (where the estimators
differ). Figures: ``estimator_variance_ratio_sf_vs_pathwise`` and, per estimator,
``catvae_grad_{variance,bias}_<name>``; the bar chart goes to ``docs/images/estimator_variance.png``.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record  # noqa: E402

from vaekit.config import load_recipe  # noqa: E402
from vaekit.diagnostics import gradient_draws, summarise, warm_up_baseline  # noqa: E402
from vaekit.estimators import (Enumerate, GumbelSoftmax, LeaveOneOutBaseline, MovingAverageBaseline,  # noqa: E402
                               NVILBaseline, Pathwise, ScoreFunction)
from vaekit.plots import estimator_variance  # noqa: E402
from vaekit.runs import eval_inputs, load_data, load_model  # noqa: E402
from vaekit.train import train  # noqa: E402

SCRIPT = "estimator_variance"
BASE = ["data.name=mnist", "model.arch=mlp", "model.hidden=[200]", "model.activation=relu",
        "train.batch_size=100", "train.lr=1e-3", "train.val_every=0", "eval.plots=false"]
CATEGORICAL = ["model.latent_type=categorical", "model.latent=3", "model.categories=10", "train.estimator=gumbel"]
GAUSSIAN = ["model.latent_type=gaussian", "model.latent=10"]


def trained(name: str, overrides: list[str], steps: int, seed: int):
    config = load_recipe(None, [*BASE, *overrides, f"train.max_steps={steps}", "train.epochs=100",
                                f"train.seed={seed}", f"name=estimator_variance_{name}"])
    run_dir = ROOT / "runs" / "estimator_variance" / name
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh, seeded model every time
    if train(config, run_dir, progress=False).interrupted:
        sys.exit(130)
    _, model, _ = load_model(run_dir)
    return config, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=1000, help="gradient draws per estimator")
    parser.add_argument("--batch", type=int, default=32, help="test images in the fixed batch")
    parser.add_argument("--steps", type=int, default=10, help="training steps before measuring: the 3 x 10 code "
                        "is so small that q(z|x) turns one-hot within ~25 steps (every estimator's gradient then "
                        "vanishes); at 10 steps its entropy is still ~6 of 6.9 nats")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = f"python benchmarks/estimator_variance.py --draws {args.draws} --batch {args.batch} --steps {args.steps}"

    config, model = trained("categorical", CATEGORICAL, args.steps, args.seed)
    x = eval_inputs(config, load_data(config.data), "test")[: args.batch]
    params = list(model.encoder.parameters())
    with torch.no_grad():
        entropy = model.encode(x).entropy().mean().item()
    print(f"mean entropy of q(z|x) on the batch: {entropy:.2f} nats (at most {3 * math.log(10):.2f})", file=sys.stderr)
    torch.manual_seed(args.seed)
    exact = gradient_draws(model, x, Enumerate(), params, 1)[0]
    nvil = ScoreFunction(NVILBaseline(x.shape[1], normalise=False))
    moving = ScoreFunction(MovingAverageBaseline(0.9))
    for estimator in (nvil, moving):
        warm_up_baseline(model, x, estimator)
    estimators = {"exact": Enumerate(), "sf": ScoreFunction(), "sf+moving-average": moving, "sf+nvil": nvil,
                  "gumbel t=0.1": GumbelSoftmax(0.1), "gumbel t=0.5": GumbelSoftmax(0.5),
                  "gumbel t=1": GumbelSoftmax(1.0), "st-gumbel t=0.5": GumbelSoftmax(0.5, hard=True),
                  "sf x4": ScoreFunction(), "sf+loo x4": ScoreFunction(LeaveOneOutBaseline())}
    samples = {"sf x4": 4, "sf+loo x4": 4}  # draws of z per image within one gradient estimate
    rows = []
    for name, estimator in estimators.items():
        draws = gradient_draws(model, x, estimator, params, 1 if name == "exact" else args.draws,
                               samples.get(name, 1))
        rows.append(summarise(name, draws, exact).as_dict())
    for r in rows:
        print(f"{r['name']:>18}  bias {r['bias']:.3f} (noise {r['bias_se']:.3f})  variance {r['variance']:.4g}"
              f"  snr {r['snr']:.3g}", file=sys.stderr)
        if r["name"] != "exact":
            slug = r["name"].replace(" t=", "_t").replace(" x", "_x").replace("+", "_").replace("-", "_")
            notes = (f"categorical VAE 3 x 10, {args.batch} test images, {args.draws} draws, after {args.steps} "
                     f"training steps (entropy of q {entropy:.2f} nats); sampling noise alone gives bias ~ "
                     f"{r['bias_se']:.3f}")
            record(SCRIPT, f"catvae_grad_variance_{slug}", r["variance"], "trace of covariance", command, notes)
            record(SCRIPT, f"catvae_grad_bias_{slug}", r["bias"], "relative to |exact gradient|", command, notes)

    config, gaussian = trained("gaussian", GAUSSIAN, args.steps, args.seed)
    params = list(gaussian.encoder.parameters())
    torch.manual_seed(args.seed)
    pathwise = gradient_draws(gaussian, x, Pathwise(), params, args.draws)
    reference = pathwise.mean(0)
    score = gradient_draws(gaussian, x, ScoreFunction(), params, args.draws)
    g_rows = [summarise("pathwise", pathwise, reference).as_dict(), summarise("sf", score, reference).as_dict()]
    ratio = g_rows[1]["variance"] / g_rows[0]["variance"]
    print(f"Gaussian: score-function / pathwise variance = {ratio:.4g}; sf bias {g_rows[1]['bias']:.3f} "
          f"(noise {g_rows[1]['bias_se']:.3f})", file=sys.stderr)
    record(SCRIPT, "estimator_variance_ratio_sf_vs_pathwise", ratio, "ratio", command,
           f"Gaussian VAE z = 10, encoder gradient of the batch-mean ELBO, {args.batch} test images, {args.draws} "
           f"draws each; sf bias vs the pathwise mean {g_rows[1]['bias']:.3f} (sampling noise "
           f"{g_rows[1]['bias_se']:.3f})")
    out = ROOT / "docs" / "images" / "estimator_variance.png"
    estimator_variance(rows + [{**r, "name": f"gaussian {r['name']}"} for r in g_rows], out,
                       title=f"encoder-gradient variance, {args.batch} MNIST test images, {args.draws} draws")
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
