"""vaekit.nets.dropout: inverted dropout whose mask is drawn by comparing uniforms (the distribution of F.dropout)."""

import math

import pytest
import torch

from vaekit.nets.dropout import Dropout, dropout


@pytest.mark.parametrize("p", [0.3, 0.5])
def test_dropout_keeps_each_entry_with_probability_one_minus_p_and_scales_it(p):
    torch.manual_seed(0)
    x = torch.rand(400, 500) + 0.5                     # no zeros, so a dropped entry is recognisable
    y = dropout(x, p)
    kept = y != 0
    assert torch.equal(y[kept], x[kept] * (1 / (1 - p)))
    n = x.numel()
    sd = math.sqrt(p * (1 - p) / n)
    assert abs(kept.float().mean().item() - (1 - p)) < 6 * sd   # binomial: 6 standard deviations
    assert abs(y.mean().item() - x.mean().item()) < 0.01       # unbiased: E[dropout(x)] = x


def test_dropout_gradient_is_the_same_scaled_mask():
    torch.manual_seed(1)
    x = (torch.rand(50, 40) + 0.5).requires_grad_()
    y = dropout(x, 0.5)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() * 2.0)


def test_dropout_is_the_identity_in_evaluation_or_at_zero_and_zeros_at_one():
    x = torch.randn(7, 3)
    assert dropout(x, 0.5, training=False) is x and dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    module = Dropout(0.5).eval()
    assert module(x) is x and "p=0.5" in repr(module)
    with pytest.raises(ValueError, match="must be in"):
        Dropout(1.5)
    with pytest.raises(ValueError, match="must be in"):
        dropout(x, -0.1)


def test_dropout_keeps_the_input_type_under_bfloat16():
    x = torch.randn(64, 32, dtype=torch.bfloat16)
    y = dropout(x, 0.5)
    assert y.dtype == torch.bfloat16
    assert set(torch.unique(y[y != 0] / x[y != 0]).tolist()) == {2.0}
