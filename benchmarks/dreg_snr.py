"""Doubly reparameterised gradients (Tucker et al. 2019) against the standard IWAE gradient, on MNIST (issue 2's
IWAE runs would train with either).

    python benchmarks/dreg_snr.py [--draws 500] [--batch 32] [--steps 3000]

The 2x200-tanh, z = 50 model of Burda et al. (2016) is trained for ``--steps`` steps of IWAE (k = 5) by the one
trainer, so that the gradients are taken at a trained point. On a fixed batch of test images, ``--draws`` draws of
the encoder's gradient of the batch-mean bound ``L_k`` are taken with each estimator for k = 1, 5, 50 (at k = 1,
DReG is the "sticking the landing" gradient of Roeder et al. 2017). Reported per k: the signal-to-noise ratio
``|| mean g || / sqrt(trace Cov g)`` of each (:mod:`vaekit.diagnostics`), their ratio, and the distance between
the two mean gradients in units of its standard error (both estimators are unbiased for the same gradient, so it
should be of order 1). Rainforth et al. (2018) show the standard estimator's SNR falling like 1/sqrt(k).
Figures: ``dreg_encoder_grad_snr_k<k>``, ``iwae_encoder_grad_snr_k<k>``, ``dreg_snr_gain_k<k>``,
``dreg_mean_gap_in_se_k<k>``.
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
from vaekit.diagnostics import gradient_draws, summarise  # noqa: E402
from vaekit.estimators import DoublyReparameterized  # noqa: E402
from vaekit.runs import eval_inputs, load_data, load_model  # noqa: E402
from vaekit.train import train  # noqa: E402

SCRIPT = "dreg_snr"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = f"python benchmarks/dreg_snr.py --draws {args.draws} --batch {args.batch} --steps {args.steps}"

    config = load_recipe(ROOT / "recipes" / "burda_iwae5.toml",
                         [f"train.max_steps={args.steps}", "train.val_every=0", "eval.plots=false",
                          f"train.seed={args.seed}", f"train.threads={args.threads}", "name=dreg_snr"])
    run_dir = ROOT / "runs" / "dreg_snr"
    shutil.rmtree(run_dir, ignore_errors=True)  # a fresh, seeded model every time
    if train(config, run_dir, progress=False).interrupted:
        sys.exit(130)
    _, model, _ = load_model(run_dir)
    x = eval_inputs(config, load_data(config.data), "test")[: args.batch]
    params = list(model.encoder.parameters())
    notes = (f"Burda et al.'s 2x200 tanh, z = 50 VAE after {args.steps} steps of IWAE k = 5 (batch 20); encoder "
             f"gradient of the batch-mean L_k on {args.batch} test images, {args.draws} draws per estimator")
    for k in (1, 5, 50):
        torch.manual_seed(args.seed)
        standard = gradient_draws(model, x, None, params, args.draws, samples=k, objective="iwae")
        dreg = gradient_draws(model, x, DoublyReparameterized(), params, args.draws, samples=k, objective="iwae")
        reference = standard.double().mean(0)
        s, d = summarise("iwae", standard, reference), summarise("dreg", dreg, reference)
        gap = (dreg.double().mean(0) - reference).norm().item() / math.sqrt((s.variance + d.variance) / args.draws)
        print(f"k = {k:2d}: SNR standard {s.snr:.3f}, DReG {d.snr:.3f} ({d.snr / s.snr:.2f}x); mean gap "
              f"{gap:.2f} standard errors", file=sys.stderr)
        record(SCRIPT, f"iwae_encoder_grad_snr_k{k}", s.snr, "ratio", command, notes)
        record(SCRIPT, f"dreg_encoder_grad_snr_k{k}", d.snr, "ratio", command, notes)
        record(SCRIPT, f"dreg_snr_gain_k{k}", d.snr / s.snr, "ratio", command, notes)
        record(SCRIPT, f"dreg_mean_gap_in_se_k{k}", gap, "standard errors", command,
               notes + "; || mean DReG - mean standard || over sqrt(trace(Cov_DReG + Cov_standard) / draws), its "
               "typical size when both estimate the same gradient: about 1 for unbiased estimators")


if __name__ == "__main__":
    main()
