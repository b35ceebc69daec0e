"""KL annealing schedules, word dropout, free bits, and beam search against exhaustive enumeration."""

import itertools
import math

import pytest
import torch

from vaekit.decoding import beam_search, greedy, sample
from vaekit.schedules import kl_weight
from vaekit.text_policy import free_bits_kl, word_dropout


def test_kl_schedules_give_their_documented_values():
    assert kl_weight("none", 0) == 1.0
    assert kl_weight("linear", 2500, warmup=10000) == 0.25 and kl_weight("linear", 10 ** 6, warmup=10) == 1.0
    assert kl_weight("linear", 0, warmup=100, start=0.1) == 0.1
    assert kl_weight("linear", 50, warmup=100, start=0.1) == pytest.approx(0.55)
    assert kl_weight("logistic", 2500) == pytest.approx(0.5)
    assert kl_weight("logistic", 2500 + 400) == pytest.approx(1 / (1 + math.exp(-1.0)))
    # cyclical: 4 cycles over 1000 steps, rising over the first half of each 250-step cycle
    assert kl_weight("cyclical", 0, cycles=4, total_steps=1000) == 0.0
    assert kl_weight("cyclical", 62, cycles=4, total_steps=1000) == pytest.approx(62 / 125)
    assert kl_weight("cyclical", 200, cycles=4, total_steps=1000) == 1.0
    assert kl_weight("cyclical", 250, cycles=4, total_steps=1000) == 0.0
    with pytest.raises(ValueError, match="unknown KL schedule"):
        kl_weight("cosine", 0)


def test_word_dropout_replaces_only_droppable_positions_at_the_rate():
    g = torch.Generator().manual_seed(0)
    inputs = torch.randint(4, 100, (200, 50), generator=g)
    keep = torch.zeros_like(inputs, dtype=torch.bool)
    keep[:, 0] = True       # <s>
    keep[:, 40:] = True     # padding
    out = word_dropout(inputs, 0.3, unk_id=1, keep=keep, generator=g)
    dropped = out != inputs
    assert not dropped[keep].any() and (out[dropped] == 1).all()
    assert abs(dropped[~keep].float().mean().item() - 0.3) < 0.01
    assert torch.equal(word_dropout(inputs, 0.0, 1, keep), inputs)


def test_free_bits_stops_gradients_below_the_threshold():
    kl = torch.tensor([[0.1, 2.0], [0.3, 4.0]], requires_grad=True)  # batch means 0.2 and 3.0
    penalty = free_bits_kl(kl, 0.5)
    assert penalty.item() == pytest.approx(0.5 + 3.0)
    penalty.backward()
    assert torch.equal(kl.grad, torch.tensor([[0.0, 0.5], [0.0, 0.5]]))


class TinyLM:
    """A random autoregressive model over V = 4 tokens (3 is </s>) whose next-token distribution
    depends on the previous token and on a running state (so the best sequence is not greedy)."""

    def __init__(self, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(4, 5, 4, generator=g) * 1.5  # (previous token, position, next token)

    def step(self, tokens, state):
        position = state  # (N,) positions
        logits = self.table[tokens, position.clamp(max=4)]
        return torch.log_softmax(logits, -1), position + 1

    def log_prob(self, sequence):
        total, previous = 0.0, 0
        for t, token in enumerate(sequence):
            total += torch.log_softmax(self.table[previous, min(t, 4)], -1)[token].item()
            previous = token
        return total


@pytest.mark.parametrize("seed", range(5))
def test_wide_beam_search_finds_the_exhaustive_argmax(seed):
    lm, max_length = TinyLM(seed), 5
    candidates = [list(prefix) + [3] for n in range(max_length) for prefix in itertools.product(range(3), repeat=n)]
    best = max(candidates, key=lm.log_prob)
    found = beam_search(lm.step, torch.zeros(1, dtype=torch.long), bos=0, eos=3, beam=4 ** max_length,
                        max_length=max_length)[0]
    assert found.tokens == best
    assert found.log_prob == pytest.approx(lm.log_prob(best))
    narrow = beam_search(lm.step, torch.zeros(1, dtype=torch.long), bos=0, eos=3, beam=2, max_length=max_length)
    assert narrow[0].log_prob <= found.log_prob + 1e-9
    assert greedy(lm.step, torch.zeros(1, dtype=torch.long), 0, 3, max_length).log_prob <= found.log_prob + 1e-9


@pytest.mark.parametrize("seed", range(5))
def test_length_normalised_beam_search_finds_the_exhaustive_argmax_of_the_normalised_score(seed):
    lm, max_length, penalty = TinyLM(seed), 5, 1.0
    finished = [list(prefix) + [3] for n in range(max_length) for prefix in itertools.product(range(3), repeat=n)]
    unfinished = [list(p) for p in itertools.product(range(3), repeat=max_length)]  # cut at max_length
    best = max(finished + unfinished, key=lambda s: lm.log_prob(s) / len(s) ** penalty)
    found = beam_search(lm.step, torch.zeros(1, dtype=torch.long), bos=0, eos=3, beam=4 ** max_length,
                        max_length=max_length, length_penalty=penalty)[0]
    assert found.tokens == best
    raw = beam_search(lm.step, torch.zeros(1, dtype=torch.long), bos=0, eos=3, beam=4 ** max_length,
                      max_length=max_length)[0]
    assert len(found.tokens) >= len(raw.tokens)  # normalising never prefers a shorter sequence


def test_ancestral_sampling_follows_the_model():
    lm = TinyLM(1)
    g = torch.Generator().manual_seed(0)
    firsts = torch.tensor([sample(lm.step, torch.zeros(1, dtype=torch.long), 0, 3, 1, generator=g).tokens[0]
                           for _ in range(4000)])
    expected = torch.softmax(lm.table[0, 0], -1)
    assert torch.allclose(torch.bincount(firsts, minlength=4) / 4000.0, expected, atol=0.03)
