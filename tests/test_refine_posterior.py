"""Per-example refinement of q(z|x) (vaekit.evaluate.refine_posterior) against exact answers on probabilistic PCA:
its posterior is Gaussian, so the best diagonal Gaussian is known in closed form (the mean-field optimum has the
posterior's mean and precisions equal to the diagonal of its precision matrix: Bishop 2006, Sec. 10.1.2)."""

import pytest
import torch
from torch.distributions import Independent, Normal

from vaekit.evaluate import refine_posterior
from vaekit.models import PPCA
from vaekit.objectives import log_likelihood


@pytest.fixture
def ppca():
    torch.manual_seed(0)
    model = PPCA(data_dim=5, latent_dim=2, sigma=0.5, generator=torch.Generator().manual_seed(1))
    return model, model.marginal().sample((6,))


def test_refinement_reaches_the_best_diagonal_gaussian(ppca):
    model, x = ppca
    torch.manual_seed(0)
    refined = refine_posterior(model, x, steps=600, lr=0.02, samples=256)
    exact = model.posterior(x)
    best_scale = exact.precision_matrix.diagonal(dim1=-2, dim2=-1).rsqrt()
    assert torch.allclose(refined.base_dist.loc, exact.loc, atol=0.03)
    assert torch.allclose(refined.base_dist.scale, best_scale.expand_as(refined.base_dist.scale), rtol=0.05)
    assert not any(p.grad is not None for p in model.parameters())  # the model's weights get no gradient


def test_refined_proposal_tightens_the_importance_sampled_bound(ppca):
    model, x = ppca
    exact = model.log_marginal(x).detach()
    torch.manual_seed(0)
    refined = refine_posterior(model, x, steps=300, lr=0.02, samples=64)
    with torch.no_grad():
        torch.manual_seed(1)
        amortized = torch.stack([log_likelihood(model, x, k=8) for _ in range(100)])           # (100, B)
        tighter = torch.stack([log_likelihood(model, x, k=8, q=refined) for _ in range(100)])
    gap, gap_refined = (exact - amortized).mean(), exact - tighter
    standard_error = gap_refined.mean(1).std() / 100 ** 0.5 + gap_refined.std() / (100 * len(x)) ** 0.5
    assert gap_refined.mean() < 0.5 * gap                     # the (untrained) encoder's gap, at least halved
    assert gap_refined.mean() > -3 * standard_error           # still a lower bound on log p(x) in expectation


def test_refinement_refuses_a_posterior_that_is_not_a_diagonal_gaussian():
    class Categorical:
        def encode(self, x):
            return torch.distributions.OneHotCategorical(logits=torch.zeros(len(x), 3))

    with pytest.raises(ValueError, match="diagonal-Gaussian"):
        refine_posterior(Categorical(), torch.zeros(2, 4))


def test_refinement_from_the_optimum_stays_there(ppca):
    model, x = ppca
    exact = model.posterior(x)
    best = Independent(Normal(exact.loc, exact.precision_matrix.diagonal(dim1=-2, dim2=-1).rsqrt()), 1)
    model.encode = lambda x_: best   # an encoder that already returns the optimum
    torch.manual_seed(0)
    refined = refine_posterior(model, x, steps=200, lr=0.01, samples=256)
    assert torch.allclose(refined.base_dist.loc, best.base_dist.loc, atol=0.03)
