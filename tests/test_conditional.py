"""Conditional VAE (Sohn et al. 2015): KL between two learned Gaussians, reduction to the plain ELBO,
quadrants, importance-sampled conditional likelihood, training through the one trainer."""

import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from vaekit import checkpoint
from vaekit.conditional import (ConditionalBatch, conditional_elbo, conditional_log_likelihood, gsnn_bound, hybrid,
                                join, quadrant_mask, split)
from vaekit.config import load_recipe
from vaekit.errors import ConfigError
from vaekit.models.cvae import CVAE
from vaekit.objectives import elbo
from vaekit.train import train

D = torch.float64


def test_kl_between_two_diagonal_gaussians_matches_monte_carlo():
    torch.manual_seed(0)
    q = Independent(Normal(torch.randn(3, 4, dtype=D), torch.rand(3, 4, dtype=D) + 0.5), 1)
    p = Independent(Normal(torch.randn(3, 4, dtype=D), torch.rand(3, 4, dtype=D) + 0.5), 1)
    z = q.sample((200000,))
    mc = (q.log_prob(z) - p.log_prob(z))
    assert torch.allclose(kl_divergence(q, p), mc.mean(0), atol=4 * (mc.std(0) / math.sqrt(len(z))).max().item())


def tiny_cvae(prior_network=True):
    torch.manual_seed(0)
    return CVAE(x_dim=6, c_dim=3, latent=2, hidden=(5,), prior_network=prior_network).double()


def test_conditional_elbo_reduces_to_the_plain_elbo_when_the_prior_network_outputs_a_standard_normal():
    model = tiny_cvae()
    with torch.no_grad():  # prior network's last layer to zero: mu = 0, log-variance = 0
        model.prior_net[-1].weight.zero_()
        model.prior_net[-1].bias.zero_()
    x = (torch.rand(4, 6, dtype=D) > 0.5).double()
    c = torch.rand(4, 3, dtype=D)

    class Fixed:  # the same networks seen as an unconditional VAE for this c, with p(z) = N(0, I)
        def prior(self):
            return Independent(Normal(torch.zeros(2, dtype=D), torch.ones(2, dtype=D)), 1)

        def encode(self, x_):
            return model.encode(x_, c)

        def decode(self, z):
            return model.decode(z, c)

    torch.manual_seed(3)
    conditional = conditional_elbo(model, ConditionalBatch(x, c))
    torch.manual_seed(3)
    plain = elbo(Fixed(), x)
    assert torch.allclose(conditional.bound, plain.bound) and torch.allclose(conditional.kl, plain.kl)


def test_hybrid_interpolates_between_the_elbo_and_gsnn():
    model = tiny_cvae()
    batch = ConditionalBatch((torch.rand(4, 6, dtype=D) > 0.5).double(), torch.rand(4, 3, dtype=D))
    torch.manual_seed(1)
    a, g = conditional_elbo(model, batch), gsnn_bound(model, batch)
    torch.manual_seed(1)
    h = hybrid(model, batch, 0.25)
    assert torch.allclose(h.loss, 0.25 * a.loss + 0.75 * g.loss)


def test_importance_sampled_conditional_likelihood_lies_above_the_elbo_and_converges():
    model = tiny_cvae()
    batch = ConditionalBatch((torch.rand(4, 6, dtype=D) > 0.5).double(), torch.rand(4, 3, dtype=D))
    torch.manual_seed(0)
    bound = torch.stack([conditional_elbo(model, batch).bound for _ in range(2000)]).mean(0)
    ll_small = conditional_log_likelihood(model, batch, samples=5)
    ll_large = torch.stack([conditional_log_likelihood(model, batch, samples=5000) for _ in range(2)])
    assert (ll_large.mean(0) > bound).all()
    assert (ll_large[0] - ll_large[1]).abs().max() < 0.02  # K = 5000 has converged to a few hundredths
    assert (ll_small <= ll_large.mean(0) + 0.5).all()


def test_the_prior_proposal_estimates_the_same_conditional_likelihood():
    """A GSNN's q(z|x,c) never trains, so its log p(x|c) is estimated with p(z|c) as the proposal: both proposals
    estimate the same quantity, and on this tiny model they agree once converged."""
    model = tiny_cvae()
    batch = ConditionalBatch((torch.rand(4, 6, dtype=D) > 0.5).double(), torch.rand(4, 3, dtype=D))
    torch.manual_seed(0)
    posterior = conditional_log_likelihood(model, batch, samples=20000)
    prior = conditional_log_likelihood(model, batch, samples=20000, proposal="prior")
    assert (posterior - prior).abs().max() < 0.03
    with pytest.raises(ValueError, match="choose posterior or prior"):
        conditional_log_likelihood(model, batch, proposal="uniform")


def test_quadrants_split_and_join_back():
    for given, count in ((1, 196), (2, 392), (3, 588)):
        assert int(quadrant_mask(given).sum()) == count
    mask = quadrant_mask(1).reshape(28, 28)
    assert mask[14:, :14].all() and not mask[:14].any()  # bottom-left, as in the Pyro example
    images = torch.rand(5, 784)
    batch = split(images, quadrant_mask(3))
    assert batch.x.shape == (5, 196) and batch.c.shape == (5, 588)
    assert torch.equal(join(batch.c, batch.x, quadrant_mask(3)), images)
    with pytest.raises(ValueError, match="1, 2 or 3"):
        quadrant_mask(4)


TINY = ["data.quadrants=2", "model.hidden=16", "model.latent=3", "train.batch_size=32", "train.lr=3e-3"]


@pytest.mark.parametrize("overrides", [["model.arch=cvae", "train.objective=elbo"],
                                       ["model.arch=cvae", "train.objective=hybrid"],
                                       ["model.arch=cvae", "train.objective=gsnn"],
                                       ["model.arch=cvae-nn", "train.objective=mle"]])
def test_cvae_and_baseline_train_resume_exactly_and_evaluate(tmp_path, tiny_images, overrides, monkeypatch):
    import vaekit.report as report_module

    config = load_recipe(None, TINY + overrides + ["train.epochs=3"])
    train(config, tmp_path / "whole", data=tiny_images, progress=False)
    train(load_recipe(None, TINY + overrides + ["train.epochs=3", "train.max_steps=17"]), tmp_path / "split",
          data=tiny_images, progress=False)
    train(config, tmp_path / "split", resume=True, data=tiny_images, progress=False)
    a, b = checkpoint.load(tmp_path / "whole")["model"], checkpoint.load(tmp_path / "split")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    monkeypatch.setattr(report_module, "load_data", lambda config: tiny_images)
    monkeypatch.setattr("vaekit.runs.load_data", lambda config: tiny_images)  # what the families' plots read
    report = report_module.evaluate_run(tmp_path / "whole", k=20, split="test")
    assert report["ncll"] > 0 and report["n"] == 50
    assert report["proposal"] == {"train.objective=gsnn": "prior", "train.objective=mle": None}.get(overrides[1],
                                                                                                   "posterior")
    assert {p.name for p in report_module.plot_run(tmp_path / "whole")} == {"completions.png", "curves.png"}
    from vaekit.cli import main

    monkeypatch.setattr("vaekit.runs.load_data", lambda config: tiny_images)
    assert main(["sample", str(tmp_path / "whole"), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").exists()
    assert main(["reconstruct", str(tmp_path / "whole")]) == 2  # a clear error: conditional models complete


@pytest.mark.parametrize("overrides, message", [
    (["model.arch=cvae"], "data.quadrants"),
    (["data.quadrants=2"], "quadrant completion"),
    (["model.arch=cvae-nn", "data.quadrants=1"], "train.objective = 'mle'"),
    (["train.objective=gsnn"], "CVAE objective"),
])
def test_conditional_configuration_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_recipe(None, overrides)


LABEL = ["data.condition=label", "model.categories=4", "model.hidden=16", "model.latent=3", "train.batch_size=32",
         "train.lr=1e-2", "train.epochs=30"]


@pytest.mark.parametrize("overrides", [["model.arch=cvae", "train.objective=elbo"],
                                       ["model.arch=cvae-nn", "train.objective=mle"]])
def test_a_cvae_on_class_labels_draws_each_class_where_it_belongs(tmp_path, tiny_images, overrides, monkeypatch):
    """Each tiny image's label k says which quadrant holds its blob: samples drawn for class k must have it
    there (and the resumed run equals the uninterrupted one)."""
    import vaekit.report as report_module

    config = load_recipe(None, LABEL + overrides)
    result = train(config, tmp_path / "whole", data=tiny_images, progress=False)
    train(load_recipe(None, LABEL + overrides + ["train.max_steps=40"]), tmp_path / "split", data=tiny_images,
          progress=False)
    train(config, tmp_path / "split", resume=True, data=tiny_images, progress=False)
    a, b = checkpoint.load(tmp_path / "whole")["model"], checkpoint.load(tmp_path / "split")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    model = result.model.eval()
    images = model.complete(torch.eye(4), 20).view(20, 4, 8, 8)           # (samples, class, H, W)
    for k in range(4):
        r, c = divmod(k, 2)
        inside = images[:, k, 4 * r:4 * r + 4, 4 * c:4 * c + 4].mean()
        assert inside > 0.7 and images[:, k].mean() < 0.45, (k, inside)
    monkeypatch.setattr(report_module, "load_data", lambda config: tiny_images)
    monkeypatch.setattr("vaekit.runs.load_data", lambda config: tiny_images)  # what the families' plots read
    report = report_module.evaluate_run(tmp_path / "whole", k=20, split="test")
    assert 0 < report["ncll"] < 20 and report["n"] == 50
    assert {p.name for p in report_module.plot_run(tmp_path / "whole")} == {"samples.png", "curves.png"}


def test_conditioning_on_labels_and_on_quadrants_at_once_is_refused():
    with pytest.raises(ConfigError, match="leave data.quadrants at 0"):
        load_recipe(None, ["model.arch=cvae", "data.condition=label", "data.quadrants=2"])
    with pytest.raises(ConfigError, match="choose quadrants or label"):
        load_recipe(None, ["model.arch=cvae", "data.condition=digit"])
