"""Mean-field CAVI on the Bayesian Gaussian mixture (Blei et al. 2017, Sec. 3), checked against exact answers."""

import math

import pytest
import torch

from vaekit import cavi

SIGMA2 = 10.0


def mixture_data(n: int, centres, seed: int = 0, spread: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.as_tensor(centres, dtype=torch.float64)
    labels = torch.arange(n) % len(centres)
    return centres[labels] + spread * torch.randn(n, centres.shape[1], generator=g, dtype=torch.float64)


def test_every_factor_update_raises_the_elbo():
    x = mixture_data(60, [[-3.0, 0.0], [3.0, 1.0], [0.0, 4.0]])
    q = cavi.initial_posterior(x, 3, seed=1)
    values = [float(cavi.elbo(x, q, SIGMA2))]
    for _ in range(30):
        cavi.update_assignments(x, q)
        values.append(float(cavi.elbo(x, q, SIGMA2)))
        cavi.update_means(x, q, SIGMA2)
        values.append(float(cavi.elbo(x, q, SIGMA2)))
    steps = torch.tensor(values).diff()
    assert (steps >= -1e-9).all(), steps.min()
    assert values[-1] - values[0] > 10  # and it did climb


def test_each_update_is_the_exact_optimum_of_its_factor():
    """After a factor's update, the ELBO's gradient in that factor's free parameters is zero (float64 autograd)."""
    x = mixture_data(20, [[-2.0], [2.0]])
    q = cavi.initial_posterior(x, 2, seed=0)
    cavi.update_assignments(x, q)
    cavi.update_means(x, q, SIGMA2)
    m, log_s2 = q.m.clone().requires_grad_(), q.s2.log().clone().requires_grad_()
    bound = cavi.elbo(x, cavi.MixturePosterior(q.phi, m, log_s2.exp()), SIGMA2)
    grad_m, grad_s = torch.autograd.grad(bound, (m, log_s2))
    assert grad_m.abs().max() < 1e-10 and grad_s.abs().max() < 1e-10
    cavi.update_assignments(x, q)
    logits = q.phi.log().clone().requires_grad_()  # phi = softmax(logits): unconstrained on the simplex
    bound = cavi.elbo(x, cavi.MixturePosterior(torch.softmax(logits, -1), q.m, q.s2), SIGMA2)
    (grad_logits,) = torch.autograd.grad(bound, logits)
    assert grad_logits.abs().max() < 1e-10


def test_the_closed_form_elbo_equals_a_monte_carlo_estimate():
    x = mixture_data(12, [[-2.0, 0.0], [2.0, 0.0]])
    q = cavi.cavi(x, 2, SIGMA2, iterations=3)
    torch.manual_seed(0)
    s = 200_000
    mu = q.q_means().sample((s,))                             # (S, K, D)
    c = q.q_assignments().sample((s,))                        # (S, n)
    prior = torch.distributions.Independent(torch.distributions.Normal(0.0, math.sqrt(SIGMA2)).expand(mu.shape[1:]), 1)
    chosen = mu.gather(1, c.unsqueeze(-1).expand(-1, -1, x.shape[1]))   # (S, n, D): mu_{c_i}
    log_joint = (prior.log_prob(mu).sum(-1) - x.shape[0] * math.log(2)
                 + torch.distributions.Normal(chosen, 1.0).log_prob(x).sum((-1, -2)))
    log_q = q.q_means().log_prob(mu).sum(-1) + q.q_assignments().log_prob(c).sum(-1)
    samples = log_joint - log_q
    estimate, stderr = samples.mean(), samples.std() / math.sqrt(s)
    assert abs(float(estimate - cavi.elbo(x, q, SIGMA2))) < 4 * float(stderr)


def test_the_elbo_is_below_the_exact_evidence_and_the_gap_is_log_k_factorial_when_clusters_separate():
    """Enumerating all 2^10 assignments gives log p(x) exactly. On well separated clusters the posterior has K!
    label-swapped modes; mean-field q sits in one and is exact there (given c the means are independent
    Gaussians), so the gap is log K! up to exponentially small terms."""
    overlapping = mixture_data(8, [[-0.5], [0.5]], seed=2)
    q = cavi.cavi(overlapping, 2, SIGMA2)
    assert float(cavi.elbo(overlapping, q, SIGMA2)) < float(cavi.log_evidence(overlapping, 2, SIGMA2))
    separated = mixture_data(10, [[-20.0], [20.0]], seed=3, spread=0.5)
    q = cavi.cavi(separated, 2, SIGMA2)
    gap = float(cavi.log_evidence(separated, 2, SIGMA2) - cavi.elbo(separated, q, SIGMA2))
    assert gap == pytest.approx(math.log(2), abs=1e-8)


def test_three_separated_clusters_give_a_gap_of_log_3_factorial():
    x = mixture_data(9, [[-30.0, 0.0], [30.0, 0.0], [0.0, 30.0]], seed=4, spread=0.5)
    q = cavi.cavi(x, 3, SIGMA2, seed=0)
    gap = float(cavi.log_evidence(x, 3, SIGMA2) - cavi.elbo(x, q, SIGMA2))
    assert gap == pytest.approx(math.log(6), abs=1e-8)


def test_em_never_lowers_its_objective_and_cavi_becomes_em_as_q_of_the_means_shrinks():
    small = mixture_data(30, [[-2.0, 0.0], [2.0, 0.5]], seed=5)
    fit = cavi.em(small, 2, SIGMA2)
    assert (torch.tensor(fit.trace).diff() >= -1e-9).all()
    gaps = []
    for n in (40, 400, 4000):
        x = mixture_data(n, [[-2.0, 0.0], [2.0, 0.5]], seed=6)
        variational, point = cavi.cavi(x, 2, SIGMA2, seed=1), cavi.em(x, 2, SIGMA2, seed=1)
        gaps.append(float((variational.m - point.m).abs().max()))
        assert float(variational.s2.max()) < 2.5 / n  # s_k^2 = 1 / (1/sigma^2 + n_k), n_k ~ n / 2
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-5


def test_bad_shapes_and_too_many_assignments_are_refused():
    with pytest.raises(ValueError, match=r"\(n, D\)"):
        cavi.cavi(torch.zeros(5), 2)
    with pytest.raises(ValueError, match="too many"):
        cavi.log_evidence(torch.zeros(40, 1), 2, SIGMA2)


def test_float32_data_is_scored_as_the_fit_was_in_float64():
    """cavi() and em() fit in float64; elbo() and map_objective() given the same float32 points used to fail with a
    dtype mismatch (found by running the README's example)."""
    x = torch.randn(8, 2)
    q = cavi.cavi(x, components=3, sigma2=10.0)
    assert cavi.elbo(x, q, 10.0).dtype == torch.float64
    assert torch.equal(cavi.elbo(x, q, 10.0), cavi.elbo(x.double(), q, 10.0))
    fit = cavi.em(x, components=3, sigma2=10.0)
    assert torch.equal(cavi.map_objective(x, fit.m, 10.0), cavi.map_objective(x.double(), fit.m, 10.0))
