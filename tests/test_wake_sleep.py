"""Wake-sleep and reweighted wake-sleep: each phase updates only its own parameters; RWS against exact answers,
for a one-layer sigmoid belief net and for a deep one (two binary layers, every sum enumerated)."""

import itertools

import pytest
import torch

from vaekit.config import ModelConfig, load_recipe
from vaekit.errors import ConfigError
from vaekit.models.vae import build_model
from vaekit.train import train
from vaekit.wake_sleep import reweighted_wake_sleep, sleep_phase_loss, wake_phase_loss, wake_sleep

D = torch.float64


def sbn(hidden=(), latent=3, learn_prior=True, hierarchy=()):
    torch.manual_seed(0)
    config = ModelConfig(hidden=hidden, latent=latent, latent_type="bernoulli", learn_prior=learn_prior,
                         hierarchy=hierarchy, hierarchy_hidden=())
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


def generative(model):
    """p's parameters: the decoder, the prior's top biases and (a deep net) the top-down layers."""
    return [p for name, p in model.named_parameters() if not name.startswith(("encoder.", "up."))]


def every_binary_vector(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=D)


def exact_log_px_and_grad(model, x):
    """log p(x) by summing over all 2^H binary h (H = 3, or 3 + 2 in two layers), and its gradient w.r.t. the
    generative parameters."""
    hs = every_binary_vector(model.latent_dim)[:, None, :]                                 # (2^H, 1, H)
    log_joint = model.decode(hs).log_prob(x) + model.prior().log_prob(hs)                 # (2^H, B)
    log_px = torch.logsumexp(log_joint, 0)
    return log_px, torch.autograd.grad(log_px.sum(), generative(model))


DEEP = {"hierarchy": (2,)}  # a deep sigmoid belief net: 6 pixels <- 3 binary units <- 2 binary units


def test_a_deep_sigmoid_belief_net_is_normalised_layer_by_layer_by_exact_enumeration():
    model, x = sbn(**DEEP)
    hs = every_binary_vector(5)
    assert model.prior().sample((7,)).shape == (7, 5) and set(model.prior().sample((50,)).unique().tolist()) == {0, 1}
    assert torch.allclose(model.prior().log_prob(hs).exp().sum(), torch.tensor(1.0, dtype=D), atol=1e-12)
    q_mass = model.encode(x).log_prob(hs[:, None, :]).exp().sum(0)                      # sum_h q(h|x), each x
    assert torch.allclose(q_mass, torch.ones(len(x), dtype=D), atol=1e-12)
    log_px, _ = exact_log_px_and_grad(model, every_binary_vector(6))                     # every image of 6 pixels
    assert torch.allclose(log_px.exp().sum(), torch.tensor(1.0, dtype=D), atol=1e-12)
    # the chain's density is the product of its layers': log q(h1, h2 | x) = log q(h1|x) + log q(h2|h1)
    h = model.encode(x).sample()
    by_layers = model.encoder(x).log_prob(h[:, :3]) + model.up[0](h[:, :3]).log_prob(h[:, 3:])
    assert torch.allclose(model.encode(x).log_prob(h), by_layers)


def test_importance_sampled_nll_of_a_deep_sbn_matches_the_enumerated_log_likelihood():
    from vaekit import log_likelihood

    model, x = sbn(**DEEP)
    exact, _ = exact_log_px_and_grad(model, x)
    torch.manual_seed(0)
    estimate = log_likelihood(model, x, k=20000, sample_chunk=5000)
    assert torch.allclose(estimate, exact.detach(), atol=0.02), (estimate, exact)


def test_deep_wake_and_sleep_phases_update_only_their_own_layers():
    model, x = sbn(**DEEP)
    recognition = [*model.encoder.parameters(), *model.up.parameters()]
    wake, _, _ = wake_phase_loss(model, x)
    assert is_zero(grads(wake, recognition)) and all(not is_zero([g]) for g in grads(wake, generative(model)))
    sleep = sleep_phase_loss(model, 64)
    assert is_zero(grads(sleep, generative(model))) and all(not is_zero([g]) for g in grads(sleep, recognition))


@pytest.mark.parametrize("layers", [{}, DEEP], ids=["one layer", "two layers"])
def test_rws_generative_gradient_approaches_the_exact_gradient_of_log_px_as_k_grows(layers):
    model, x = sbn(**layers)
    params = generative(model)
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


def test_vimco_gradient_for_a_deep_sbn_matches_the_enumerated_gradient_of_the_two_sample_bound():
    """L_2 = sum over every pair (h, h') of q(h|x) q(h'|x) log((w + w') / 2), over all 32 x 32 codes of the
    two-layer net, differentiated exactly with respect to every parameter (p and q), against the mean of many
    VIMCO estimates (iwae_bound on the chains, Mnih & Rezende 2016)."""
    import math

    from vaekit.objectives import iwae_bound

    model, x = sbn(**DEEP)
    x = x[:1]
    params = list(model.parameters())
    hs = every_binary_vector(5)[:, None, :]                                              # (32, 1, 5)
    log_q = model.encode(x).log_prob(hs)[:, 0]                                           # (32,)
    log_w = (model.decode(hs).log_prob(x) + model.prior().log_prob(hs))[:, 0] - log_q
    pair_q = log_q[:, None] + log_q[None, :]
    pair_bound = torch.logaddexp(log_w[:, None], log_w[None, :]) - math.log(2)
    exact = (pair_q.exp() * pair_bound).sum()
    exact_grad = torch.cat([g.flatten() for g in torch.autograd.grad(exact, params)])
    torch.manual_seed(0)
    n = 4000
    terms = iwae_bound(model, x.expand(n, -1), k=2)
    assert abs(terms.bound.mean().item() - exact.item()) < 4 * (terms.bound.std() / n ** 0.5).item()
    draws = torch.stack([torch.cat([g.flatten() for g in torch.autograd.grad(-terms.loss[j], params, retain_graph=True)])
                         for j in range(0, n, 10)])
    mean, se = draws.mean(0), draws.std(0) / len(draws) ** 0.5
    assert ((mean - exact_grad).abs() < 4.5 * se + 1e-9).all()


def test_nvil_on_a_deep_sbn_is_unbiased_for_the_enumerated_elbo_gradient():
    """No closed-form KL between two chains: the score function's learning signal is the whole Monte Carlo ELBO
    log p(x, h) - log q(h|x) (Mnih & Gregor 2014). Its mean gradient (an NVIL baseline, unnormalised) against the
    ELBO = sum over all 32 codes of q(h|x) (log p(x, h) - log q(h|x)), differentiated exactly."""
    from vaekit.estimators import NVILBaseline, ScoreFunction
    from vaekit.objectives import elbo

    model, x = sbn(**DEEP)
    x = x[:1]
    params = list(model.parameters())
    hs = every_binary_vector(5)[:, None, :]
    log_q = model.encode(x).log_prob(hs)[:, 0]
    log_joint = (model.decode(hs).log_prob(x) + model.prior().log_prob(hs))[:, 0]
    exact = (log_q.exp() * (log_joint - log_q)).sum()
    exact_grad = torch.cat([g.flatten() for g in torch.autograd.grad(exact, params)])
    torch.manual_seed(0)
    baseline = NVILBaseline(6, hidden=3, normalise=False).double()
    n = 4000
    terms = elbo(model, x.expand(n, -1), estimator=ScoreFunction(baseline))
    assert abs(terms.bound.mean().item() - exact.item()) < 4 * (terms.bound.std() / n ** 0.5).item()
    assert torch.allclose(terms.bound, terms.log_px_z - terms.kl)
    draws = torch.stack([torch.cat([g.flatten() for g in torch.autograd.grad(terms.loss[j], params, retain_graph=True)])
                         for j in range(0, n, 10)])
    mean, se = -draws.mean(0), draws.std(0) / len(draws) ** 0.5
    assert ((mean - exact_grad).abs() < 4.5 * se + 1e-9).all()
    # variance normalisation (NVIL's adaptive step) reaches a chain's score term; p's gradient is untouched
    baseline.var.fill_(16.0)
    baseline.eval()
    for normalise in (False, True):
        baseline.normalise = normalise
        torch.manual_seed(1)
        loss = elbo(model, x.expand(8, -1), estimator=ScoreFunction(baseline)).loss.sum()
        g = torch.autograd.grad(loss, generative(model) + [*model.encoder.parameters()])
        if not normalise:
            plain = g
    assert all(torch.equal(a, b) for a, b in zip(g[:len(generative(model))], plain[:len(generative(model))]))
    assert not torch.allclose(g[-1], plain[-1])


@pytest.mark.parametrize("algorithm", [["train.objective=rws", "train.k=3"],
                                       ["train.estimator=score", "train.baseline=nvil"]], ids=["rws", "nvil"])
def test_a_deep_sigmoid_belief_net_trains_through_the_one_trainer(tmp_path, tiny_images, algorithm):
    config = load_recipe(None, ["model.hidden=[]", "model.latent=8", "model.hierarchy=[4]", "model.hierarchy_hidden=[]",
                                "model.latent_type=bernoulli", "model.learn_prior=true", *algorithm,
                                "train.epochs=8", "train.batch_size=32", "train.lr=1e-2", "eval.k=10"])
    result = train(config, tmp_path / "deep", data=tiny_images, progress=False)
    import json
    lines = [json.loads(line) for line in (tmp_path / "deep" / "metrics.jsonl").read_text().splitlines()]
    assert result.finished and result.model.sizes == (8, 4) and lines[-1]["val_elbo"] > lines[0]["val_elbo"] + 1.0
    from vaekit.evaluate import evaluate
    x = tiny_images.test[:40].flatten(1).float().div(255).bernoulli(generator=torch.Generator().manual_seed(0))
    report = evaluate(result.model, x, k=50, batch_size=20, sample_chunk=10)
    assert report["nll"] <= -report["elbo"] + 1.0 and report["latent_dim"] == 12
    assert len(report["active_units_by_layer"]) == 2 and sum(report["active_units_by_layer"]) == report["active_units"]


def test_wake_sleep_configuration_errors():
    deep = ["model.hierarchy=[4]", "model.latent_type=bernoulli"]
    for wrong in (["train.objective=elbo"], ["train.estimator=gumbel"], ["train.objective=rws", "train.estimator=score"],
                  ["train.estimator=score", "train.capacity_max=5"]):  # binary layers: score functions only
        with pytest.raises(ConfigError, match="'wake-sleep', 'rws', 'iwae'"):
            load_recipe(None, [*deep, *wrong])
    load_recipe(None, [*deep, "train.estimator=score", "train.baseline=nvil"])  # NVIL on a deep net
    with pytest.raises(ConfigError, match="own updates"):
        load_recipe(None, ["train.objective=wake-sleep", "train.beta=2"])
    with pytest.raises(ConfigError, match="discrete latents"):
        load_recipe(None, ["model.learn_prior=true"])


@pytest.mark.parametrize("algorithm", [["train.objective=rws", "train.k=3"],
                                       ["train.estimator=score", "train.baseline=nvil"]], ids=["rws", "nvil"])
def test_a_deep_sigmoid_belief_net_resumes_exactly(train_split_and_whole, algorithm):
    """Half the epochs, stop, resume: the same parameters bit for bit as one run (the chains' draws come from the
    saved generator state; NVIL's baseline net and running moments are in the checkpoint)."""
    whole, _ = train_split_and_whole(["model.hidden=[]", "model.latent=8", "model.hierarchy=[4]",
                                      "model.hierarchy_hidden=[]", "model.latent_type=bernoulli",
                                      "model.learn_prior=true", *algorithm, "train.batch_size=32", "eval.k=5"], epochs=4)
    assert whole.model.sizes == (8, 4)
