"""Estimator diagnostics: the bias and variance they report agree with what is known exactly."""

import torch

from vaekit.config import ModelConfig
from vaekit.diagnostics import gradient_draws, summarise, warm_up_baseline
from vaekit.estimators import Enumerate, GumbelSoftmax, NVILBaseline, Pathwise, ScoreFunction
from vaekit.models.vae import build_model


def tiny(latent_type="categorical"):
    torch.manual_seed(0)
    config = ModelConfig(hidden=(6,), latent=2, latent_type=latent_type, categories=3)
    model = build_model(config, (1, 2, 4), "bernoulli").double()
    x = (torch.rand(5, 8, dtype=torch.float64) > 0.5).double()
    return model, x, list(model.encoder.parameters())


def test_summary_of_known_draws():
    draws = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    stats = summarise("two", draws, torch.tensor([1.0, 0.0]))
    assert stats.bias == 1.0            # mean (2, 0) is 1 away from the reference, |reference| = 1
    assert stats.variance == 2.0        # Var of (1, 3) with n - 1 = 1 in the denominator
    assert abs(stats.bias_se - 1.0) < 1e-12  # sqrt(2 / 2) / 1


def test_exact_enumeration_has_no_variance_and_sampling_estimators_scatter_around_it():
    model, x, params = tiny()
    exact = gradient_draws(model, x, Enumerate(), params, 3)
    assert torch.allclose(exact[0], exact[1]) and exact.abs().sum() > 0
    torch.manual_seed(1)
    sf = summarise("sf", gradient_draws(model, x, ScoreFunction(), params, 3000), exact[0])
    assert sf.bias < 4 * sf.bias_se  # unbiased: the distance is what sampling noise explains
    nvil = ScoreFunction(NVILBaseline(8, hidden=4, normalise=False).double())
    warm_up_baseline(model, x, nvil, steps=100)
    with_baseline = summarise("nvil", gradient_draws(model, x, nvil, params, 3000), exact[0])
    assert with_baseline.bias < 4 * with_baseline.bias_se
    assert with_baseline.variance < sf.variance
    hot = summarise("gumbel", gradient_draws(model, x, GumbelSoftmax(5.0), params, 3000), exact[0])
    assert hot.bias > 4 * hot.bias_se  # a high temperature is visibly biased


def test_score_function_on_a_gaussian_latent_is_unbiased_but_noisier_than_pathwise():
    model, x, params = tiny("gaussian")
    torch.manual_seed(2)
    pathwise = gradient_draws(model, x, Pathwise(), params, 4000)
    score = gradient_draws(model, x, ScoreFunction(), params, 4000)
    reference = pathwise.mean(0)
    sf = summarise("sf", score, reference)
    assert sf.bias < 5 * sf.bias_se
    assert sf.variance > 3 * summarise("pathwise", pathwise, reference).variance
