"""What the trained PTB sentence VAE does, shown the way Bowman et al. (2016) show it: sentences decoded from
the prior, from one sentence's posterior, along homotopies between two sentences' codes, and completions of
sentences whose last 20% was removed, beside the LSTM LM's. Writes ``docs/ptb_samples.md``.

Needs a trained sentence VAE and, for the LM's columns, the LM of the same decoder: by default the rows of
``benchmarks/ptb_table.py`` (``runs/ptb_table/vae`` and ``runs/ptb_table/lm``); ``--vae`` / ``--lm`` name others
(without an LM run the page shows the VAE alone and says so). Every draw is seeded, so the page changes only when
the models do.

    python benchmarks/ptb_samples.py
    python benchmarks/ptb_samples.py --vae benchmarks/runs/ptb_vae_pretrained --lm runs/ptb_table/lm
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, commit, shown_path  # noqa: E402

from vaekit.generate import homotopy, impute, posterior_sentences, sample_sentences  # noqa: E402
from vaekit.imputation import split_ending  # noqa: E402
from vaekit.runs import load_data, load_model, run_vocab  # noqa: E402

PAGE = ROOT / "docs" / "ptb_samples.md"


def _line(words: list[str]) -> str:
    return " ".join(words) if words else "(empty)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vae", type=Path, default=ROOT / "runs" / "ptb_table" / "vae", help="a sentence-VAE run")
    parser.add_argument("--lm", type=Path, default=ROOT / "runs" / "ptb_table" / "lm",
                        help="the LM of the same decoder (left out of the page when there is no run there)")
    args = parser.parse_args()
    vae_dir, lm_dir = args.vae.resolve(), args.lm.resolve()
    config, vae, state = load_model(vae_dir)
    lm, lm_state = load_model(lm_dir)[1:] if (lm_dir / "checkpoint.pt").exists() else (None, None)
    vocab = run_vocab(state)
    test = [vocab.decode(s) for s in load_data(config.data).test]
    chosen = [s for s in test if 6 <= len(s) <= 14]  # short enough to read, long enough to vary
    out = [
        "# The PTB sentence VAE at work",
        "",
        f"Written by `python benchmarks/ptb_samples.py --vae {shown_path(vae_dir)} --lm {shown_path(lm_dir)}` (commit "
        f"{commit()}) from the sentence VAE `{shown_path(vae_dir)}` (`{config.name}`, {state['epoch']} epochs) and "
        + (f"the LM of the same decoder `{shown_path(lm_dir)}` ({lm_state['epoch']} epochs). " if lm is not None else
           f"no LM (there was no run at `{shown_path(lm_dir)}`, so the LM's columns are left out). ")
        + "Test sentences are from the PTB test split; `<unk>` is the corpus's own out-of-vocabulary token, `N` its "
        "number token.",
        "",
        "## From the prior",
        "",
        "z ~ N(0, I), then greedy decoding (Bowman et al., Table 7), beam search (width 5), and ancestral "
        "sampling at temperature 1." + (" The LM has no z: its ancestral samples are shown for comparison."
                                        if lm is not None else ""),
        "",
    ]
    for method in ("greedy", "beam", "sample"):
        out.append(f"**VAE, {method}**")
        out.append("")
        out += [f"* {_line(g.words)}" for g in sample_sentences(vae, vocab, n=6, method=method, seed=1)]
        out.append("")
    if lm is not None:
        out += ["**LM, sample**", ""]
        out += [f"* {_line(g.words)}" for g in sample_sentences(lm, vocab, n=6, method="sample", seed=1)]
        out.append("")
    out += ["## From one sentence's posterior", "",
            "Greedy decodes of the posterior mean (first line) and of four draws z ~ q(z|x) (Bowman et al., "
            "Sec. 5.1: what the code of a sentence keeps of it).", ""]
    for sentence in chosen[:3]:
        out.append(f"**{_line(sentence)}**")
        out.append("")
        out += [f"* {_line(g.words)}" for g in posterior_sentences(vae, vocab, " ".join(sentence), n=5, seed=1)]
        out.append("")
    out += ["## Homotopies", "",
            "Greedy decodes of z(t) = (1 - t) mu(x1) + t mu(x2) at t = 0, 1/4, ..., 1, between the posterior means "
            "of two test sentences (Bowman et al., Table 8).", ""]
    for first, second in [(chosen[3], chosen[4]), (chosen[5], chosen[6]), (chosen[7], chosen[8])]:
        out.append(f"**{_line(first)}** -> **{_line(second)}**")
        out.append("")
        out += [f"{i}. {_line(g.words)}" for i, g in
                enumerate(homotopy(vae, vocab, " ".join(first), " ".join(second), steps=5), 1)]
        out.append("")
    out += ["## Completing sentences", "",
            "The last 20% of a test sentence removed and completed by beam search (width 5): the VAE with three "
            "rounds of iterated conditional modes between z and the missing words" + (", the LM by beam search alone "
            if lm is not None else " ") +
            "(Bowman et al., Sec. 4.2, whose adversarial evaluation is `benchmarks/ptb_imputation.py`). Beam search "
            "ranks by total log-probability, which favours ending at once; the last column ranks the VAE's "
            "hypotheses by log-probability per token instead (`--length-penalty 1`).", "",
            "| beginning | true ending | VAE |" + (" LM |" if lm is not None else "") + " VAE, per-token ranking |",
            "|---|---|---|" + ("---|" if lm is not None else "") + "---|"]
    for sentence in chosen[9:17]:
        prefix, ending = split_ending(sentence)
        ours = impute(vae, vocab, " ".join(prefix)).words[len(prefix):]
        theirs = f" {_line(impute(lm, vocab, ' '.join(prefix)).words[len(prefix):])} |" if lm is not None else ""
        normalised = impute(vae, vocab, " ".join(prefix), length_penalty=1.0).words[len(prefix):]
        out.append(f"| {_line(prefix)} | {_line(ending)} | {_line(ours)} |{theirs} {_line(normalised)} |")
    PAGE.write_text("\n".join(out) + "\n")
    print(f"wrote {PAGE.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
