"""Gradient estimators against exact enumeration on a tiny categorical model."""

import math

import pytest
import torch
from torch.distributions import Independent, OneHotCategorical

from vaekit.estimators import (Enumerate, GumbelSoftmax, LeaveOneOutBaseline, MovingAverageBaseline, NVILBaseline,
                               Pathwise, ScoreFunction, enumerate_support, relax, straight_through, vimco_surrogate)

D = torch.float64


class TinyProblem:
    """q(z|x) = prod_l Cat(z_l; softmax(phi_l)) for L = 2 variables of K = 3 categories, and
    f(z) = log p(x|z) = -(theta . z_flat - 1)^2 + 3 depending on decoder weights theta.

    ``n`` independent copies of the same parameters form a batch, so one call of an estimator gives
    ``n`` independent single-sample gradient estimates (the gradient with respect to each copy)."""

    def __init__(self, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.phi0 = torch.randn(2, 3, generator=g, dtype=D)
        self.theta0 = torch.randn(6, generator=g, dtype=D)

    def grads(self, estimator, n=1, **kwargs):
        phi = self.phi0.expand(n, 2, 3).clone().requires_grad_()
        theta = self.theta0.expand(n, 6).clone().requires_grad_()
        q = Independent(OneHotCategorical(logits=phi), 1)
        f = lambda z: -((z.flatten(-2) * theta).sum(-1) - 1.0) ** 2 + 3.0  # + 3: a mean baselines remove
        est = estimator(q, f, torch.zeros(n, 4, dtype=D), **kwargs)
        loss = -est.surrogate.sum()
        if est.aux_loss is not None:
            loss = loss + est.aux_loss.sum()
        g_phi, g_theta = torch.autograd.grad(loss, [phi, theta])
        return torch.cat([-g_phi.flatten(1), -g_theta], dim=1), est.value.detach()


def exact_gradient(problem):
    grad, value = problem.grads(Enumerate())
    return grad[0], value


def sample_gradients(problem, estimator, n, **kwargs):
    return problem.grads(estimator, n, **kwargs)[0]


def test_enumeration_equals_hand_computed_expectation():
    p = TinyProblem()
    probs = torch.softmax(p.phi0, -1)
    support = enumerate_support(Independent(OneHotCategorical(logits=p.phi0[None]), 1))
    assert support.shape == (9, 1, 2, 3)
    eye = torch.eye(3, dtype=D)
    f = lambda i, j: -(torch.cat([eye[i], eye[j]]) @ p.theta0 - 1.0) ** 2 + 3.0
    by_hand = sum(probs[0, i] * probs[1, j] * f(i, j) for i in range(3) for j in range(3))
    _, value = exact_gradient(p)
    assert torch.allclose(value[0], by_hand)


@pytest.mark.parametrize("make", [lambda: ScoreFunction(), lambda: ScoreFunction(MovingAverageBaseline(0.9))])
def test_score_function_is_unbiased_within_its_standard_error(make):
    torch.manual_seed(0)
    p = TinyProblem()
    exact, _ = exact_gradient(p)
    estimator = make()
    for _ in range(20):  # let a moving-average baseline settle (it is independent of z at each step)
        p.grads(estimator, 100)
    draws = sample_gradients(p, estimator, 20000)
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    z = (mean - exact) / se.clamp(min=1e-12)
    assert z.abs().max() < 4.5, z  # 12 coordinates, each within 4.5 standard errors


def test_baselines_reduce_the_variance():
    torch.manual_seed(0)
    p = TinyProblem()
    plain = sample_gradients(p, ScoreFunction(), 4000)[:, :6].var(0).sum()
    moving = ScoreFunction(MovingAverageBaseline(0.9))
    for _ in range(20):
        p.grads(moving, 100)
    with_baseline = sample_gradients(p, moving, 4000)[:, :6].var(0).sum()
    assert with_baseline < 0.5 * plain, (with_baseline, plain)


def test_leave_one_out_baseline_is_unbiased_and_beats_as_many_plain_draws():
    torch.manual_seed(0)
    p = TinyProblem()
    exact, _ = exact_gradient(p)
    loo = ScoreFunction(LeaveOneOutBaseline())
    draws = sample_gradients(p, loo, 20000, samples=4)
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    assert ((mean - exact) / se.clamp(min=1e-12)).abs().max() < 4.5
    plain = sample_gradients(p, ScoreFunction(), 20000, samples=4)  # the same 4 draws, no baseline
    assert draws[:, :6].var(0).sum() < 0.5 * plain[:, :6].var(0).sum()
    # with 4 draws the centred signal is 4/3 (f(z_s) - mean f): the baseline needs no state and no training
    signal, aux = LeaveOneOutBaseline()(torch.tensor([[1.0], [2.0], [3.0], [6.0]], dtype=D), None)
    assert aux is None and torch.allclose(signal.squeeze(1), torch.tensor([-8 / 3, -4 / 3, 0.0, 4.0], dtype=D))
    with pytest.raises(ValueError, match="at least 2 draws"):
        sample_gradients(p, loo, 10)
    for one_draw in (GumbelSoftmax(0.5), Enumerate()):  # several draws per example: a clear refusal
        with pytest.raises(ValueError, match="one draw of z per example"):
            sample_gradients(p, one_draw, 10, samples=2)


def test_nvil_baseline_learns_and_is_unbiased():
    torch.manual_seed(0)
    p = TinyProblem()
    exact, _ = exact_gradient(p)
    baseline = NVILBaseline(data_dim=4, hidden=8).to(D)
    estimator = ScoreFunction(baseline)
    opt = torch.optim.Adam(baseline.parameters(), lr=0.05)
    for _ in range(200):  # train the baseline network on its own loss
        opt.zero_grad()
        phi = p.phi0.expand(64, 2, 3)
        q = Independent(OneHotCategorical(logits=phi), 1)
        f = lambda z: -((z.flatten(-2) * p.theta0).sum(-1) - 1.0) ** 2 + 3.0
        estimator(q, f, torch.zeros(64, 4, dtype=D)).aux_loss.mean().backward()
        opt.step()
    baseline.eval()  # freeze the running statistics: a fixed baseline keeps the estimator unbiased
    draws = sample_gradients(p, estimator, 20000)
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    assert ((mean - exact) / se.clamp(min=1e-12)).abs().max() < 4.5
    plain = sample_gradients(p, ScoreFunction(), 4000)[:, :6].var(0).sum()
    assert draws[:, :6].var(0).sum() < 0.5 * plain


def test_gumbel_softmax_samples_lie_on_the_simplex_and_harden_as_temperature_falls():
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[0.2, 0.5, 0.3]], dtype=D)).expand(40000, 3)
    q = Independent(OneHotCategorical(logits=logits[:, None, :]), 1)
    for tau, min_max in ((5.0, 0.0), (0.1, 0.95)):
        z = relax(q, tau).rsample()
        assert torch.allclose(z.sum(-1), torch.ones(40000, 1, dtype=D))
        assert (z >= 0).all()
        if min_max:
            assert z.max(-1).values.mean() > min_max
    z = relax(q, 0.05).rsample()
    frequencies = z.argmax(-1).flatten().bincount(minlength=3).to(D) / 40000.0
    assert torch.allclose(frequencies, torch.tensor([0.2, 0.5, 0.3], dtype=D), atol=0.01)


def test_straight_through_is_one_hot_forward_and_soft_backward():
    soft = torch.softmax(torch.randn(5, 4, dtype=D), -1).requires_grad_()
    hard = straight_through(soft)
    assert torch.equal(hard.detach().sum(-1), torch.ones(5, dtype=D)) and set(hard.detach().unique().tolist()) <= {0.0, 1.0}
    (hard * torch.arange(4.0, dtype=D)).sum().backward()
    assert torch.allclose(soft.grad, torch.arange(4.0, dtype=D).expand(5, 4))


def test_gumbel_softmax_estimator_is_close_to_exact_at_low_temperature_and_biased_at_high():
    torch.manual_seed(0)
    p = TinyProblem()
    exact, _ = exact_gradient(p)
    cold = sample_gradients(p, GumbelSoftmax(temperature=0.05), 8000).mean(0)
    hot = sample_gradients(p, GumbelSoftmax(temperature=5.0), 8000).mean(0)
    assert (cold - exact).norm() < 0.5 * (hot - exact).norm()


def test_vimco_signal_is_the_leave_one_out_difference():
    log_w = torch.tensor([[0.0], [1.0], [2.0]], dtype=D, requires_grad=True)
    log_q = torch.zeros(3, 1, dtype=D, requires_grad=True)
    bound, surrogate = vimco_surrogate(log_w, log_q)
    assert torch.allclose(bound, torch.logsumexp(log_w.detach(), 0) - math.log(3))
    surrogate.sum().backward()
    lk = bound.item()
    expected = []
    for i in range(3):
        others = [log_w[j, 0].item() for j in range(3) if j != i]
        replaced = [log_w[j, 0].item() if j != i else sum(others) / 2 for j in range(3)]
        expected.append(lk - (torch.logsumexp(torch.tensor(replaced, dtype=D), 0).item() - math.log(3)))
    assert torch.allclose(log_q.grad.flatten(), torch.tensor(expected, dtype=D))


def test_pathwise_has_lower_variance_than_score_function_on_a_gaussian():
    torch.manual_seed(0)

    def grads(estimator, n=20000):
        mu = torch.zeros(n, 2, dtype=D, requires_grad=True)
        q = Independent(torch.distributions.Normal(mu, torch.ones(n, 2, dtype=D)), 1)
        est = estimator(q, lambda z: -((z - 1.0) ** 2).sum(-1), None)
        return torch.autograd.grad(est.surrogate.sum(), mu)[0]

    pathwise, score = grads(Pathwise()), grads(ScoreFunction())
    exact = torch.full((2,), 2.0, dtype=D)  # d/dmu E[-(z-1)^2] = -2(mu - 1) = 2 at mu = 0
    assert torch.allclose(pathwise.mean(0), exact, atol=0.1) and torch.allclose(score.mean(0), exact, atol=0.5)
    assert score.var(0).sum() > 5 * pathwise.var(0).sum()


class TinyDiscreteVAE(torch.nn.Module):
    """q(z|x) = Cat(softmax(phi)) over 3 values, p(z) uniform, p(x|z) = Bernoulli(sigmoid(W z)) for a 2-pixel x."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.phi = torch.nn.Parameter(torch.randn(3, generator=g, dtype=D))
        self.w = torch.nn.Parameter(torch.randn(3, 2, generator=g, dtype=D))

    def encode(self, x):
        return Independent(OneHotCategorical(logits=self.phi.expand(len(x), 1, 3)), 1)

    def prior(self):
        return Independent(OneHotCategorical(logits=torch.zeros(1, 3, dtype=D)), 1)

    def decode(self, z):
        from torch.distributions import Bernoulli
        return Independent(Bernoulli(logits=z.flatten(-2) @ self.w), 1)


def test_vimco_gradient_of_the_k_sample_bound_matches_exact_enumeration():
    """L_2 = sum over all (z1, z2) of q(z1) q(z2) log((w1 + w2) / 2), differentiated exactly, against the mean
    of many VIMCO estimates from iwae_bound on a discrete posterior."""
    import itertools

    from vaekit.objectives import iwae_bound

    model = TinyDiscreteVAE()
    x = torch.tensor([[1.0, 0.0]], dtype=D)
    params = [model.phi, model.w]
    eye = torch.eye(3, dtype=D)
    exact = 0.0
    for a, b in itertools.product(range(3), repeat=2):
        z = torch.stack([eye[a], eye[b]])[:, None, None, :]           # (2, 1, 1, 3)
        log_q = model.encode(x).log_prob(z)                            # (2, 1)
        log_w = model.decode(z).log_prob(x) + model.prior().log_prob(z) - log_q
        exact = exact + log_q.sum(0).exp() * (torch.logsumexp(log_w, 0) - math.log(2))
    exact_grad = torch.cat([g.flatten() for g in torch.autograd.grad(exact.sum(), params)])
    torch.manual_seed(0)
    n = 4000
    xs = x.expand(n, 2)
    terms = iwae_bound(model, xs, k=2)
    assert torch.allclose(terms.bound.mean(), exact.sum(), atol=0.05)
    loss = iwae_bound(model, xs, k=2).loss
    per_example = torch.stack([torch.cat([g.flatten() for g in torch.autograd.grad(-loss[j], params,
                                                                                   retain_graph=True)])
                               for j in range(0, n, 10)])
    mean, se = per_example.mean(0), per_example.std(0) / math.sqrt(len(per_example))
    assert ((mean - exact_grad).abs() < 4.5 * se + 1e-9).all(), (mean, exact_grad, se)


def test_nvil_normalisation_scales_every_encoder_gradient_alike_and_leaves_the_decoder_alone():
    """With a learned baseline's variance normalisation, the encoder's whole gradient (score term and the
    analytic KL alike) is divided by max(1, sqrt(v)); the decoder's is unchanged."""
    from vaekit.config import ModelConfig
    from vaekit.models.vae import build_model
    from vaekit.objectives import elbo

    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=(4,), latent=2, latent_type="categorical", categories=3), (1, 2, 3),
                        "bernoulli").double()
    x = (torch.rand(5, 6, dtype=D) > 0.5).double()
    grads = {}
    baseline = NVILBaseline(6, hidden=3).double()
    baseline.var.fill_(16.0)  # sqrt(v) = 4
    baseline.eval()
    for normalise in (False, True):
        baseline.normalise = normalise
        torch.manual_seed(1)
        loss = elbo(model, x, estimator=ScoreFunction(baseline)).loss.sum()
        grads[normalise] = torch.autograd.grad(loss, [*model.encoder.parameters(), *model.decoder.parameters()])
    n_encoder = len(list(model.encoder.parameters()))
    for i, (plain, scaled) in enumerate(zip(grads[False], grads[True])):
        assert torch.allclose(scaled, plain / 4 if i < n_encoder else plain)
