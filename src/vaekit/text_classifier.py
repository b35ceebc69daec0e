"""A sentence classifier to judge generated text by its label (e.g. is a sentence generated for the genre
``news`` recognisably news?).

:class:`BagOfNgrams` is fastText (Joulin et al. 2017, "Bag of tricks for efficient text classification"):
the mean of the embeddings of a sentence's words and hashed word bigrams, then a linear softmax layer,

    p(c | x) = softmax(W mean_{g in ngrams(x)} E[g] + b),

trained by cross-entropy with Adam. It trains in seconds on the CPU and is the usual yardstick for
label-conditional generation: its accuracy on real held-out sentences is the ceiling that generated
sentences are compared with. With balanced generated sets (the same number per label) the comparable
figure on real sentences is the balanced accuracy (mean per-label recall), :func:`balanced_accuracy`;
:func:`generated_label_accuracy` generates such sets from a label-conditional sentence model and scores them.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

BIGRAM_BUCKETS = 2 ** 16  # hashed bigram ids (fastText's trick: no bigram vocabulary)


def ngram_ids(sentence: list[int], vocab_size: int, buckets: int = BIGRAM_BUCKETS) -> list[int]:
    """Word ids followed by hashed bigram ids (offset by ``vocab_size``) of one sentence."""
    bigrams = [vocab_size + (a * 1_000_003 + b) % buckets for a, b in zip(sentence, sentence[1:])]
    return list(sentence) + bigrams


class BagOfNgrams(nn.Module):
    """fastText: ``(N,)`` sentences of word ids -> ``(N, classes)`` logits."""

    def __init__(self, vocab_size: int, classes: int, dim: int = 32, buckets: int = BIGRAM_BUCKETS):
        super().__init__()
        self.vocab_size, self.buckets = vocab_size, buckets
        self.embed = nn.EmbeddingBag(vocab_size + buckets, dim, mode="mean")
        self.out = nn.Linear(dim, classes)

    def pack(self, sentences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat n-gram ids and the offset of each sentence (the EmbeddingBag input)."""
        grams = [ngram_ids(s, self.vocab_size, self.buckets) or [0] for s in sentences]
        offsets = torch.tensor([0] + [len(g) for g in grams[:-1]]).cumsum(0)
        return torch.tensor([i for g in grams for i in g]), offsets

    def forward(self, sentences: list[list[int]]) -> torch.Tensor:
        ids, offsets = self.pack(sentences)
        return self.out(self.embed(ids, offsets))

    @torch.no_grad()
    def predict(self, sentences: list[list[int]], batch_size: int = 1024) -> torch.Tensor:
        self.eval()
        return torch.cat([self(sentences[i:i + batch_size]).argmax(-1) for i in range(0, len(sentences), batch_size)])


def balanced_accuracy(predicted: torch.Tensor, labels: torch.Tensor, classes: int) -> float:
    """Mean over labels present of the fraction of their sentences predicted correctly (chance: 1 / classes)."""
    recalls = [(predicted[labels == c] == c).float().mean().item() for c in range(classes) if (labels == c).any()]
    return sum(recalls) / len(recalls)


def generated_label_accuracy(model, vocab, classifier: BagOfNgrams, per_label: int = 100, seed: int = 0,
                             temperature: float = 1.0) -> tuple[float, list[list[str]]]:
    """Generate ``per_label`` sentences for every label of a label-conditional sentence model (``z ~ p(z|c)``
    then ancestral sampling of ``p(x|z, c)``; for the conditional LM, of ``p(x|c)``) and return the fraction
    that ``classifier`` assigns to the label they were generated for, with the sentences (one list per label,
    as strings)."""
    from .generate import sample_sentences

    hits, sentences = 0, []
    for label in range(model.config.conditions):
        generated = sample_sentences(model, vocab, n=per_label, method="sample", temperature=temperature,
                                     seed=seed + label, label=label)
        ids = [[vocab.stoi.get(w, vocab.unk) for w in g.words] for g in generated]
        hits += int((classifier.predict(ids) == label).sum())
        sentences.append([" ".join(g.words) for g in generated])
    return hits / (per_label * model.config.conditions), sentences


def train_classifier(train: list[list[int]], train_labels: list[int], val: list[list[int]], val_labels: list[int],
                     vocab_size: int, classes: int, epochs: int = 5, batch_size: int = 256, lr: float = 1e-2,
                     seed: int = 0) -> tuple[BagOfNgrams, float]:
    """Train on ``train`` (word-id lists, no specials needed) and keep the epoch with the best balanced accuracy
    on ``val``; returns the model and that accuracy. Classes are weighted by inverse frequency so that the
    classifier does not win by predicting the frequent genres."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = BagOfNgrams(vocab_size, classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    y = torch.tensor(train_labels)
    counts = torch.bincount(y, minlength=classes).clamp(min=1).float()
    weight = counts.sum() / (classes * counts)
    val_y = torch.tensor(val_labels)
    best, best_state = -1.0, None
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(train), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            ids = order[start:start + batch_size]
            loss = F.cross_entropy(model([train[i] for i in ids]), y[ids], weight=weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        accuracy = balanced_accuracy(model.predict(val), val_y, classes)
        if accuracy > best:
            best, best_state = accuracy, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return model, best
