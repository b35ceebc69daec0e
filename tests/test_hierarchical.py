"""Hierarchical VAEs (stacked Gaussian latent layers; Burda et al. 2016): the chain's densities and samples against
the joint Gaussian of a linear model, bounds against its closed-form log p(x), gradients, training and refusal."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from vaekit import elbo, iwae_bound, log_likelihood
from vaekit.config import load_recipe
from vaekit.errors import ConfigError
from vaekit.models import HierarchicalVAE
from vaekit.train import train

D, Z1, Z2 = 4, 3, 2


def linear_model(seed: int = 0, z1: int = Z1, z2: int = Z2) -> HierarchicalVAE:
    """A linear-Gaussian two-layer model (float64): every step a single Linear layer whose log-variance outputs
    ignore their input (weights zeroed), so that p(z1|z2), q(z2|z1) and p(x|z1) are Gaussians with linear means
    and fixed variances and everything is jointly Gaussian."""
    torch.manual_seed(seed)
    model = HierarchicalVAE(D, (), (z1, z2), (), activation="tanh", likelihood="gaussian").double()
    with torch.no_grad():
        for step, size in ((model.down[0], z1), (model.up[0], z2)):
            step.net[-1].weight[size:] = 0
            step.net[-1].bias[size:] = torch.randn(size, dtype=torch.float64) * 0.3 - 0.5
        model.decoder.head.raw_scale.fill_(0.2)
    return model


def mean_and_log_var(linear: torch.nn.Linear, size: int):
    """(weight, bias, variance) of the mean part and the fixed variance of a Gaussian step."""
    return linear.weight[:size], linear.bias[:size], linear.bias[size:].exp()


def joint_prior(model):
    """[z1, z2] with z2 ~ N(0, I), z1 | z2 ~ N(A z2 + a, diag v1): mean (a, 0), covariance [[A A' + V1, A], [A', I]]."""
    z1, z2 = model.sizes
    A, a, v1 = mean_and_log_var(model.down[0].net[-1], z1)
    cov = torch.zeros(z1 + z2, z1 + z2, dtype=torch.float64)
    cov[:z1, :z1] = A @ A.T + torch.diag(v1)
    cov[:z1, z1:], cov[z1:, :z1], cov[z1:, z1:] = A, A.T, torch.eye(z2, dtype=torch.float64)
    return torch.cat([a, torch.zeros(z2, dtype=torch.float64)]), cov


def likelihood(model):
    """(C, c, s^2) of x | z1 ~ N(C z1 + c, diag s^2)."""
    s = torch.nn.functional.softplus(model.decoder.head.raw_scale) + 1e-3
    return model.decoder.net[-1].weight, model.decoder.net[-1].bias, s ** 2


def exact_log_px(model, x):
    """p(x) = N(C a + c, C (A A' + V1) C' + diag s^2)."""
    z1 = model.sizes[0]
    mean, cov = joint_prior(model)
    C, c, s2 = likelihood(model)
    return MultivariateNormal(C @ mean[:z1] + c, C @ cov[:z1, :z1] @ C.T + torch.diag(s2)).log_prob(x)


@torch.no_grad()
def test_the_prior_chain_is_the_joint_gaussian_of_its_layers():
    model = linear_model()
    mean, cov = joint_prior(model)
    z = torch.randn(7, 5, Z1 + Z2, dtype=torch.float64)
    prior = model.prior()
    assert prior.event_shape == (Z1 + Z2,) and prior.batch_shape == ()
    assert torch.allclose(prior.log_prob(z), MultivariateNormal(mean, cov).log_prob(z), atol=1e-10)
    assert torch.allclose(prior.mean, mean, atol=1e-12)  # linear steps: the greedy mean is the mean


@torch.no_grad()
def test_posterior_samples_have_the_joint_gaussians_moments_and_density():
    """q(z1|x) q(z2|z1) with q(z2|z1) = N(B z1 + b, diag v2): mean (m, B m + b), covariance
    [[S, S B'], [B S, B S B' + V2]]. log_prob equals that density; 200k samples match its moments within 5
    standard errors."""
    model = linear_model(1)
    x = torch.randn(1, D, dtype=torch.float64)
    q = model.encode(x)
    first = q.first.base_dist
    m, S = first.loc[0], torch.diag(first.scale[0] ** 2)
    B, b, v2 = mean_and_log_var(model.up[0].net[-1], Z2)
    mean = torch.cat([m, B @ m + b])
    cov = torch.cat([torch.cat([S, S @ B.T], 1), torch.cat([B @ S, B @ S @ B.T + torch.diag(v2)], 1)])
    joint = MultivariateNormal(mean, cov)
    z = q.sample((200_000,))[:, 0]
    assert torch.allclose(q.log_prob(z[:100, None])[:, 0], joint.log_prob(z[:100]), atol=1e-10)
    assert torch.allclose(q.mean[0], mean, atol=1e-12)
    stderr = (cov.diagonal() / len(z)).sqrt()
    assert ((z.mean(0) - mean).abs() < 5 * stderr).all()
    sample_cov = torch.cov(z.T)
    cov_stderr = ((cov ** 2 + torch.outer(cov.diagonal(), cov.diagonal())) / len(z)).sqrt()  # Gaussian, Wishart
    assert ((sample_cov - cov).abs() < 5 * cov_stderr).all()


@torch.no_grad()
def test_elbo_below_iwae_below_the_exact_log_px():
    model = linear_model(2)
    x = torch.randn(6, D, dtype=torch.float64)
    exact = exact_log_px(model, x)
    torch.manual_seed(3)
    runs = 400
    bound = {k: torch.stack([iwae_bound(model, x, k).bound for _ in range(runs)]) for k in (1, 5, 50)}
    mean = {k: v.mean(0) for k, v in bound.items()}
    err = {k: v.std(0) / runs ** 0.5 for k, v in bound.items()}
    elbo_mean = torch.stack([elbo(model, x).bound for _ in range(runs)]).mean(0)
    assert torch.allclose(elbo_mean, mean[1], atol=float(6 * err[1].max()))  # L_1 is the ELBO (MC KL)
    assert (mean[1] < mean[5]).all() and (mean[5] < mean[50]).all()  # gaps of nats here, errors of hundredths
    assert (mean[50] < exact + 4 * err[50]).all()
    assert (exact - mean[50]).min() > 0.05  # a random encoder: the bounds are strict
    assert (log_likelihood(model, x, k=2000, sample_chunk=500) < exact).all()


def exact_posterior_model(seed: int) -> HierarchicalVAE:
    """The linear model with one unit per layer, whose true posterior p(z1, z2 | x) = p(z1 | x) p(z2 | z1) is a chain
    of 1-D Gaussians with linear means and fixed variances, set into the encoder exactly."""
    model = linear_model(seed, z1=1, z2=1)
    mean, cov = joint_prior(model)
    C, c, s2 = likelihood(model)
    P, a = cov[:1, :1], mean[:1]
    precision = torch.diag(1 / s2)
    post_cov = torch.linalg.inv(torch.linalg.inv(P) + C.T @ precision @ C)            # z1 | x
    gain = cov[1:, :1] @ torch.linalg.inv(P)                                          # z2 | z1 = N(K (z1 - a), I - K A)
    with torch.no_grad():
        enc = model.encoder.net[-1]
        enc.weight.zero_()
        enc.weight[:1] = post_cov @ C.T @ precision
        enc.bias[:1] = post_cov @ (torch.linalg.inv(P) @ a - C.T @ precision @ c)
        enc.bias[1:] = post_cov.diagonal().log()
        up = model.up[0].net[-1]
        up.weight.zero_()
        up.weight[:1] = gain
        up.bias[:1] = -gain @ a
        up.bias[1:] = (torch.eye(1, dtype=torch.float64) - gain @ cov[:1, 1:]).diagonal().log()
    return model


@torch.no_grad()
def test_with_the_exact_posterior_every_bound_is_log_px_at_every_sample():
    """log p(x, z) - log q(z|x) is then log p(x) at every z, so the ELBO (Monte Carlo KL included), the IWAE bound
    and the NLL estimate are all exact."""
    model = exact_posterior_model(6)
    x = torch.randn(5, D, dtype=torch.float64)
    exact = exact_log_px(model, x)
    for _ in range(3):
        assert torch.allclose(elbo(model, x).bound, exact, atol=1e-10)
        assert torch.allclose(iwae_bound(model, x, 7).bound, exact, atol=1e-10)
    assert torch.allclose(log_likelihood(model, x, k=100, sample_chunk=30), exact, atol=1e-10)


def iwae_gradients(model, x, k, estimator, seed):
    """(bound, inference-network gradient, generative-network gradient) of the summed IWAE loss, flattened."""
    inference = [*model.encoder.parameters(), *model.up.parameters()]
    generative = [*model.decoder.parameters(), *model.down.parameters()]
    torch.manual_seed(seed)
    terms = iwae_bound(model, x, k, estimator)
    grads = torch.autograd.grad(terms.loss.sum(), inference + generative)
    flat = lambda gs: torch.cat([g.flatten() for g in gs])
    return terms.bound, flat(grads[:len(inference)]), flat(grads[len(inference):])


def test_dreg_through_a_hierarchy_keeps_the_generative_gradient_and_is_unbiased():
    """Doubly reparameterised gradients (Tucker et al. 2019) through both layers of q: the bound and the generative
    networks' gradient are the standard IWAE ones exactly, the inference networks' agree with the standard ones in
    expectation (1000 draws, 4.5 standard errors per coordinate) and are exactly zero at the true posterior."""
    from vaekit.estimators import DoublyReparameterized
    dreg = DoublyReparameterized()
    model = linear_model(7)
    x = torch.randn(4, D, dtype=torch.float64)
    bound, _, generative = iwae_gradients(model, x, 5, None, seed=1)
    bound_dreg, _, generative_dreg = iwae_gradients(model, x, 5, dreg, seed=1)
    assert torch.allclose(bound, bound_dreg, atol=1e-12) and torch.allclose(generative, generative_dreg, atol=1e-12)
    standard = torch.stack([iwae_gradients(model, x, 5, None, s)[1] for s in range(1000)])
    doubly = torch.stack([iwae_gradients(model, x, 5, dreg, s)[1] for s in range(1000)])
    stderr = ((standard.var(0) + doubly.var(0)) / 1000).sqrt()
    assert ((standard.mean(0) - doubly.mean(0)).abs() <= 4.5 * stderr + 1e-12).all()
    exact = exact_posterior_model(8)
    for seed in range(3):
        _, inference, _ = iwae_gradients(exact, x, 6, dreg, seed)
        _, noisy, _ = iwae_gradients(exact, x, 6, None, seed)
        assert inference.abs().max() < 1e-10 and noisy.abs().max() > 1e-3


class FixedNoise(torch.nn.Module):
    """``objective(model, x).bound.sum()`` with the same noise on every call: a deterministic function of the
    parameters, which torch.func.functional_call swaps in."""

    def __init__(self, model, objective):
        super().__init__()
        self.model, self.objective = model, objective

    def forward(self, x):
        torch.manual_seed(5)
        return self.objective(self.model, x).bound.sum()


@pytest.mark.parametrize("objective", [lambda m, x: elbo(m, x, samples=2), lambda m, x: iwae_bound(m, x, 3)])
def test_elbo_and_iwae_gradients_through_both_layers_pass_float64_gradcheck(objective):
    from torch.func import functional_call
    model = linear_model(4)
    x = torch.randn(3, D, dtype=torch.float64)
    wrapper = FixedNoise(model, objective)
    names = ["model.encoder.net.0.weight", "model.up.0.net.0.weight", "model.down.0.net.0.weight",
             "model.decoder.net.0.weight", "model.up.0.net.0.bias"]
    params = dict(wrapper.named_parameters())
    inputs = tuple(params[n].detach().clone().requires_grad_() for n in names)
    assert torch.autograd.gradcheck(lambda *values: functional_call(wrapper, dict(zip(names, values)), (x,)), inputs)


def test_a_two_layer_vae_trains_resumes_exactly_and_is_scored(tmp_path, tiny_images, train_split_and_whole):
    whole, _ = train_split_and_whole(["model.hidden=16", "model.latent=4", "model.hierarchy=[2]",
                                      "model.hierarchy_hidden=[8]", "model.activation=tanh", "model.init=glorot",
                                      "model.output_bias=data", "train.batch_size=32", "train.lr=3e-3", "eval.k=20"],
                                     epochs=4)
    from vaekit.evaluate import evaluate
    x = tiny_images.test[:40].flatten(1).float().div(255).bernoulli(generator=torch.Generator().manual_seed(0))
    report = evaluate(whole.model, x, k=50, batch_size=20, sample_chunk=10)
    assert math.isfinite(report["nll"]) and report["nll"] <= -report["elbo"] + 1.0
    assert report["latent_dim"] == 6 and report["mutual_information"] is None
    assert len(report["active_units_by_layer"]) == 2 and sum(report["active_units_by_layer"]) == report["active_units"]
    from vaekit.report import format_report
    text = format_report({**report, "name": "h", "split": "test", "epochs": 4, "steps": 1, "finished": True,
                          "train_seconds": 1.0, "likelihood": "bernoulli"})
    assert f"{report['active_units']} of 6 ({' + '.join(map(str, report['active_units_by_layer']))} by layer)" in text
    from vaekit import plots
    assert plots.latent_scatter(whole.model, x, None, tmp_path / "s.png").exists()
    assert plots.layer_samples(whole.model, (1, 8, 8), tmp_path / "layers.png", rows=3, cols=4).exists()
    assert whole.model.sample(5, seed=0).shape == (5, 64)
    from vaekit.export import export_run, load_exported  # the config alone rebuilds the stack
    _, exported = load_exported(export_run(tmp_path / "whole", tmp_path / "exported"))
    assert isinstance(exported, HierarchicalVAE) and torch.equal(exported.sample(5, seed=0), whole.model.sample(5, seed=0))


def test_a_three_layer_vae_trains_with_the_iwae_bound_and_dreg(tmp_path, tiny_images):
    config = load_recipe(None, ["model.hidden=16", "model.latent=4", "model.hierarchy=[2, 2]",
                                "model.hierarchy_hidden=[8]", "train.objective=iwae", "train.k=3", "train.estimator=dreg",
                                "train.batch_size=64", "train.epochs=2", "eval.k=10"])
    result = train(config, tmp_path / "run", data=tiny_images, progress=False)
    assert result.finished and len(result.model.sizes) == 3


@pytest.mark.parametrize("overrides", [["model.arch=conv"], ["train.free_bits=0.25"], ["model.flow=2"],
                                       ["model.latent_type=categorical"], ["model.hierarchy_hidden=[0]"],
                                       ["model.hierarchy=[0]"]])
def test_hierarchies_where_they_do_not_apply_are_refused_with_the_fix(overrides):
    with pytest.raises(ConfigError, match="model.hierarchy"):
        load_recipe(None, ["model.hierarchy=[5]", *overrides])
