"""Decoding sequences from an autoregressive model: greedy, ancestral sampling, beam search.

The model is a step function ``step(tokens (N,), state) -> (log_probs (N, V), state)`` over a batch of N
hypotheses, with a state any nested structure of tensors whose first dimension is N (an LSTM's
``(h, c)`` has N on dimension 1: pass ``state_dim=1``). Decoding knows nothing else of the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

Step = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]


def _select(state, index: torch.Tensor, dim: int):
    if isinstance(state, torch.Tensor):
        return state.index_select(dim, index)
    if isinstance(state, (tuple, list)):
        return type(state)(_select(s, index, dim) for s in state)
    if state is None:
        return None
    raise TypeError(f"cannot reorder a decoder state of type {type(state).__name__}")


@dataclass
class Hypothesis:
    tokens: list[int]   # without <s>, ending in </s> when finished
    log_prob: float     # sum of token log-probabilities


def beam_search(step: Step, state, bos: int, eos: int, beam: int = 5, max_length: int = 50,
                state_dim: int = 0, length_penalty: float = 0.0) -> list[Hypothesis]:
    """Beam search for one sequence; returns finished hypotheses, best first.

    Scores are sums of log-probabilities divided by ``length ** length_penalty`` (0: no normalisation; 1: the
    mean log-probability per token, which stops beam search from favouring short sequences; Wu et al. 2016
    use a similar penalty).
    ``state`` is for a single sequence (first dimension 1, or ``state_dim`` as set). A hypothesis that
    reaches ``max_length`` tokens without ``</s>`` is returned unfinished.
    """
    def norm(h: Hypothesis) -> float:
        return h.log_prob / (max(1, len(h.tokens)) ** length_penalty)

    tokens = torch.tensor([bos])
    scores = torch.zeros(1, dtype=torch.float64)
    histories: list[list[int]] = [[]]
    finished: list[Hypothesis] = []
    for t in range(max_length):
        log_probs, state = step(tokens, state)
        vocab = log_probs.shape[-1]
        total = (scores[:, None] + log_probs.double()).reshape(-1)
        k = min(beam, total.numel())
        top_scores, top = total.topk(k)
        parents, words = top // vocab, top % vocab
        keep_rows, new_histories, new_scores = [], [], []
        for score, parent, word in zip(top_scores.tolist(), parents.tolist(), words.tolist()):
            history = histories[parent] + [word]
            if word == eos:
                finished.append(Hypothesis(history, score))
            else:
                keep_rows.append(parent)
                new_histories.append(history)
                new_scores.append(score)
        if len(finished) >= beam and new_scores:
            # an open hypothesis's log-probability s < 0 only falls, and its length stays <= max_length, so its
            # final normalised score is at most s / max_length ** length_penalty (s itself without a penalty)
            best_open = max(new_scores) / (max_length ** length_penalty)
            if max(norm(h) for h in finished) >= best_open:
                break  # no open hypothesis can beat the best finished one
        if not keep_rows:
            break
        index = torch.tensor(keep_rows)
        state = _select(state, index, state_dim)
        tokens = torch.tensor([h[-1] for h in new_histories])
        histories, scores = new_histories, torch.tensor(new_scores, dtype=torch.float64)
    else:
        finished += [Hypothesis(h, s) for h, s in zip(histories, scores.tolist())]
    return sorted(finished, key=norm, reverse=True)


def greedy(step: Step, state, bos: int, eos: int, max_length: int = 50) -> Hypothesis:
    """Take the most probable token at each step (beam search of width 1)."""
    return beam_search(step, state, bos, eos, beam=1, max_length=max_length)[0]


@torch.no_grad()
def sample(step: Step, state, bos: int, eos: int, max_length: int = 50, temperature: float = 1.0,
           generator: torch.Generator | None = None) -> Hypothesis:
    """Ancestral sampling from ``softmax(log_probs / temperature)``."""
    token = torch.tensor([bos])
    tokens, total = [], 0.0
    for _ in range(max_length):
        log_probs, state = step(token, state)
        scaled = torch.log_softmax(log_probs[0] / temperature, -1)
        word = int(torch.multinomial(scaled.exp(), 1, generator=generator))
        total += float(log_probs[0, word])
        tokens.append(word)
        if word == eos:
            break
        token = torch.tensor([word])
    return Hypothesis(tokens, total)
