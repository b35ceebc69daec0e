"""Mixed precision (``train.precision = 'bfloat16'``): the network's products in bfloat16, everything a
likelihood or a KL is computed from in float32, evaluation untouched."""

import json

import pytest
import torch
import torch.nn.functional as F

from vaekit.config import load_recipe
from vaekit.distributed import Dist
from vaekit.errors import ConfigError
from vaekit.families import family_of
from vaekit.nets.softmax_output import token_nll
from vaekit.nets.heads import bernoulli, diagonal_gaussian, full_precision
from vaekit.train import ObjectiveModule, train

TINY = ["model.hidden=16", "model.latent=3", "train.batch_size=32", "train.epochs=3", "train.lr=3e-3", "eval.k=10"]


def test_precision_is_checked_by_name():
    with pytest.raises(ConfigError, match="train.precision = 'float16'.*float32, bfloat16"):
        load_recipe(None, ["train.precision=float16"])


def test_distribution_heads_take_16_bit_parameters_back_to_float32_and_leave_float64_alone():
    params = torch.randn(5, 6)
    assert full_precision(params.bfloat16()).dtype == torch.float32
    assert full_precision(params.double()).dtype == torch.float64
    q = diagonal_gaussian(params.bfloat16())
    assert q.mean.dtype == torch.float32
    x = (torch.rand(5, 6) < 0.5).float()
    p16, p32 = bernoulli(params.bfloat16()), bernoulli(params.bfloat16().float())
    assert torch.equal(p16.log_prob(x), p32.log_prob(x))  # the same bfloat16 values, scored in float32


def test_token_nll_reads_bfloat16_logits_exactly_and_returns_their_gradient_in_bfloat16():
    torch.manual_seed(0)
    logits = (3 * torch.randn(40, 50)).bfloat16().requires_grad_()
    target = torch.randint(50, (40,))
    nll = token_nll(logits, target)
    assert nll.dtype == torch.float32
    exact = F.cross_entropy(logits.detach().double(), target, reduction="none")
    assert torch.allclose(nll.double(), exact, atol=1e-5)  # float32 arithmetic on the exact bfloat16 values
    weights = torch.rand(40)
    (nll * weights).sum().backward()
    assert logits.grad.dtype == torch.bfloat16
    logits_64 = logits.detach().double().requires_grad_()
    (F.cross_entropy(logits_64, target, reduction="none") * weights.double()).sum().backward()
    assert torch.allclose(logits.grad.double(), logits_64.grad, atol=1e-2, rtol=1e-2)  # bfloat16 rounding


@pytest.mark.parametrize("extra", [[], ["model.latent_type=categorical", "train.estimator=gumbel"]])
def test_a_bfloat16_step_gives_float32_terms_close_to_the_float32_step(tiny_images, extra):
    config = load_recipe(None, TINY + extra)
    family = family_of(config)
    spec = family.spec(config, tiny_images)
    torch.manual_seed(0)
    model, estimator = family.build(config, spec), family.estimator(config, spec)
    feed = family.feed(config, tiny_images, Dist())
    x, _ = feed.batch(feed.plan(torch.Generator().manual_seed(0)), 0, torch.Generator().manual_seed(0))
    terms = {}
    for precision in ("float32", "bfloat16"):
        step = ObjectiveModule(model, family, "elbo", 1, estimator, precision=precision)
        torch.manual_seed(1)
        terms[precision] = step(x)
    assert not torch.equal(terms["float32"][0], terms["bfloat16"][0])  # the products did run in bfloat16
    for full, mixed in zip(terms["float32"], terms["bfloat16"]):
        assert mixed.dtype == torch.float32
        assert torch.allclose(mixed, full, rtol=0.02, atol=0.5)  # bfloat16 keeps ~3 significant digits


def test_a_bfloat16_run_learns_and_evaluates_in_float32(tmp_path, tiny_images):
    config = load_recipe(None, TINY + ["train.precision=bfloat16"])
    result = train(config, tmp_path / "run", data=tiny_images, progress=False)
    assert result.finished
    assert all(p.dtype == torch.float32 for p in result.model.parameters())  # the master weights
    epochs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert epochs[-1]["val_elbo"] > epochs[0]["val_elbo"]


def test_a_float32_run_may_continue_in_mixed_precision(tmp_path, tiny_images):
    train(load_recipe(None, TINY + ["train.epochs=1"]), tmp_path / "run", data=tiny_images, progress=False)
    more = load_recipe(None, TINY + ["train.precision=bfloat16"])
    result = train(more, tmp_path / "run", resume=True, data=tiny_images, progress=False)
    assert result.finished and result.epoch == 3


@pytest.mark.parametrize("bidirectional", [False, True])
def test_the_lstm_falls_back_to_a_float32_recurrence_where_the_cpu_has_no_bfloat16_lstm(monkeypatch, bidirectional):
    """AVX2-only CPUs have no oneDNN bfloat16 LSTM: forced here, the recurrence must equal the float32 LSTM's
    exactly (packed and unpacked inputs, with a bfloat16 initial state), and its gradients must reach the inputs."""
    from torch.nn.utils.rnn import pack_padded_sequence

    from vaekit.nets import recurrent
    torch.manual_seed(0)
    lstm = recurrent.LSTM(6, 5, batch_first=True, bidirectional=bidirectional)
    x = torch.randn(3, 4, 6, requires_grad=True)
    h0 = tuple(torch.randn(2 if bidirectional else 1, 3, 5) for _ in range(2))
    reference, _ = lstm(x, h0)
    monkeypatch.setattr(recurrent, "bfloat16_lstm_available", lambda: False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, (h, c) = lstm(x, tuple(t.bfloat16() for t in h0) if not bidirectional else h0)
        packed, _ = lstm(pack_padded_sequence(x, torch.tensor([4, 3, 2]), batch_first=True))
    assert out.dtype == h.dtype == packed.data.dtype == torch.float32
    if bidirectional:
        assert torch.equal(out, reference)
    else:  # the initial state went through bfloat16 on its way in
        assert torch.equal(out, lstm(x, tuple(t.bfloat16().float() for t in h0))[0])
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()



def test_native_bfloat16_is_read_from_the_cpu_flags():
    from vaekit.precision import cpu_has_native_bfloat16
    assert cpu_has_native_bfloat16("processor: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n") is True
    assert cpu_has_native_bfloat16("processor: 0\nflags\t\t: fpu sse4_2 avx2 fma\n") is False      # AVX2-only EPYC
    assert cpu_has_native_bfloat16("processor: 0\nFeatures\t: fp asimd bf16 i8mm\n") is True       # aarch64
    assert cpu_has_native_bfloat16("processor: 0\n") is None
