"""What the trained PTB sentence VAE does, shown the way Bowman et al. (2016) show it: sentences decoded from
the prior, from one sentence's posterior, along homotopies between two sentences' codes, and completions of
sentences whose last 20% was removed, beside the LSTM LM's. Writes ``docs/ptb_samples.md``.

Needs the trained rows of ``benchmarks/ptb_table.py`` (``runs/ptb_table/vae`` and ``runs/ptb_table/lm``).
Every draw is seeded, so the page changes only when the models do.

    python benchmarks/ptb_samples.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, commit  # noqa: E402

from vaekit.generate import homotopy, impute, posterior_sentences, sample_sentences  # noqa: E402
from vaekit.imputation import split_ending  # noqa: E402
from vaekit.runs import load_data, load_model, run_vocab  # noqa: E402

PAGE = ROOT / "docs" / "ptb_samples.md"


def _line(words: list[str]) -> str:
    return " ".join(words) if words else "(empty)"


def main() -> None:
    config, vae, state = load_model(ROOT / "runs" / "ptb_table" / "vae")
    _, lm, lm_state = load_model(ROOT / "runs" / "ptb_table" / "lm")
    vocab = run_vocab(state)
    test = [vocab.decode(s) for s in load_data(config.data).test]
    chosen = [s for s in test if 6 <= len(s) <= 14]  # short enough to read, long enough to vary
    out = [
        "# The PTB sentence VAE at work",
        "",
        f"Written by `python benchmarks/ptb_samples.py` (commit {commit()}) from `runs/ptb_table/vae` "
        f"({state['epoch']} epochs) and `runs/ptb_table/lm` ({lm_state['epoch']} epochs), the two rows of "
        "`benchmarks/ptb_table.py` (recipe `recipes/ptb_vae.toml`). Test sentences are from the PTB test split; "
        "`<unk>` is the corpus's own out-of-vocabulary token, `N` its number token.",
        "",
        "## From the prior",
        "",
        "z ~ N(0, I), then greedy decoding (Bowman et al., Table 7), beam search (width 5), and ancestral "
        "sampling at temperature 1. The LM has no z: its ancestral samples are shown for comparison.",
        "",
    ]
    for method in ("greedy", "beam", "sample"):
        out.append(f"**VAE, {method}**")
        out.append("")
        out += [f"* {_line(g.words)}" for g in sample_sentences(vae, vocab, n=6, method=method, seed=1)]
        out.append("")
    out += ["**LM, sample**", ""]
    out += [f"* {_line(g.words)}" for g in sample_sentences(lm, vocab, n=6, method="sample", seed=1)]
    out += ["", "## From one sentence's posterior", "",
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
            "rounds of iterated conditional modes between z and the missing words, the LM by beam search alone "
            "(Bowman et al., Sec. 4.2, whose adversarial evaluation is `benchmarks/ptb_imputation.py`). Beam search "
            "ranks by total log-probability, which favours ending at once; the last column ranks the VAE's "
            "hypotheses by log-probability per token instead (`--length-penalty 1`).", "",
            "| beginning | true ending | VAE | LM | VAE, per-token ranking |", "|---|---|---|---|---|"]
    for sentence in chosen[9:17]:
        prefix, ending = split_ending(sentence)
        ours = impute(vae, vocab, " ".join(prefix)).words[len(prefix):]
        theirs = impute(lm, vocab, " ".join(prefix)).words[len(prefix):]
        normalised = impute(vae, vocab, " ".join(prefix), length_penalty=1.0).words[len(prefix):]
        out.append(f"| {_line(prefix)} | {_line(ending)} | {_line(ours)} | {_line(theirs)} | {_line(normalised)} |")
    PAGE.write_text("\n".join(out) + "\n")
    print(f"wrote {PAGE.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
