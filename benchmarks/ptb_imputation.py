"""Bowman et al. (2016, Sec. 4.2) imputation on the Penn Treebank test set: the last 20% of each sentence
is removed and completed by the VAE (beam search with iterated conditional modes) and by the LSTM LM
(beam search); two classifiers, a unigram logistic regression (sees which words occur) and an LSTM (also
sees their order), are trained on half of the (true, imputed) pairs and their errors on the other half are
reported (higher is better; 50% = indistinguishable). ``--length-penalty P`` ranks beam hypotheses by
log-probability / length ** P (the raw sum favours ending the sentence at once).

Needs the trained rows of ``benchmarks/ptb_table.py`` (``runs/ptb_table/vae`` and ``runs/ptb_table/lm``).

    python benchmarks/ptb_imputation.py [--sentences 1000] [--rows vae,lm] [--length-penalty 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record  # noqa: E402

from vaekit.imputation import adversarial_error, impute_endings  # noqa: E402
from vaekit.runs import load_data, load_model, run_vocab  # noqa: E402

SCRIPT = "ptb_imputation"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=1000, help="first N test sentences of 2+ words")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--icm", type=int, default=3)
    parser.add_argument("--rows", default="vae,lm", help="which trained rows to test (comma-separated)")
    parser.add_argument("--length-penalty", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (decoding runs one small step at a time: more threads mostly wait)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = f"python benchmarks/ptb_imputation.py --sentences {args.sentences}" + (
        f" --length-penalty {args.length_penalty:g}" if args.length_penalty else "")
    suffix = f"_lp{args.length_penalty:g}" if args.length_penalty else ""
    for row in args.rows.split(","):
        run = ROOT / "runs" / "ptb_table" / row
        config, model, state = load_model(run)
        vocab = run_vocab(state)
        data = load_data(config.data)
        true = [vocab.decode(s) for s in data.test]
        true = [s for s in true if len(s) >= 2][: args.sentences]
        start = time.perf_counter()
        generated = impute_endings(model, vocab, true, beam=args.beam, icm=args.icm,
                                   length_penalty=args.length_penalty)
        seconds = time.perf_counter() - start
        notes = (f"{len(true)} PTB test sentences of 2+ words, last 20% removed; beam {args.beam}"
                 + (f", {args.icm} ICM rounds" if row == "vae" else "")
                 + (f", length penalty {args.length_penalty:g}" if args.length_penalty else "")
                 + f"; imputation {seconds:.0f} s; model {run.relative_to(ROOT)} at {state['epoch']} epochs")
        for classifier in ("unigram", "lstm"):
            error = adversarial_error(true, generated, classifier=classifier)
            record(SCRIPT, f"ptb_{row}_imputation_{classifier}_adversarial_error{suffix}", error, "fraction", command,
                   notes)
        print("examples:", *(" ".join(g) for g in generated[:5]), sep="\n  ", file=sys.stderr)


if __name__ == "__main__":
    main()
