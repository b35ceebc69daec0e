"""Genre-conditional sentences on the Brown corpus (issue 5): a sentence CVAE against the genre-conditional
language model with the same decoder; NLL, perplexity, KL, and how recognisable each genre's generated
sentences are.

    python benchmarks/brown_cvae.py --variant cvae      # the recipe (~40 min of training on one core)
    python benchmarks/brown_cvae.py --variant clm       # the conditional LSTM LM baseline
    python benchmarks/brown_cvae.py --variant all

Every variant is ``recipes/brown_cvae.toml`` with the overrides in ``VARIANTS``; a run lives in
``runs/brown/<variant>/`` and resumes exactly when the command is repeated. Scoring:

* ``-log p(x|c)`` per test sentence (importance-sampled with the recipe's K for the CVAE, exact for the
  LM), perplexity over words + ``</s>``, and KL(q(z|x,c) || p(z|c));
* genre accuracy: for each of the 15 genres, ``--per-genre`` sentences are generated (``z ~ p(z|c)``,
  ancestral sampling at temperature 1) and classified by a fastText classifier
  (:mod:`vaekit.text_classifier`) trained on the real training sentences; the figure is the fraction
  classified as the genre they were generated for. Beside it: the same classifier's balanced accuracy on
  real test sentences (what a perfect genre-conditional generator would score) and chance, 1/15.

Figures: ``brown_<variant>_test_{nll,ppl,kl}``, ``brown_<variant>_genre_accuracy``,
``brown_classifier_real_test_balanced_accuracy``; the ``cvae`` rows are the issue's ``brown_cvae_*``.
A few generated sentences per genre go to ``docs/brown_samples.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, record, train_or_resume  # noqa: E402

from vaekit.config import load_recipe  # noqa: E402
from vaekit.report import evaluate_run, training_status  # noqa: E402
from vaekit.runs import load_data, load_model, run_vocab  # noqa: E402
from vaekit.text_classifier import balanced_accuracy, generated_label_accuracy, train_classifier  # noqa: E402

SCRIPT = "brown_cvae"
RECIPE = ROOT / "recipes" / "brown_cvae.toml"
VARIANTS = {
    "cvae": [],                                                                    # the recipe
    "clm": ["model.arch=lstm-lm", "train.objective=mle", "train.kl_schedule=none", "train.word_dropout=0"],
    "cvae_bow": ["model.bag_of_words=true"],                                       # + Zhao et al. (2017)
}
SHOWN_PER_GENRE = 3


def genre_classifier(data, seed: int = 0):
    """fastText on the real training sentences (without ``</s>``); its balanced accuracy on real test ones."""
    strip = lambda sentences: [s[:-1].tolist() for s in sentences]
    classes = len(data.label_names)
    model, _ = train_classifier(strip(data.train), data.labels["train"], strip(data.val), data.labels["val"],
                                len(data.vocab), classes, seed=seed)
    real = balanced_accuracy(model.predict(strip(data.test)), torch.tensor(data.labels["test"]), classes)
    return model, real


def genre_accuracy(run_dir: Path, classifier, per_genre: int, seed: int) -> tuple[float, dict[str, list[str]]]:
    """Fraction of generated sentences classified as the genre they were generated for (balanced: the same
    number per genre), and a few sentences of each genre."""
    _, model, state = load_model(run_dir)
    accuracy, sentences = generated_label_accuracy(model, run_vocab(state), classifier, per_genre, seed)
    return accuracy, {name: s[:SHOWN_PER_GENRE] for name, s in zip(state["label_names"], sentences)}


def run_variant(name: str, classifier, per_genre: int) -> None:
    config = load_recipe(RECIPE, VARIANTS[name] + ([f"name=brown_{name}"] if VARIANTS[name] else []))
    run_dir = ROOT / "runs" / "brown" / name
    train_or_resume(config, run_dir)
    report = evaluate_run(run_dir, split="test")
    command = f"python benchmarks/brown_cvae.py --variant {name} --per-genre {per_genre}"
    status = training_status(report)
    latent = report.get("k") is not None
    estimate = f"importance-sampled, K = {report['k']}" if latent else "exact"
    notes = (f"{report['epochs']} of {config.train.epochs} epochs ({status}), {report['train_seconds'] / 3600:.2f} h "
             f"of training; {report['n']} test sentences, {report['tokens']} tokens (words + </s>); "
             f"overrides {VARIANTS[name] or 'none'}")
    record(SCRIPT, f"brown_{name}_test_nll", report["ncll"], "nats/sentence", command, f"-log p(x|c), {estimate}; {notes}")
    record(SCRIPT, f"brown_{name}_test_ppl", report["ppl"], "ppl", command, f"{estimate}; {notes}")
    if latent:
        record(SCRIPT, f"brown_{name}_test_kl", report["kl"], "nats", command, f"KL(q(z|x,c) || p(z|c)); {notes}")
    accuracy, shown = genre_accuracy(run_dir, classifier, per_genre, seed=0)
    drawn = "z ~ p(z|c), then ancestral sampling of p(x|z,c)" if latent else "ancestral sampling of p(x|c)"
    record(SCRIPT, f"brown_{name}_genre_accuracy", accuracy, "fraction", command,
           f"{per_genre} sentences per genre x 15 genres ({drawn}, T = 1), classified by "
           f"fastText trained on real training sentences; chance 1/15 = 0.067; {notes}")
    samples = ROOT / "docs" / "brown_samples.md"
    samples.parent.mkdir(exist_ok=True)
    old = samples.read_text() if samples.exists() else ""
    section = f"## {name}\n\n" + "".join(f"* **{genre}**: " + " / ".join(s) + "\n" for genre, s in shown.items())
    kept = [part for part in old.split("\n## ")[1:] if not part.startswith(f"{name}\n")]
    header = ("# Sentences generated for each Brown genre\n\n"
              "Written by `benchmarks/brown_cvae.py` (the CVAE: z ~ p(z|c), then ancestral sampling of p(x|z,c) at "
              "temperature 1; the conditional LM `clm`: ancestral sampling of p(x|c); the first "
              f"{SHOWN_PER_GENRE} of each genre's sentences).\n\n")
    samples.write_text(header + "".join("## " + part.rstrip("\n") + "\n\n" for part in kept) + section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=[*VARIANTS, "all"], default="cvae")
    parser.add_argument("--per-genre", type=int, default=100, help="generated sentences per genre")
    args = parser.parse_args()
    data = load_data(load_recipe(RECIPE).data)
    classifier, real = genre_classifier(data)
    record(SCRIPT, "brown_classifier_real_test_balanced_accuracy", real, "fraction",
           f"python benchmarks/brown_cvae.py --variant {args.variant}",
           f"fastText (words + hashed bigrams) on {len(data.train)} real training sentences, balanced accuracy "
           f"(mean per-genre recall) on the {len(data.test)} real test sentences; chance 1/15 = 0.067")
    for name in (VARIANTS if args.variant == "all" else [args.variant]):
        run_variant(name, classifier, args.per_genre)


if __name__ == "__main__":
    main()
