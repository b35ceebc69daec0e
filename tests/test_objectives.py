"""The bounds against exact answers on probabilistic PCA, where log p(x) is known in closed form."""

import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from vaekit.models import PPCA
from vaekit.objectives import elbo, iwae_bound, kl_term, log_likelihood


@pytest.fixture
def ppca():
    torch.manual_seed(0)
    model = PPCA(data_dim=5, latent_dim=2, sigma=0.5, generator=torch.Generator().manual_seed(1))
    x = model.marginal().sample((6,))
    return model, x


def mc_mean(fn, reps):
    values = torch.stack([fn() for _ in range(reps)])
    return values.mean(0), values.std(0) / math.sqrt(reps)


def test_elbo_below_iwae_below_log_px_and_iwae_grows_with_k(ppca):
    model, x = ppca
    torch.manual_seed(0)
    exact = model.log_marginal(x)
    with torch.no_grad():
        means, ses = {}, {}
        for k in (1, 5, 50, 500):
            means[k], ses[k] = mc_mean(lambda: iwae_bound(model, x, k).bound, 400)
            assert torch.all(means[k] < exact + 4 * ses[k] + 1e-9), k
        elbo_mean, elbo_se = mc_mean(lambda: elbo(model, x).bound, 2000)
    # L_1 is the ELBO (Monte Carlo KL vs analytic KL: same expectation, within 4 standard errors)
    assert torch.all((elbo_mean - means[1]).abs() < 4 * (elbo_se ** 2 + ses[1] ** 2).sqrt())
    # monotone in k, strictly for this deliberately poor q, and approaching log p(x)
    assert torch.all(means[1] < means[5]) and torch.all(means[5] < means[50]) and torch.all(means[50] < means[500])
    gap_1, gap_500 = (exact - means[1]).mean(), (exact - means[500]).mean()
    assert gap_1 > 1.0           # the diagonal, mis-set q leaves a real gap ...
    assert gap_500 < 0.2 * gap_1  # ... which 500 importance samples mostly close


def fit_diagonal_encoder(model, widen=1.3):
    """Set q(z|x) to the exact posterior mean with a diagonal, slightly widened scale: a good proposal."""
    with torch.no_grad():
        sigma2 = model.log_sigma.exp() ** 2
        M_inv = torch.linalg.inv(model.W.T @ model.W + sigma2 * torch.eye(model.latent_dim, dtype=torch.float64))
        model.A.copy_(M_inv @ model.W.T)
        model.c.copy_(-model.A @ model.mu)
        model.log_s.copy_((widen * (sigma2 * M_inv.diagonal()).sqrt()).log())


def test_importance_sampled_log_likelihood_matches_exact(ppca):
    model, x = ppca
    fit_diagonal_encoder(model)
    torch.manual_seed(0)
    estimate = log_likelihood(model, x, k=20000, sample_chunk=3000)
    exact = model.log_marginal(x)
    assert torch.allclose(estimate, exact, atol=0.01), (estimate - exact)
    assert (exact - elbo(model, x, samples=4000).bound).min() > 0.02  # while the ELBO of this q is loose


def test_chunking_does_not_change_the_estimate(ppca):
    model, x = ppca
    torch.manual_seed(3)
    a = log_likelihood(model, x, k=1000, sample_chunk=1000)
    torch.manual_seed(3)
    b = log_likelihood(model, x, k=1000, sample_chunk=1000)
    assert torch.equal(a, b)
    # same samples drawn in chunks of 100: identical up to round-off of the log-sum-exp
    torch.manual_seed(3)
    q = model.encode(x)
    z = q.sample((1000,))
    logw = model.decode(z).log_prob(x) + model.prior().log_prob(z) - q.log_prob(z)
    whole = torch.logsumexp(logw, 0) - math.log(1000)
    parts = torch.logsumexp(torch.stack([torch.logsumexp(c, 0) for c in logw.split(100)]), 0) - math.log(1000)
    assert torch.allclose(whole, parts, atol=1e-10)


def test_exact_posterior_makes_the_elbo_tight(ppca):
    model, x = ppca
    model.exact_posterior = True
    torch.manual_seed(0)
    with torch.no_grad():
        for _ in range(3):  # zero-variance: every single sample gives log p(x)
            assert torch.allclose(elbo(model, x).bound, model.log_marginal(x), atol=1e-8)
            assert torch.allclose(iwae_bound(model, x, 7).bound, model.log_marginal(x), atol=1e-8)


def test_analytic_kl_matches_monte_carlo():
    torch.manual_seed(0)
    q = Independent(Normal(torch.randn(4, 3), torch.rand(4, 3) + 0.3), 1)
    p = Independent(Normal(torch.zeros(3), torch.ones(3)), 1)
    analytic = kl_divergence(q, p)
    closed = 0.5 * (q.base_dist.scale ** 2 + q.base_dist.loc ** 2 - 1 - 2 * q.base_dist.scale.log()).sum(-1)
    assert torch.allclose(analytic, closed, atol=1e-6)
    z = q.sample((200000,))
    mc = (q.log_prob(z) - p.log_prob(z))
    se = mc.std(0) / math.sqrt(len(mc))
    assert torch.all((mc.mean(0) - analytic).abs() < 4 * se)


def test_kl_term_falls_back_to_monte_carlo_for_unregistered_pairs(ppca):
    model, x = ppca
    q = model.posterior(x)  # MultivariateNormal vs Independent(Normal): no closed form registered
    with pytest.raises(NotImplementedError):
        kl_divergence(q, model.prior())
    z = q.sample((4000,))
    mc = kl_term(q, model.prior(), z)
    p_mvn = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64),
                                                   torch.eye(2, dtype=torch.float64))
    assert mc.shape == (6,)
    assert torch.allclose(mc, kl_divergence(q, p_mvn), atol=0.1)


def test_elbo_and_iwae_gradients_pass_float64_gradcheck(ppca):
    model, x = ppca

    def as_function(objective):
        def f(W, A, log_s):
            model.W.data, model.A.data, model.log_s.data = W, A, log_s
            torch.manual_seed(7)  # the same noise on every call: a deterministic function of the inputs
            params = {"W": W, "A": A, "log_s": log_s}
            saved = {name: getattr(model, name) for name in params}
            for name, value in params.items():
                delattr(model, name)
                setattr(model, name, value)
            try:
                return objective(model, x).bound.sum()
            finally:
                for name, value in saved.items():
                    delattr(model, name)
                    model.register_parameter(name, value)
        return f

    inputs = tuple(p.detach().clone().requires_grad_() for p in (model.W, model.A, model.log_s))
    assert torch.autograd.gradcheck(as_function(lambda m, x: elbo(m, x, samples=3)), inputs)
    assert torch.autograd.gradcheck(as_function(lambda m, x: iwae_bound(m, x, 4)), inputs)


def test_beta_weights_only_the_kl(ppca):
    model, x = ppca
    torch.manual_seed(0)
    t1 = elbo(model, x, beta=1.0)
    torch.manual_seed(0)
    t4 = elbo(model, x, beta=4.0)
    assert torch.allclose(t4.loss, -(t1.log_px_z - 4.0 * t1.kl))
    assert torch.allclose(t4.bound, t1.bound)


def test_mutual_information_estimator_on_known_cases():
    from vaekit.evaluate import mutual_information
    g = torch.Generator().manual_seed(0)
    n = 500
    # q(z|x) the same for every x: z carries no information about x
    same = mutual_information(torch.zeros(n, 4, dtype=torch.float64), torch.ones(n, 4, dtype=torch.float64), g)
    assert abs(same) < 0.05
    # far-apart, narrow posteriors: z identifies x, I = log N
    loc = torch.arange(n, dtype=torch.float64)[:, None] * 10.0
    apart = mutual_information(loc, torch.full((n, 1), 0.1, dtype=torch.float64), g)
    assert apart == pytest.approx(math.log(n), abs=0.1)  # one z per posterior: Monte Carlo error ~0.03
    # 1-D Gaussian channel: x ~ N(0, 1), q(z|x) = N(x, s^2) -> I = 0.5 log(1 + 1/s^2)
    x = torch.randn(4000, 1, generator=g, dtype=torch.float64)
    channel = mutual_information(x, torch.full_like(x, 0.5), g)
    assert channel == pytest.approx(0.5 * math.log(1 + 1 / 0.25), abs=0.05)


def test_active_units_count_dimensions_whose_posterior_mean_varies():
    from vaekit.evaluate import active_units

    class Fixed(torch.nn.Module):
        def encode(self, x):
            loc = torch.cat([x[:, :2] * 3.0, torch.zeros(len(x), 3), 0.05 * x[:, 2:3]], dim=1)
            return Independent(Normal(loc, torch.ones_like(loc)), 1)

    x = torch.randn(2000, 3, generator=torch.Generator().manual_seed(0))
    count, variances = active_units(Fixed(), x)
    assert count == 2 and variances[-1] < 0.01  # Var 9 twice; Var 0 three times; Var 0.0025 once


def test_free_bits_remove_the_kl_gradient_below_the_threshold(ppca):
    model, x = ppca
    torch.manual_seed(0)
    free = elbo(model, x, free_bits=100.0)  # every dimension's KL is far below 100 nats
    grad_free = torch.autograd.grad(free.loss.mean(), model.log_s)[0]
    torch.manual_seed(0)
    plain = elbo(model, x, beta=0.0)          # no KL term at all: the same gradient for log_s
    grad_plain = torch.autograd.grad(plain.loss.mean(), model.log_s)[0]
    assert torch.allclose(grad_free, grad_plain)
    assert torch.allclose(free.bound, plain.bound)  # the reported bound is the true ELBO either way
