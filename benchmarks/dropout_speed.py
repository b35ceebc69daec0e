"""What drawing dropout masks by comparing uniforms (``vaekit.nets.dropout``) buys the PTB trainer.

The sentence VAE of ``recipes/ptb_vae_texar.toml`` (embedding and LSTM 256, tied output layer, dropout 0.5 on the
decoder's inputs and outputs and the encoder's inputs, free bits 0.25 nats a dimension, constant rate) trains one
epoch on the first ``--sentences`` PTB training sentences, once with vaekit's dropout and once with torch's
(``nn.Dropout`` / ``F.dropout``, whose mask comes from a per-element Bernoulli sampler), in ``--precision``, one
torch thread, every timed run in a fresh process after an untimed warm-up epoch, alternated ``--repeats`` times.
Figure: the ratio of median training times (torch's over vaekit's). Both draw the same distribution of masks;
only the random stream differs, so the two runs' losses differ by sampling noise.

    python benchmarks/dropout_speed.py [--sentences 1600] [--repeats 3] [--precision bfloat16]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, in_fresh_process, record  # noqa: E402

SCRIPT = "dropout_speed"
RECIPE = ROOT / "recipes" / "ptb_vae_texar.toml"


def _use_torch_dropout() -> None:
    import torch.nn.functional as F
    from torch import nn

    from vaekit.models import sentence_vae
    from vaekit.nets import recurrent

    sentence_vae.Dropout = nn.Dropout
    recurrent.dropout = lambda w, p: F.dropout(w, p)


def _seconds(torch_dropout: bool, sentences: int, precision: str) -> tuple[float, float]:
    """Seconds of one training epoch (after a warm-up epoch in the same process) and its mean training loss."""
    from vaekit.allocator import retain_freed_memory
    from vaekit.config import load_recipe
    from vaekit.runs import load_data
    from vaekit.train import train

    torch.set_num_threads(1)
    retain_freed_memory()
    if torch_dropout:
        _use_torch_dropout()
    config = load_recipe(RECIPE, [f"data.limit={sentences}", "data.eval_limit=64", "train.epochs=1",
                                  "train.val_every=0", "train.lr_schedule=constant", "train.kl_schedule=none",
                                  "train.free_bits=0.25", "train.threads=1", f"train.precision={precision}"])
    data = load_data(config.data)
    with tempfile.TemporaryDirectory() as tmp:
        train(config, Path(tmp) / "warm", data=data, progress=False)
        start = time.perf_counter()
        train(config, Path(tmp) / "run", data=data, progress=False)
        seconds = time.perf_counter() - start
        records = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines() if line]
    return seconds, records[-1]["train_loss"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=1600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="bfloat16", choices=["float32", "bfloat16"])
    args = parser.parse_args()
    command = (f"python benchmarks/dropout_speed.py --sentences {args.sentences} --repeats {args.repeats} "
               f"--precision {args.precision}")
    times = {True: [], False: []}
    losses = {}
    for _ in range(args.repeats):
        for torch_dropout in (True, False):
            seconds, losses[torch_dropout] = in_fresh_process(_seconds, torch_dropout, args.sentences, args.precision)
            times[torch_dropout].append(seconds)
    ref, ours = statistics.median(times[True]), statistics.median(times[False])
    print(f"one epoch of {args.sentences} sentences: {ref:.2f} s with torch's dropout, {ours:.2f} s with vaekit's "
          f"({ref / ours:.3f}x); training loss {losses[True]:.2f} / {losses[False]:.2f}", file=sys.stderr)
    suffix = "" if args.precision == "bfloat16" else "_fp32"
    record(SCRIPT, f"ptb_dropout_uniform_mask_train_speedup{suffix}", ref / ours, "ratio", command,
           f"recipes/ptb_vae_texar.toml (dropout 0.5, free bits), one epoch of {args.sentences} PTB sentences in "
           f"{args.precision}, one thread: {ref:.2f} s with torch's nn.Dropout / F.dropout, {ours:.2f} s with "
           f"vaekit.nets.dropout (mask 1[u >= p]); medians of {args.repeats} alternated fresh processes, each after "
           f"a warm-up epoch; mean training loss {losses[True]:.2f} and {losses[False]:.2f}")


if __name__ == "__main__":
    main()
