"""The softmax output layer's token NLL (vaekit.nets.softmax_output) against torch's cross-entropy."""

import pytest
import torch
import torch.nn.functional as F

from vaekit.nets.softmax_output import EVAL_ROWS, aligned_logits, linear_token_nll, token_nll


def test_token_nll_equals_cross_entropy_with_exact_gradients_even_when_probabilities_underflow():
    torch.manual_seed(0)
    logits = torch.randn(6, 9, dtype=torch.float64, requires_grad=True)
    target = torch.randint(9, (6,))
    assert torch.autograd.gradcheck(lambda l: token_nll(l, target), (logits,))
    extreme = torch.tensor([[0.0, -200.0, 3.0], [50.0, -60.0, 0.0]], requires_grad=True)  # p(target) < 1e-38
    picks = torch.tensor([1, 1])
    ours = token_nll(extreme, picks)
    reference = F.cross_entropy(extreme, picks, reduction="none")
    assert torch.allclose(ours, reference) and torch.isfinite(ours).all()
    grad_ours, = torch.autograd.grad(ours.sum(), extreme)
    grad_ref, = torch.autograd.grad(reference.sum(), extreme)
    assert torch.allclose(grad_ours, grad_ref)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("vocab", [9, 16])  # logits padded to 16 columns, and not padded
def test_linear_token_nll_has_exact_gradients_for_repeated_targets_and_unequal_row_weights(with_bias, vocab):
    torch.manual_seed(0)
    hidden = torch.randn(11, 5, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(vocab, 5, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(vocab, dtype=torch.float64, requires_grad=True) if with_bias else None
    target = torch.tensor([3, 3, 3, 0, 8, 1, 3, 0, 2, 2, 7])  # repeats: the one-hot terms must add up
    rows = torch.rand(11, dtype=torch.float64) + 0.5
    inputs = (hidden, weight, bias) if with_bias else (hidden, weight)

    def ours(h, w, b=None):
        return linear_token_nll(h, w, b, target) * rows

    assert torch.autograd.gradcheck(ours, inputs)
    expected = F.cross_entropy(F.linear(hidden, weight, bias), target, reduction="none") * rows
    assert torch.allclose(ours(*inputs), expected)


def test_linear_token_nll_matches_torch_when_a_picked_probability_underflows():
    hidden = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    weight = torch.tensor([[0.0, 50.0], [-200.0, -60.0], [3.0, 0.0]], requires_grad=True)
    target = torch.tensor([1, 1])  # p(target) < 1e-38 in both rows
    ours = linear_token_nll(hidden, weight, None, target)
    reference = F.cross_entropy(F.linear(hidden, weight), target, reduction="none")
    assert torch.isfinite(ours).all() and torch.allclose(ours, reference)
    assert all(torch.allclose(a, b) for a, b in zip(torch.autograd.grad(ours.sum(), (hidden, weight)),
                                                    torch.autograd.grad(reference.sum(), (hidden, weight))))


def test_linear_token_nll_under_bfloat16_autocast_matches_autocast_linear_and_keeps_parameter_types():
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 40)
    hidden = torch.randn(30, 16, requires_grad=True)
    target = torch.randint(40, (30,))
    rows = torch.rand(30)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = linear_token_nll(hidden, layer.weight, layer.bias, target)
        reference = token_nll(layer(hidden), target)
    assert ours.dtype == torch.float32 and torch.allclose(ours, reference)  # the same bfloat16 logits
    got = torch.autograd.grad((ours * rows).sum(), (hidden, layer.weight, layer.bias))
    want = torch.autograd.grad((reference * rows).sum(), (hidden, layer.weight, layer.bias))
    for g, w, like in zip(got, want, (hidden, layer.weight, layer.bias)):
        assert g.dtype == like.dtype
        assert torch.allclose(g, w, atol=2e-2, rtol=2e-2)  # bfloat16 GEMMs on both sides


def test_linear_token_nll_without_gradients_is_the_plain_cross_entropy():
    hidden, weight, target = torch.randn(4, 3), torch.randn(6, 3), torch.tensor([0, 5, 2, 2])
    with torch.no_grad():
        ours = linear_token_nll(hidden, weight.requires_grad_(), None, target)
    assert not ours.requires_grad
    assert torch.allclose(ours, F.cross_entropy(hidden @ weight.detach().T, target, reduction="none"))


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("vocab", [16, 17])
@pytest.mark.parametrize("rows", [0, 1, EVAL_ROWS, 2 * EVAL_ROWS + 3])
def test_linear_token_nll_without_gradients_in_row_blocks_equals_one_cross_entropy(with_bias, vocab, rows):
    torch.manual_seed(rows)
    hidden, weight = torch.randn(rows, 5, dtype=torch.float64), torch.randn(vocab, 5, dtype=torch.float64)
    bias = torch.randn(vocab, dtype=torch.float64) if with_bias else None
    target = torch.randint(vocab, (rows,))
    ours = linear_token_nll(hidden, weight, bias, target)
    want = F.cross_entropy(F.linear(hidden, weight, bias), target, reduction="none")
    assert ours.shape == (rows,) and ours.dtype == torch.float64
    assert torch.allclose(ours, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("vocab", [1, 15, 16, 17, 10002])
def test_aligned_logits_pad_rows_to_a_multiple_of_16_with_minus_infinity_and_change_no_softmax(with_bias, vocab):
    torch.manual_seed(0)
    hidden, weight = torch.randn(7, 6, dtype=torch.float64), torch.randn(vocab, 6, dtype=torch.float64)
    bias = torch.randn(vocab, dtype=torch.float64) if with_bias else None
    padded = aligned_logits(hidden, weight, bias)
    plain = F.linear(hidden, weight, bias)
    assert padded.shape == (7, -(-vocab // 16) * 16)
    assert torch.allclose(padded[:, :vocab], plain)
    assert (padded[:, vocab:] == float("-inf")).all()
    assert torch.allclose(padded.log_softmax(-1)[:, :vocab], plain.log_softmax(-1))
    target = torch.randint(vocab, (7,))
    assert torch.allclose(F.cross_entropy(padded, target, reduction="none"),
                          F.cross_entropy(plain, target, reduction="none"))
    assert torch.equal(padded.argmax(-1), plain.argmax(-1))
