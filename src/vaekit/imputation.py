"""The imputation evaluation of Bowman et al. (2016, Sec. 4.2): can a classifier tell true sentence
endings from imputed ones?

1. :func:`impute_endings` -- remove the last ``fraction`` (20%) of the words of each sentence and complete
   it with a model (:func:`vaekit.generate.impute`: beam search, and for a VAE iterated conditional modes
   between z and the missing words).
2. :func:`adversarial_error` -- train a classifier on half of the (true, imputed) sentence pairs to tell
   them apart and report its error rate on the other half. 50% means indistinguishable; the higher the
   error, the better the imputations. Two adversaries, as in the paper: a bag-of-words (unigram) logistic
   regression over the whole sentence, and an LSTM classifier, which also sees word order.
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
                   icm: int = 3, max_length: int = 60, length_penalty: float = 0.0) -> list[list[str]]:
    """The model's completion of each sentence (of at least 2 words) from its first ``1 - fraction``."""
    out = []
    for words in sentences:
        prefix, _ = split_ending(words, fraction)
        out.append(impute(model, vocab, " ".join(prefix), beam=beam, icm=icm, max_length=max_length,
                          length_penalty=length_penalty).words)
    return out


def adversarial_error(true: list[list[str]], generated: list[list[str]], seed: int = 0, classifier: str = "unigram",
                      **options) -> float:
    """Held-out error rate of a classifier of true vs generated sentences.

    Pairs are split in half at random (a pair's two sentences stay on the same side); the classifier is
    fit on one half and scored on the other. ``classifier``: ``unigram`` (logistic regression on the
    sentence's bag of words: it sees which words appear, never their order) or ``lstm`` (an LSTM over the
    words, which also sees order; Bowman et al. used both kinds). Returns a fraction in [0, 1].
    """
    if len(true) != len(generated) or len(true) < 4:
        raise ValueError("adversarial_error needs the same number (at least 4) of true and generated sentences")
    fits = {"unigram": _fit_unigram, "lstm": _fit_lstm}
    if classifier not in fits:
        raise ValueError(f"classifier = {classifier!r}: choose unigram or lstm")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(true), generator=generator).tolist()
    fit, held = order[: len(order) // 2], order[len(order) // 2:]

    def side(ids):
        return [true[i] for i in ids] + [generated[i] for i in ids], torch.cat([torch.ones(len(ids)),
                                                                               torch.zeros(len(ids))])

    (x_fit, y_fit), (x_held, y_held) = side(fit), side(held)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        predict = fits[classifier](x_fit, y_fit, **options)
        predicted = predict(x_held)
    return float((predicted != y_held).float().mean())


def _fit_unigram(sentences: list[list[str]], y: torch.Tensor, steps: int = 300, weight_decay: float = 1e-4):
    """Logistic regression on standardised word frequencies, full-batch Adam; returns a 0/1 predictor."""
    index = {w: j for j, w in enumerate(sorted({w for s in sentences for w in s}))}
    x = _bag_of_words(sentences, index)
    mean, std = x.mean(0), x.std(0) + 1e-6
    classifier = torch.nn.Linear(x.shape[1], 1)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=0.05, weight_decay=weight_decay)
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(classifier((x - mean) / std)[:, 0], y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def predict(held: list[list[str]]) -> torch.Tensor:
        return (classifier((_bag_of_words(held, index) - mean) / std)[:, 0] > 0).float()
    return predict


def _bag_of_words(sentences: list[list[str]], index: dict[str, int]) -> torch.Tensor:
    features = torch.zeros(len(sentences), len(index) + 1)
    for row, words in enumerate(sentences):
        for w in words:
            features[row, index.get(w, len(index))] += 1.0
        features[row] /= max(1, len(words))
    return features


class _LSTMClassifier(torch.nn.Module):
    """Embedding -> LSTM -> logistic regression on the last state: ``(N, T)`` word ids (0 pads) -> ``(N,)``."""

    def __init__(self, vocab_size: int, embedding: int = 32, hidden: int = 64):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, embedding, padding_idx=0)
        self.lstm = torch.nn.LSTM(embedding, hidden, batch_first=True)
        self.out = torch.nn.Linear(hidden, 1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = torch.nn.utils.rnn.pack_padded_sequence(self.embed(ids), lengths, batch_first=True,
                                                         enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return self.out(h[-1])[:, 0]


def _fit_lstm(sentences: list[list[str]], y: torch.Tensor, epochs: int = 10, batch_size: int = 64, lr: float = 3e-3):
    """An LSTM classifier trained by Adam on minibatches (words unseen in training share one id)."""
    index = {w: j + 2 for j, w in enumerate(sorted({w for s in sentences for w in s}))}  # 0 pads, 1 unknown

    def encode(batch: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.tensor([max(1, len(s)) for s in batch])
        ids = torch.zeros(len(batch), int(lengths.max()), dtype=torch.long)
        for row, s in enumerate(batch):
            tokens = [index.get(w, 1) for w in s] or [1]  # an empty sentence reads as one unknown word
            ids[row, :len(tokens)] = torch.tensor(tokens)
        return ids, lengths

    classifier = _LSTMClassifier(len(index) + 2)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr)
    for _ in range(epochs):
        for rows in torch.randperm(len(sentences)).split(batch_size):
            ids, lengths = encode([sentences[i] for i in rows])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(classifier(ids, lengths), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    @torch.no_grad()
    def predict(held: list[list[str]]) -> torch.Tensor:
        return (classifier(*encode(held)) > 0).float()
    return predict
