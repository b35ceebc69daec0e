"""Bowman et al. (2016, Sec. 4.2) imputation on the Penn Treebank test set: the last 20% of each sentence
is removed and completed by the VAE (beam search with iterated conditional modes) and by the LSTM LM
(beam search); two classifiers, a unigram logistic regression (sees which words occur) and an LSTM (also
sees their order), are trained on half of the (true, imputed) pairs and their errors on the other half are
reported (higher is better; 50% = indistinguishable). ``--length-penalty P`` ranks beam hypotheses by
log-probability / length ** P (the raw sum favours ending the sentence at once).

Needs trained runs: by default the rows of ``benchmarks/ptb_table.py`` (``runs/ptb_table/vae`` and
``runs/ptb_table/lm``); ``--rows NAME=DIR,...`` names any others (a VAE and the LM of the same recipe, e.g.
``texar_vae_pretrained=benchmarks/runs/ptb_texar_vae_pretrained,texar_lm=benchmarks/runs/ptb_texar_lm``), each
recorded as ``ptb_<NAME>_imputation_*``. A run with an encoder completes by beam search with ``--icm`` rounds of
iterated conditional modes between z and the missing words; an LM by beam search alone.

    python benchmarks/ptb_imputation.py [--sentences 1000] [--rows vae,lm] [--length-penalty 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record, shown_path  # noqa: E402

from vaekit.imputation import adversarial_error, impute_endings  # noqa: E402
from vaekit.runs import load_data, load_model, run_vocab  # noqa: E402

SCRIPT = "ptb_imputation"


def parse_rows(rows: str) -> list[tuple[str, Path]]:
    """``"vae,lm"`` or ``"name=dir,..."`` -> [(name, run directory)]: a bare name is ``runs/ptb_table/<name>``, a
    relative directory is taken from the repository root."""
    parsed = []
    for item in filter(None, (part.strip() for part in rows.split(","))):
        name, _, directory = item.partition("=")
        parsed.append((name, ROOT / directory if directory else ROOT / "runs" / "ptb_table" / name))
    return parsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=1000, help="first N test sentences of 2+ words")
    parser.add_argument("--beam", type=int, default=5)
    parser.add_argument("--icm", type=int, default=3)
    parser.add_argument("--rows", default="vae,lm",
                        help="comma-separated NAME (the run runs/ptb_table/NAME) or NAME=DIR (any run directory)")
    parser.add_argument("--length-penalty", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (decoding runs one small step at a time: more threads mostly wait)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = f"python benchmarks/ptb_imputation.py --sentences {args.sentences}" + (
        f" --length-penalty {args.length_penalty:g}" if args.length_penalty else "") + (
        f" --rows {args.rows}" if args.rows != parser.get_default("rows") else "")
    suffix = f"_lp{args.length_penalty:g}" if args.length_penalty else ""
    for row, run in parse_rows(args.rows):
        if not (run / "checkpoint.pt").exists():
            parser.error(f"--rows {row}: no checkpoint.pt in {run} (train it first, e.g. with benchmarks/ptb_table.py)")
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
                 + (f", {args.icm} ICM rounds" if getattr(model, "encoder", None) is not None else "")
                 + (f", length penalty {args.length_penalty:g}" if args.length_penalty else "")
                 + f"; imputation {seconds:.0f} s; model {shown_path(run)} at {state['epoch']} epochs")
        for classifier in ("unigram", "lstm"):
            error = adversarial_error(true, generated, classifier=classifier)
            record(SCRIPT, f"ptb_{row}_imputation_{classifier}_adversarial_error{suffix}", error, "fraction", command,
                   notes)
        print("examples:", *(" ".join(g) for g in generated[:5]), sep="\n  ", file=sys.stderr)


if __name__ == "__main__":
    main()
