"""The imputation evaluation of Bowman et al. (2016, Sec. 4.2): can a classifier tell true sentence
endings from imputed ones?

1. :func:`impute_endings` -- remove the last ``fraction`` (20%) of the words of each sentence and complete
   it with a model (:func:`vaekit.generate.impute`: beam search, and for a VAE iterated conditional modes
   between z and the missing words).
2. :func:`adversarial_error` -- train a classifier on half of the (true, imputed) sentence pairs to tell
   them apart and report its error rate on the other half. 50% means indistinguishable; the higher the
   error, the better the imputations. The classifier here is a bag-of-words (unigram) logistic regression
   over the whole sentence, the simplest of the paper's adversaries.
"""

from __future__ import annotations

import math

import torch

from .data.text import Vocab
from .generate import impute


def split_ending(words: list[str], fraction: float = 0.2) -> tuple[list[str], list[str]]:
    """``(prefix, ending)`` with ``ceil(fraction * len)`` words (at least 1) removed from the end; the prefix
    keeps at least one word."""
    missing = min(len(words) - 1, max(1, math.ceil(fraction * len(words))))
    return words[:len(words) - missing], words[len(words) - missing:]


def impute_endings(model, vocab: Vocab, sentences: list[list[str]], fraction: float = 0.2, beam: int = 5,
                   icm: int = 3, max_length: int = 60) -> list[list[str]]:
    """The model's completion of each sentence (of at least 2 words) from its first ``1 - fraction``."""
    out = []
    for words in sentences:
        prefix, _ = split_ending(words, fraction)
        out.append(impute(model, vocab, " ".join(prefix), beam=beam, icm=icm, max_length=max_length).words)
    return out


def _bag_of_words(sentences: list[list[str]], index: dict[str, int]) -> torch.Tensor:
    features = torch.zeros(len(sentences), len(index) + 1)
    for row, words in enumerate(sentences):
        for w in words:
            features[row, index.get(w, len(index))] += 1.0
        features[row] /= max(1, len(words))
    return features


def adversarial_error(true: list[list[str]], generated: list[list[str]], seed: int = 0, steps: int = 300,
                      weight_decay: float = 1e-4) -> float:
    """Held-out error rate of a unigram logistic-regression classifier of true vs generated sentences.

    Pairs are split in half at random (a pair's two sentences stay on the same side); the classifier is
    fit on one half by full-batch Adam and scored on the other. Returns a fraction in [0, 1].
    """
    if len(true) != len(generated) or len(true) < 4:
        raise ValueError("adversarial_error needs the same number (at least 4) of true and generated sentences")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(true), generator=generator).tolist()
    fit, held = order[: len(order) // 2], order[len(order) // 2:]
    words = sorted({w for i in fit for w in true[i] + generated[i]})
    index = {w: j for j, w in enumerate(words)}

    def design(ids):
        x = _bag_of_words([true[i] for i in ids] + [generated[i] for i in ids], index)
        y = torch.cat([torch.ones(len(ids)), torch.zeros(len(ids))])
        return x, y

    x_fit, y_fit = design(fit)
    x_held, y_held = design(held)
    mean, std = x_fit.mean(0), x_fit.std(0) + 1e-6
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = torch.nn.Linear(x_fit.shape[1], 1)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=0.05, weight_decay=weight_decay)
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(classifier((x_fit - mean) / std)[:, 0], y_fit)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        predicted = (classifier((x_held - mean) / std)[:, 0] > 0).float()
    return float((predicted != y_held).float().mean())
