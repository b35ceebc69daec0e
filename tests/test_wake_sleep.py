"""Wake-sleep and reweighted wake-sleep: each phase updates only its own parameters; RWS against exact answers."""

import itertools

import pytest
import torch

from vaekit.config import ModelConfig, load_recipe
from vaekit.errors import ConfigError
from vaekit.models.vae import build_model
from vaekit.train import train
from vaekit.wake_sleep import reweighted_wake_sleep, sleep_phase_loss, wake_phase_loss, wake_sleep

D = torch.float64


def sbn(hidden=(), latent=3, learn_prior=True):
    torch.manual_seed(0)
    config = ModelConfig(hidden=hidden, latent=latent, latent_type="bernoulli", learn_prior=learn_prior)
    model = build_model(config, (1, 2, 3), "bernoulli").double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model, (torch.rand(4, 6, dtype=D) > 0.5).double()


def grads(loss, params):
    return [g for g in torch.autograd.grad(loss.sum(), params, allow_unused=True)]


def is_zero(gs):
    return all(g is None or torch.count_nonzero(g) == 0 for g in gs)


def test_wake_phase_updates_only_the_generative_model_and_sleep_only_recognition():
    model, x = sbn()
    generative = [*model.decoder.parameters(), model.prior_logits]
    recognition = list(model.encoder.parameters())
    wake, _, _ = wake_phase_loss(model, x)
    assert is_zero(grads(wake, recognition)) and not is_zero(grads(wake, generative))
    sleep = sleep_phase_loss(model, 8)
    assert is_zero(grads(sleep, generative)) and not is_zero(grads(sleep, recognition))
    both = wake_sleep(model, x).loss  # one loss, the sum of both phases' updates
    torch.manual_seed(3)
    g_both = grads(wake_sleep(model, x).loss, generative + recognition)
    torch.manual_seed(3)
    w, _, _ = wake_phase_loss(model, x)
    s = sleep_phase_loss(model, len(x))
    g_gen, g_rec = grads(w, generative), grads(s, recognition)
    for a, b in zip(g_both, g_gen + g_rec):
        assert torch.allclose(a, b)
    assert both.shape == (4,)


def exact_log_px_and_grad(model, x):
    """log p(x) by summing over all 2^3 binary h, and its gradient w.r.t. the generative parameters."""
    params = [*model.decoder.parameters(), model.prior_logits]
    hs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)), dtype=D)[:, None, :]  # (8, 1, 3)
    log_joint = model.decode(hs).log_prob(x) + model.prior().log_prob(hs)                 # (8, B)
    log_px = torch.logsumexp(log_joint, 0)
    return log_px, torch.autograd.grad(log_px.sum(), params)


def test_rws_generative_gradient_approaches_the_exact_gradient_of_log_px_as_k_grows():
    model, x = sbn()
    params = [*model.decoder.parameters(), model.prior_logits]
    _, exact = exact_log_px_and_grad(model, x)
    exact = torch.cat([g.flatten() for g in exact])
    errors = []
    for k in (1, 200):
        torch.manual_seed(0)
        draws = []
        for _ in range(300):
            g = grads(-reweighted_wake_sleep(model, x, k=k).loss, params)
            draws.append(torch.cat([t.flatten() for t in g]))
        errors.append(((torch.stack(draws).mean(0) - exact).norm() / exact.norm()).item())
    assert errors[1] < 0.05 and errors[1] < errors[0] / 3, errors  # self-normalised IS: bias falls with K


def test_rws_bound_lies_below_the_exact_log_likelihood_and_tightens():
    model, x = sbn()
    log_px, _ = exact_log_px_and_grad(model, x)
    torch.manual_seed(0)
    small = torch.stack([reweighted_wake_sleep(model, x, k=2).bound for _ in range(2000)])
    large = torch.stack([reweighted_wake_sleep(model, x, k=64).bound for _ in range(500)])
    se = lambda d: d.std(0) / len(d) ** 0.5  # noqa: E731
    gap = log_px.detach() - large.mean(0)
    assert (gap > -4 * se(large)).all() and (gap < 0.05).all()  # L_64 <= log p(x), within noise, and close
    assert (large.mean(0) - small.mean(0) > -4 * (se(small) + se(large))).all()  # L_2 <= L_64


@pytest.mark.parametrize("objective", ["wake-sleep", "rws"])
def test_helmholtz_machine_trains_through_the_one_trainer(tmp_path, tiny_images, objective):
    config = load_recipe(None, ["model.hidden=[]", "model.latent=8", "model.latent_type=bernoulli",
                                "model.learn_prior=true", f"train.objective={objective}", "train.k=3",
                                "train.epochs=8", "train.batch_size=32", "train.lr=1e-2", "eval.k=10"])
    result = train(config, tmp_path / objective, data=tiny_images, progress=False)
    import json
    lines = [json.loads(line) for line in (tmp_path / objective / "metrics.jsonl").read_text().splitlines()]
    assert result.finished and lines[-1]["val_elbo"] > lines[0]["val_elbo"] + 1.0


def test_wake_sleep_configuration_errors():
    with pytest.raises(ConfigError, match="own updates"):
        load_recipe(None, ["train.objective=wake-sleep", "train.beta=2"])
    with pytest.raises(ConfigError, match="discrete latents"):
        load_recipe(None, ["model.learn_prior=true"])
