"""Planar-flow posteriors (Rezende & Mohamed 2015): exact log-determinants, invertibility, log q at samples, and
a flow that beats the best diagonal Gaussian on a correlated posterior."""

import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal

from vaekit.config import load_recipe
from vaekit.errors import ConfigError
from vaekit.flows import MEAN_SAMPLES, PlanarFlowPosterior, planar, planar_parameters
from vaekit.evaluate import evaluate
from vaekit.train import train

D = torch.float64


def test_the_log_determinant_is_the_jacobians_exactly():
    torch.manual_seed(0)
    params = 2 * torch.randn(4, 2 * 3 + 1, dtype=D)
    z = torch.randn(4, 3, dtype=D)
    _, log_det = planar(z, params)
    for i in range(4):
        jacobian = torch.autograd.functional.jacobian(lambda v: planar(v.unsqueeze(0), params[i:i + 1])[0][0], z[i])
        assert torch.allclose(log_det[i], torch.linalg.slogdet(jacobian).logabsdet, atol=1e-12)


def test_every_layer_stays_invertible_whatever_the_encoder_outputs():
    """w^T u_hat > -1 for any raw (u, w, b), so 1 + h' w^T u_hat > 0: no determinant vanishes or changes sign."""
    torch.manual_seed(1)
    raw = 20 * torch.randn(10_000, 2 * 5 + 1, dtype=D)
    u_hat, w, _ = planar_parameters(raw)
    assert ((w * u_hat).sum(-1) > -1).all()
    _, log_det = planar(torch.randn(10_000, 5, dtype=D), raw)
    assert torch.isfinite(log_det).all()


def test_log_q_at_samples_is_the_base_density_minus_the_log_determinants():
    torch.manual_seed(2)
    base = Independent(Normal(torch.randn(6, 2, dtype=D), torch.rand(6, 2, dtype=D) + 0.5), 1)
    q = PlanarFlowPosterior(base, torch.randn(6, 3, 5, dtype=D))
    z = q.rsample((7,))
    assert z.shape == (7, 6, 2) and q.log_prob(z).shape == (7, 6)
    with pytest.raises(NotImplementedError, match="own samples"):
        q.log_prob(z.clone())
    # the same density by change of variables on a grid: q integrates to 1 (2-D, one example, one layer)
    single = PlanarFlowPosterior(Independent(Normal(torch.zeros(1, 2, dtype=D), torch.ones(1, 2, dtype=D)), 1),
                                 torch.tensor([[[1.5, -0.5, 1.0, 2.0, 0.3]]], dtype=D))
    axis = torch.linspace(-8, 8, 801, dtype=D)
    grid = torch.cartesian_prod(axis, axis).unsqueeze(1)                      # base points z0, (N, 1, 2)
    z_k, log_det = single.flow(grid)
    base_density = single.base.log_prob(grid).exp()
    cell = (axis[1] - axis[0]) ** 2
    assert float((base_density * cell).sum()) == pytest.approx(1, abs=1e-6)
    # E_q[f(z)] two ways: by the pushed-forward samples and by the base measure (law of the unconscious statistician)
    weights = (base_density * cell).unsqueeze(-1)
    mean_by_grid = (z_k * weights).sum(0)
    sd = ((z_k - mean_by_grid) ** 2 * weights).sum(0).sqrt()
    assert ((single.mean - mean_by_grid).abs() < 4 * sd / math.sqrt(MEAN_SAMPLES)).all()  # Monte Carlo error


def test_a_planar_flow_beats_the_best_diagonal_gaussian_on_a_correlated_posterior():
    """Target p(z) = N(0, S) with correlation 0.9: the best diagonal q has KL(q || p) = 0.5 log(prod S^-1_ii / det
    S^-1) in closed form; a flow of 8 planar layers fitted by the same reparameterised objective gets below it."""
    cov = torch.tensor([[1.0, 0.9], [0.9, 1.0]], dtype=D)
    target = MultivariateNormal(torch.zeros(2, dtype=D), cov)
    precision = torch.linalg.inv(cov)
    best_diagonal_kl = 0.5 * float(torch.log(precision.diagonal()).sum() - torch.logdet(precision))
    torch.manual_seed(3)
    loc = torch.zeros(1, 2, dtype=D, requires_grad=True)
    log_scale = torch.zeros(1, 2, dtype=D, requires_grad=True)
    layers = (0.1 * torch.randn(1, 8, 5, dtype=D)).requires_grad_()
    optimiser = torch.optim.Adam([loc, log_scale, layers], lr=0.02)
    for _ in range(1500):
        q = PlanarFlowPosterior(Independent(Normal(loc, log_scale.exp()), 1), layers)
        z = q.rsample((256,))
        loss = (q.log_prob(z) - target.log_prob(z)).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    q = PlanarFlowPosterior(Independent(Normal(loc.detach(), log_scale.detach().exp()), 1), layers.detach())
    z = q.rsample((200_000,))
    kl = q.log_prob(z) - target.log_prob(z)
    estimate, stderr = float(kl.mean()), float(kl.std()) / math.sqrt(len(kl))
    assert estimate + 4 * stderr < 0.5 * best_diagonal_kl, (estimate, best_diagonal_kl)  # at least halved


def test_a_flow_vae_trains_and_is_scored_by_importance_sampling(tmp_path, tiny_images):
    config = load_recipe(None, ["model.hidden=16", "model.latent=3", "model.flow=4", "train.batch_size=32",
                                "train.epochs=3", "train.lr=3e-3", "eval.k=10"])
    result = train(config, tmp_path / "run", data=tiny_images, progress=False)
    assert result.finished
    x = tiny_images.test[:40].flatten(1).float().div(255).bernoulli(generator=torch.Generator().manual_seed(0))
    report = evaluate(result.model, x, k=50, batch_size=20, sample_chunk=10)
    assert math.isfinite(report["nll"]) and report["nll"] <= -report["elbo"] + 1.0  # K = 50 IS vs one-sample ELBO
    assert report["mutual_information"] is None and 0 <= report["active_units"] <= 3
    from vaekit import plots  # the pictures that read q(z|x): E_q[z] by Monte Carlo, traversals ranked by it
    assert plots.traversals(result.model, x, (1, 8, 8), tmp_path / "t.png").exists()
    assert plots.latent_scatter(result.model, x, None, tmp_path / "s.png").exists()


@pytest.mark.parametrize("overrides", [["model.flow=2", "model.latent_type=categorical"],
                                       ["model.flow=2", "train.free_bits=0.25"], ["model.flow=-1"]])
def test_flows_where_they_do_not_apply_are_refused_with_the_fix(overrides):
    with pytest.raises(ConfigError, match="model.flow"):
        load_recipe(None, overrides)


@pytest.mark.parametrize("init", ["default", "glorot"])
def test_a_new_flow_vae_starts_near_the_plain_diagonal_gaussian(init, tiny_images):
    """The encoder's flow outputs start 100x smaller (start_near_identity), so the first samples of q_K are
    nearly those of q_0, whatever the initialisation of the rest; not exactly zero, which would be a saddle."""
    from vaekit.families import family_of
    config = load_recipe(None, ["model.hidden=16", "model.latent=3", "model.flow=4", f"model.init={init}"])
    family = family_of(config)
    model = family.build(config, family.spec(config, tiny_images))
    family.initialise(model, config, tiny_images)
    x = tiny_images.test[:20].flatten(1).float().div(255)
    q = model.encode(x)
    z0 = q.base.rsample()
    z, log_det = q.flow(z0)
    assert (z - z0).abs().max() < 0.05 and log_det.abs().max() < 0.05
    assert q.params.abs().max() > 0  # bent a little: gradients reach u and w


def test_the_kl_estimate_is_unbiased_and_exact_for_the_identity_flow():
    """KL(q_0 || p) + log p(z_0) - log p(z_K) - log det: its mean matches the plain log q - log p estimate (both
    unbiased) within their standard errors, and with an identity flow it is the closed-form KL at every sample."""
    torch.manual_seed(4)
    prior = Independent(Normal(torch.zeros(3, dtype=D), torch.ones(3, dtype=D)), 1).expand((2,))
    base = Independent(Normal(torch.randn(2, 3, dtype=D), torch.rand(2, 3, dtype=D) + 0.3), 1)
    q = PlanarFlowPosterior(base, torch.randn(2, 4, 7, dtype=D))
    z = q.rsample((400_000,))
    ours, plain = q.kl_estimate(prior, z), q.log_prob(z) - prior.log_prob(z)
    error = 4 * (plain.std(0) / math.sqrt(len(z)))
    assert ((ours.mean(0) - plain.mean(0)).abs() < error).all()
    assert (ours.std(0) < plain.std(0)).all()  # and it is the quieter one here
    identity = PlanarFlowPosterior(base, torch.zeros(2, 4, 7, dtype=D))
    z = identity.rsample((5,))
    exact = torch.distributions.kl_divergence(base, prior)
    assert torch.allclose(identity.kl_estimate(prior, z), exact.expand(5, 2), atol=1e-12)
