"""Generating sentences from a sentence VAE (Bowman et al. 2016, Sec. 5) or its language model.

* :func:`sample_sentences` -- ``z ~ p(z)`` (none for the LM), then greedy, ancestral (with temperature)
  or beam decoding of ``p(x|z)``; for a label-conditional model, ``z ~ p(z|c)`` and ``p(x|z, c)`` for a
  given label ``c`` (a genre). Every function below takes ``label`` for such a model: codes are then
  ``q(z|x, c)`` and decoding is ``p(x|z, c)``.
* :func:`posterior_sentences` -- the sentences one sentence's code yields: ``z ~ q(z|x)``, decoded
  greedily (the paper's Table 7 shows such samples).
* :func:`homotopy` -- decode evenly spaced points on the line between the posterior means of two
  sentences (the paper's Tables 8 and 9).
* :func:`impute` -- complete the end of a sentence from its beginning: beam search continues the given
  words under ``z``, and iterated conditional modes alternate ``z = E_q[z | prefix + completion]`` with
  a new completion (Bowman et al., Sec. 4.2; ``icm = 0`` decodes once from ``z = E_q[z | prefix]``).

Every function takes words and returns words; the model is used only through its three distributions
and its one-step decoder (:meth:`SentenceVAE.step`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .data.text import Vocab
from .decoding import beam_search, greedy, sample
from .errors import VaekitError
from .feeds import sentence_batch
from .models import SentenceVAE

METHODS = ("greedy", "sample", "beam")


@dataclass
class Generated:
    words: list[str]
    log_prob: float  # log p(words | z) of the decoded tokens (the prefix's excluded when imputing)


def _labels(model: SentenceVAE, label: int | None, n: int = 1) -> torch.Tensor | None:
    """``(n,)`` copies of ``label`` for a label-conditional model (None otherwise), with a clear error when the
    label is missing or not wanted."""
    conditional = model.label_embed is not None
    if conditional != (label is not None):
        raise VaekitError("this run is conditioned on labels: name one (e.g. --label news)" if conditional else
                          "this run is not conditioned on labels: leave the label out")
    return torch.full((n,), label, dtype=torch.int64) if conditional else None


def encode_words(model: SentenceVAE, vocab: Vocab, sentences: list[str], label: int | None = None
                 ) -> torch.distributions.Distribution:
    """``q(z|x)`` (or ``q(z|x, c)``) for sentences given as strings (whitespace-tokenised; unknown words become
    ``<unk>``)."""
    if not model.has_latent:
        raise VaekitError("this run is a language model (model.arch = 'lstm-lm'): it has no code z to encode into")
    c = _labels(model, label, len(sentences))
    ids = [torch.tensor(vocab.encode(s.split())) for s in sentences]
    if any(len(i) == 1 for i in ids):
        raise VaekitError("an empty sentence has nothing to encode: give at least one word")
    return model.encode(sentence_batch(ids, vocab.bos), c)


def _decode(model: SentenceVAE, vocab: Vocab, z: torch.Tensor | None, method: str, max_length: int,
            temperature: float, beam: int, generator: torch.Generator | None) -> Generated:
    step = model.step(z)
    if method == "greedy":
        hyp = greedy(step, None, vocab.bos, vocab.eos, max_length)
    elif method == "sample":
        hyp = sample(step, None, vocab.bos, vocab.eos, max_length, temperature, generator)
    elif method == "beam":
        hyp = beam_search(step, None, vocab.bos, vocab.eos, beam, max_length, state_dim=1)[0]
    else:
        raise VaekitError(f"unknown decoding method {method!r}: choose {', '.join(METHODS)}")
    return Generated(vocab.decode(hyp.tokens), hyp.log_prob)


@torch.no_grad()
def sample_sentences(model: SentenceVAE, vocab: Vocab, n: int = 10, method: str = "sample", temperature: float = 1.0,
                     beam: int = 5, max_length: int = 40, seed: int = 0, label: int | None = None
                     ) -> list[Generated]:
    """``n`` sentences from the model: ``z ~ N(0, I)`` then decoding (for the LM, decoding alone); for a
    label-conditional model, ``z ~ p(z|c)`` for ``c = label`` and decoding of ``p(x|z, c)``."""
    c = _labels(model, label)
    generator = torch.Generator().manual_seed(seed)
    model.eval()
    prior = model.prior(c) if model.has_latent else None
    out = []
    for _ in range(n):
        z = None
        if prior is not None:
            loc, scale = prior.base_dist.loc.expand(1, -1), prior.base_dist.scale.expand(1, -1)
            z = loc + scale * torch.randn(1, model.latent_dim, generator=generator)
        out.append(_decode(model, vocab, model.code(z, c), method, max_length, temperature, beam, generator))
    return out


@torch.no_grad()
def posterior_sentences(model: SentenceVAE, vocab: Vocab, sentence: str, n: int = 5, method: str = "greedy",
                        max_length: int = 40, seed: int = 0, label: int | None = None) -> list[Generated]:
    """Decode ``n`` codes ``z ~ q(z|x)`` of one sentence (the first is the posterior mean)."""
    model.eval()
    q = encode_words(model, vocab, [sentence], label)
    c = _labels(model, label)
    generator = torch.Generator().manual_seed(seed)
    loc, scale = q.base_dist.loc, q.base_dist.scale
    codes = [loc] + [loc + scale * torch.randn(loc.shape, generator=generator) for _ in range(n - 1)]
    return [_decode(model, vocab, model.code(z, c), method, max_length, 1.0, 5, generator) for z in codes]


@torch.no_grad()
def homotopy(model: SentenceVAE, vocab: Vocab, first: str, second: str, steps: int = 5, method: str = "greedy",
             max_length: int = 40, label: int | None = None) -> list[Generated]:
    """Decode ``z(t) = (1 - t) mu_1 + t mu_2`` at ``steps`` evenly spaced ``t`` in [0, 1] (``steps >= 2``); for a
    label-conditional model both sentences are encoded and decoded under the one ``label``."""
    if steps < 2:
        raise VaekitError(f"a homotopy needs at least 2 steps (got {steps})")
    model.eval()
    loc = encode_words(model, vocab, [first, second], label).base_dist.loc
    c = _labels(model, label)
    return [_decode(model, vocab, model.code(torch.lerp(loc[0:1], loc[1:2], t / (steps - 1)), c), method, max_length,
                    1.0, 5, None) for t in range(steps)]


@torch.no_grad()
def impute(model: SentenceVAE, vocab: Vocab, prefix: str, beam: int = 5, icm: int = 3, max_length: int = 40,
           label: int | None = None, length_penalty: float = 0.0) -> Generated:
    """Complete ``prefix`` by beam search under ``z``; with ``icm`` rounds of iterated conditional modes
    (``z`` <- posterior mean of the current full sentence, completion <- beam search given ``z``).
    ``length_penalty`` > 0 ranks completions by log-probability per token ** penalty (see
    :func:`vaekit.decoding.beam_search`) instead of the raw sum, which favours ending at once.
    Returns the whole sentence; ``log_prob`` is that of the completed part given the prefix and ``z``."""
    words = prefix.split()
    if not words:
        raise VaekitError("impute needs the beginning of a sentence: give at least one word")
    model.eval()
    c = _labels(model, label)
    z = encode_words(model, vocab, [prefix], label).base_dist.loc if model.has_latent else None
    completion = _complete(model, vocab, words, model.code(z, c), beam, max_length, length_penalty)
    for _ in range(icm if z is not None else 0):
        z = encode_words(model, vocab, [" ".join(words + completion.words)], label).base_dist.loc
        completion = _complete(model, vocab, words, model.code(z, c), beam, max_length, length_penalty)
    return Generated(words + completion.words, completion.log_prob)


def _complete(model: SentenceVAE, vocab: Vocab, words: list[str], z, beam: int, max_length: int,
              length_penalty: float = 0.0) -> Generated:
    """Teacher-force ``<s> words[:-1]`` through the decoder driven by the code ``z`` (see
    :meth:`SentenceVAE.code`), then beam-search on from ``words[-1]``."""
    ids = [vocab.bos] + [vocab.stoi.get(w, vocab.unk) for w in words]
    step = model.step(z)
    state = None
    for token in ids[:-1]:
        _, state = step(torch.tensor([token]), state)
    hyp = beam_search(step, state, ids[-1], vocab.eos, beam, max(1, max_length - len(words)), state_dim=1,
                      length_penalty=length_penalty)[0]
    return Generated(vocab.decode(hyp.tokens), hyp.log_prob)
