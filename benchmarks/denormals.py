"""Whether computing denormal floats as zero (``torch.set_flush_denormal``: the CPU's flush-to-zero and
denormals-are-zero modes) would speed up the trainer, as the PyTorch CPU performance guide suggests it may.

A Bernoulli decoder trained for long pushes the logits of some pixels below -87, where ``sigmoid(logit) - x`` is
a float32 denormal, and x86 cores compute with denormal operands through a slow path. This times ``--steps`` training steps of Mnih & Gregor's SBN 200-200 by wake-sleep (the recipe of
``benchmarks/mnist_sbn.py --layers 2``) started from two states: the weights of a trained run (``--trained``,
default the committed 500-epoch wake-sleep run, its optimiser fresh) and a fresh initialisation, each with the
mode off and on (set in the timed process before training; the mode is process-wide), every timed run in a
fresh process, alternated ``--repeats`` times, one torch thread. Figures: the ratio of median times (off over
on) per state, and the share of denormal entries in the gradient of the decoder's pixel logits at the trained
state (one batch, mode off). vaekit's trainer leaves the mode alone: measured here, it buys too little for a
process-wide change of the floating-point arithmetic (BENCHMARKS.md).

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


def _config(steps: int, trained: str):
    from vaekit.config import load_recipe

    return load_recipe(RECIPE, ["model.hierarchy=[200]", "train.objective=wake-sleep", f"train.max_steps={steps}",
                                "train.val_every=0", "train.threads=1"]
                       + ([f"train.init_from={ROOT / trained}"] if trained else []))


def _timed(steps: int, flush: bool, trained: str) -> float:
    """Seconds of ``steps`` training steps (child process; the data are loaded before the clock starts)."""
    from vaekit.runs import load_data
    from vaekit.train import train

    torch.set_num_threads(1)
    torch.set_flush_denormal(flush)
    config = _config(steps, trained)
    data = load_data(config.data)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        train(config, Path(tmp) / "run", data=data, progress=False)
        return time.perf_counter() - start


def denormal_share(trained: str) -> float:
    """Share of the entries of the gradient of the decoder's pixel logits ``(batch, 784)`` that are float32
    denormals, for one batch of training images under the trained run's model (ELBO gradient at one sample of h, seed 0,
    mode off)."""
    from vaekit.objectives import elbo
    from vaekit.runs import load_data, load_model

    torch.set_flush_denormal(False)
    torch.manual_seed(0)  # the latent sample h ~ q(h|x)
    config, model, _ = load_model(ROOT / trained)
    data = load_data(config.data)
    images = data.train[:config.train.batch_size].float() / data.max_value
    x = torch.bernoulli(images, generator=torch.Generator().manual_seed(0))  # binarised as in training
    logits = []
    pixel_layer = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 784]

    def keep(module, args, out):  # (a hook that returns nothing leaves the output as it is)
        out.retain_grad()
        logits.append(out)

    pixel_layer[-1].register_forward_hook(keep)
    elbo(model, x).loss.mean().backward()
    grad = logits[0].grad
    return float(((grad != 0) & (grad.abs() < TINY)).float().mean())


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
               f"{on:.2f} s flushed to zero (torch.set_flush_denormal(True) in the timed process)")
    share = in_fresh_process(denormal_share, args.trained)
    print(f"denormal share of the pixel logits' gradient at {args.trained}: {share:.3%}", file=sys.stderr)
    record(SCRIPT, "sbn2_ws_trained_denormal_logit_grad_share", 100 * share, "%", command,
           f"entries of the gradient of the decoder's pixel logits (one batch of 20 training images binarised with "
           f"seed 0, ELBO gradient, model of {args.trained}) that are float32 denormals (nonzero, below 2^-126)")


if __name__ == "__main__":
    main()
