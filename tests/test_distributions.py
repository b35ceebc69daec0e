"""vaekit.distributions: the logit-space KL between Bernoulli distributions, and their fast sampling."""

import torch
from torch.distributions import Bernoulli, Independent, kl_divergence

from vaekit.distributions import LogitBernoulli
from vaekit.nets.heads import bernoulli


def test_logit_kl_equals_torch_closed_form_where_that_is_finite():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 7, generator=g, dtype=torch.float64) * 4, torch.randn(7, generator=g, dtype=torch.float64) * 4
    ours = kl_divergence(LogitBernoulli(logits=a), LogitBernoulli(logits=b.expand_as(a)))
    assert torch.allclose(ours, kl_divergence(Bernoulli(logits=a), Bernoulli(logits=b.expand_as(a))), atol=1e-10)
    assert torch.allclose(kl_divergence(LogitBernoulli(logits=a), LogitBernoulli(logits=b)), ours)  # broadcasts


def test_logit_kl_stays_finite_and_exact_when_float32_probabilities_saturate():
    """A learned prior logit of 17 has probability 1.0 in float32: torch's form gives inf; the truth is finite."""
    q_logits = torch.tensor([-3.0, 0.5, 20.0, -25.0])
    p_logits = torch.tensor([17.0, -18.0, 30.0, -30.0])
    assert torch.isinf(kl_divergence(Bernoulli(logits=q_logits), Bernoulli(logits=p_logits))).any()
    ours = kl_divergence(LogitBernoulli(logits=q_logits), LogitBernoulli(logits=p_logits))
    exact = kl_divergence(Bernoulli(logits=q_logits.double()), Bernoulli(logits=p_logits.double()))
    assert torch.isfinite(ours).all() and torch.allclose(ours.double(), exact, rtol=1e-5, atol=1e-5)


def test_the_bernoulli_head_uses_it():
    q, p = bernoulli(torch.tensor([[-3.0, 2.0]])), bernoulli(torch.tensor([17.0, -17.5]))
    assert isinstance(q, Independent) and isinstance(q.base_dist, LogitBernoulli)
    assert torch.isfinite(kl_divergence(q, p)).all()


def test_logit_bernoulli_samples_have_the_right_frequencies_shapes_and_extremes():
    """``1[u < p]`` draws Bernoulli(p): frequencies within 4.5 standard errors over 200,000 draws, p = 0 and p = 1
    exactly (u lies in [0, 1)), the sample shape in front of the batch shape, 0/1 values in the logits' dtype."""
    logits = torch.tensor([-30.0, -1.0, 0.0, 2.0, 30.0], dtype=torch.float64)
    torch.manual_seed(0)
    draws = LogitBernoulli(logits=logits).sample((200_000,))
    assert draws.shape == (200_000, 5) and draws.dtype == torch.float64 and set(draws.unique().tolist()) <= {0.0, 1.0}
    p = torch.sigmoid(logits)
    se = (p * (1 - p) / len(draws)).sqrt()
    assert ((draws.mean(0) - p).abs() <= 4.5 * se + 1e-12).all()
    exact = LogitBernoulli(logits=torch.tensor([-float("inf"), float("inf")])).sample((1000,))
    assert exact[:, 0].sum() == 0 and exact[:, 1].sum() == 1000
    assert LogitBernoulli(logits=torch.zeros(4, 3)).sample((2,)).shape == (2, 4, 3)
