"""What computing denormal floats as zero (``train.flush_denormals``, :mod:`vaekit.allocator`) buys the trainer.

A Bernoulli decoder trained for long pushes the logits of always-off pixels far below -87, where
``sigmoid(logit) - x`` is a float32 denormal; the GEMMs of the decoder's weight gradient then take the CPU's
slow path. This times ``--steps`` training steps of Mnih & Gregor's SBN 200-200 by wake-sleep (the recipe of
``benchmarks/mnist_sbn.py --layers 2``) started from two states: the weights of a trained run (``--trained``,
default the committed 500-epoch wake-sleep run, its optimiser fresh) and a fresh initialisation, each with the
setting off and on, every timed run in a fresh process (the mode is process-wide), alternated ``--repeats``
times, one torch thread. Figures: the ratio of median times (off over on) per state, and the share of the
generative net's weight-gradient entries that are denormal at the trained state (one batch, setting off).

    python benchmarks/denormals.py [--steps 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, in_fresh_process, record  # noqa: E402

SCRIPT = "denormals"
RECIPE = ROOT / "recipes" / "sbn200x3.toml"
TRAINED = "benchmarks/runs/sbn2/ws"
TINY = float(torch.finfo(torch.float32).tiny)  # the smallest normal float32, 2^-126


def _config(steps: int, flush: bool, trained: str):
    from vaekit.config import load_recipe

    return load_recipe(RECIPE, ["model.hierarchy=[200]", "train.objective=wake-sleep", f"train.max_steps={steps}",
                                "train.val_every=0", "train.threads=1", f"train.flush_denormals={str(flush).lower()}"]
                       + ([f"train.init_from={ROOT / trained}"] if trained else []))


def _timed(steps: int, flush: bool, trained: str) -> float:
    """Seconds of ``steps`` training steps (child process; the data are loaded before the clock starts)."""
    from vaekit.runs import load_data
    from vaekit.train import train

    torch.set_num_threads(1)
    config = _config(steps, flush, trained)
    data = load_data(config.data)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        train(config, Path(tmp) / "run", data=data, progress=False)
        return time.perf_counter() - start


def denormal_share(trained: str) -> float:
    """Share of the entries of the generative net's gradients (its weights onto the 784 pixels) that are float32
    denormals, for one wake-phase batch of the trained run's model, the setting off."""
    from vaekit.objectives import elbo
    from vaekit.runs import load_data, load_model

    torch.set_flush_denormal(False)
    config, model, _ = load_model(ROOT / trained)
    data = load_data(config.data)
    images = data.train[:config.train.batch_size].float() / data.max_value
    x = torch.bernoulli(images, generator=torch.Generator().manual_seed(0))  # binarised as in training
    model.zero_grad(set_to_none=True)
    elbo(model, x).loss.mean().backward()
    grads = [p.grad for name, p in model.named_parameters() if p.grad is not None and 784 in p.shape]
    entries = torch.cat([g.flatten() for g in grads])
    return float(((entries != 0) & (entries.abs() < TINY)).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trained", default=TRAINED, help="a trained SBN 200-200 run directory (relative to the repo)")
    args = parser.parse_args()
    command = f"python benchmarks/denormals.py --steps {args.steps} --repeats {args.repeats}" + (
        f" --trained {args.trained}" if args.trained != TRAINED else "")
    for state, trained in (("trained", args.trained), ("fresh", "")):
        times = {False: [], True: []}
        for _ in range(args.repeats):
            for flush in (False, True):
                times[flush].append(in_fresh_process(_timed, args.steps, flush, trained))
        off, on = statistics.median(times[False]), statistics.median(times[True])
        print(f"{state}: {args.steps} steps in {off:.2f} s with denormals, {on:.2f} s flushed: {off / on:.2f}x",
              file=sys.stderr)
        start = f"the weights of {args.trained} (its optimiser fresh)" if trained else "a fresh initialisation"
        record(SCRIPT, f"sbn2_ws_{state}_flush_denormals_speedup", off / on, "ratio", command,
               f"SBN 200-200 by wake-sleep, batch 20, one thread, {args.steps} steps from {start}; medians of "
               f"{args.repeats} alternated runs, each in a fresh process: {off:.2f} s with denormals computed, "
               f"{on:.2f} s flushed to zero (train.flush_denormals)")
    share = in_fresh_process(denormal_share, args.trained)
    print(f"denormal share of the pixel-side gradients at {args.trained}: {share:.2%}", file=sys.stderr)
    record(SCRIPT, "sbn2_ws_trained_denormal_gradient_share", 100 * share, "%", command,
           f"entries of the gradients of the parameters with a 784-pixel side (one batch of 20 training images, "
           f"ELBO gradient, model of {args.trained}) that are float32 denormals (nonzero, below 2^-126)")


if __name__ == "__main__":
    main()
