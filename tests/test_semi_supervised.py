"""M2 (Kingma et al. 2014): objectives against hand computation, labelled draws, training end to end."""

import math

import pytest
import torch
import torch.nn.functional as F

from vaekit import checkpoint
from vaekit.config import load_recipe
from vaekit.errors import ConfigError
from vaekit.estimators import Enumerate, GumbelSoftmax, ScoreFunction
from vaekit.models import M2
from vaekit.semi_supervised import (LabelledBatch, draw_labelled, labelled_bound, semi_supervised_loss,
                                    unlabelled_bound)
from vaekit.train import train

D = torch.float64


def tiny_m2(seed=0):
    torch.manual_seed(seed)
    model = M2(data_dim=5, classes=3, latent=2, hidden=(4,)).double()
    x = (torch.rand(4, 5, dtype=D) > 0.5).double()
    return model, x


def by_hand(model, x, y_index, eps):
    """L(x, y) for one example and one class, with the noise eps of z = mu + sigma * eps, from the networks' raw
    outputs: log p(x|y,z) + log(1/C) - KL(N(mu, sigma^2) || N(0, I)) written out."""
    y = F.one_hot(torch.tensor(y_index), 3).double()
    mu, log_var = model.z_encoder(torch.cat([x, y])).chunk(2)
    sigma = torch.exp(0.5 * log_var)
    z = mu + sigma * eps
    logits = model.decoder(torch.cat([z, y]))
    log_px = (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum()
    kl = 0.5 * (mu ** 2 + sigma ** 2 - 1 - log_var).sum()
    return log_px - math.log(3) - kl


def test_labelled_bound_equals_hand_computation():
    model, x = tiny_m2()
    y = torch.tensor([0, 2, 1, 1])
    torch.manual_seed(5)
    terms = labelled_bound(model, x, F.one_hot(y, 3).double())
    torch.manual_seed(5)
    eps = torch.randn(4, 2, dtype=D)  # the same draws rsample makes
    for i in range(4):
        assert torch.allclose(terms.bound[i], by_hand(model, x[i], int(y[i]), eps[i]))


def test_exact_unlabelled_bound_is_the_q_weighted_sum_plus_entropy():
    model, x = tiny_m2()
    torch.manual_seed(7)
    terms = unlabelled_bound(model, x, Enumerate())
    torch.manual_seed(7)
    eps = torch.randn(3, 4, 2, dtype=D)  # one z per (class, example), classes in order
    q = torch.softmax(model.classifier(x), -1)
    for i in range(4):
        expected = sum(q[i, c] * by_hand(model, x[i], c, eps[c, i]) for c in range(3))
        expected = expected - (q[i] * q[i].log()).sum()  # + H(q(y|x))
        assert torch.allclose(terms.bound[i], expected)


def test_unlabelled_estimators_agree_with_the_exact_sum_in_expectation():
    """Score function: unbiased for the value. Gumbel at a low temperature: close to it."""
    model, x = tiny_m2()
    torch.manual_seed(0)
    exact = torch.stack([unlabelled_bound(model, x, Enumerate()).bound for _ in range(4000)]).mean(0)
    draws = torch.stack([unlabelled_bound(model, x, ScoreFunction()).bound for _ in range(4000)])
    se = draws.std(0) / math.sqrt(len(draws))
    assert ((draws.mean(0) - exact).abs() < 4.5 * se + 0.02).all()
    gumbel = torch.stack([unlabelled_bound(model, x, GumbelSoftmax(0.05)).bound for _ in range(2000)]).mean(0)
    assert ((gumbel - exact).abs() < 0.5).all()


def test_each_half_of_a_batch_uses_its_own_terms():
    """Unlabelled images only reach the loss through U(x); labelled ones through L(x, y) and the classifier's
    cross-entropy, whose weight alpha scales exactly that term."""
    model, x = tiny_m2()
    labels = torch.tensor([1, 0])
    batch = LabelledBatch(x[:2], x[2:], labels)
    torch.manual_seed(1)
    a = semi_supervised_loss(model, batch, Enumerate(), classifier_weight=0.0).loss
    torch.manual_seed(1)
    b = semi_supervised_loss(model, batch, Enumerate(), classifier_weight=2.0).loss
    cross_entropy = F.cross_entropy(model.classifier(x[2:]), labels)
    assert torch.allclose(b - a, 2.0 * cross_entropy.expand(2))
    torch.manual_seed(1)
    u = unlabelled_bound(model, x[:2], Enumerate())
    l_terms = labelled_bound(model, x[2:], F.one_hot(labels, 3).double())
    assert torch.allclose(a, -u.bound - l_terms.bound.mean())
    no_labels = LabelledBatch(x[:2], x[:0], labels[:0])
    torch.manual_seed(1)
    assert torch.allclose(semi_supervised_loss(model, no_labels, Enumerate(), 5.0).loss, -u.bound)
    # the paper's weighting scales the whole labelled part (L and the cross-entropy) by w = N_l / N_u
    torch.manual_seed(1)
    weighted = semi_supervised_loss(model, LabelledBatch(x[:2], x[2:], labels, 0.25), Enumerate(), 2.0).loss
    assert torch.allclose(weighted, -u.bound + 0.25 * (b + u.bound))


def test_the_paper_weighting_gives_each_labelled_example_the_weight_of_one_unlabelled_one(tiny_images):
    from vaekit.distributed import Dist
    from vaekit.feeds import SemiSupervisedFeed
    from vaekit.runs import eval_inputs

    for weighting, expected in (("upweighted", 1.0), ("paper", 8 / (len(tiny_images.train) - 8))):
        config = load_recipe(None, M2_TINY + [f"train.ssl_weighting={weighting}"])
        feed = SemiSupervisedFeed(config, tiny_images, Dist(), eval_inputs(config, tiny_images, "val"))
        batch, _ = feed.batch(feed.plan(torch.Generator().manual_seed(0)), 0, torch.Generator().manual_seed(0))
        assert batch.labelled_weight == pytest.approx(expected)


def test_labelled_draws_are_balanced_seeded_and_checked():
    labels = torch.arange(1000) % 10
    a, b, c = draw_labelled(labels, 100, 0), draw_labelled(labels, 100, 0), draw_labelled(labels, 100, 1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.bincount(labels[a], minlength=10).tolist() == [10] * 10
    with pytest.raises(ValueError, match="multiple of 10"):
        draw_labelled(labels, 105, 0)


M2_TINY = ["model.arch=m2", "data.labelled=8", "model.categories=4", "model.hidden=16", "model.latent=3",
           "model.activation=softplus", "train.batch_size=32", "train.labelled_batch=8", "train.lr=3e-3"]


def test_m2_trains_learns_the_classes_and_resumes_exactly(tmp_path, tiny_images):
    config = load_recipe(None, M2_TINY + ["train.epochs=6"])
    result = train(config, tmp_path / "whole", data=tiny_images, progress=False)
    lines = (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()
    import json
    errors = [json.loads(line)["val_error_pct"] for line in lines]
    assert errors[-1] < 20.0, errors  # four blob classes from 8 labels: far below chance (75%)
    first = train(load_recipe(None, M2_TINY + ["train.epochs=6", "train.max_steps=17"]), tmp_path / "split",
                  data=tiny_images, progress=False)
    assert first.step == 17
    train(config, tmp_path / "split", resume=True, data=tiny_images, progress=False)
    a, b = checkpoint.load(tmp_path / "whole")["model"], checkpoint.load(tmp_path / "split")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert result.finished


def test_m2_run_is_evaluated_plotted_and_reconstructed_from_the_command_line(tmp_path, tiny_images, monkeypatch):
    import vaekit.report as report_module
    from vaekit.cli import main

    monkeypatch.setattr(report_module, "load_data", lambda config: tiny_images)
    monkeypatch.setattr("vaekit.runs.load_data", lambda config: tiny_images)  # what the families' plots read
    train(load_recipe(None, M2_TINY + ["train.epochs=2"]), tmp_path / "run", data=tiny_images, progress=False)
    report = report_module.evaluate_run(tmp_path / "run", split="test")
    assert 0 <= report["error_pct"] <= 100 and report["elbo"] < 0 and report["n"] == 50
    written = {p.name for p in report_module.plot_run(tmp_path / "run")}
    assert {"samples.png", "analogies.png", "curves.png"} <= written
    assert "classification error" in (tmp_path / "run" / "report.md").read_text()
    main(["sample", str(tmp_path / "run"), "--out", str(tmp_path / "s.png")])
    assert (tmp_path / "s.png").exists()


@pytest.mark.parametrize("overrides, message", [
    (["model.arch=m2"], "data.labelled"),
    (["data.labelled=100"], "model.arch = 'm2'"),
    (["model.arch=m2", "data.labelled=100", "train.estimator=pathwise"], "how the label y"),
])
def test_m2_configuration_errors_name_the_fix(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_recipe(None, overrides)


def test_m1_plus_m2_can_pass_on_only_the_active_dimensions_of_m1(tmp_path, tiny_images):
    from vaekit.evaluate import active_units
    from vaekit.runs import eval_inputs
    from vaekit.semi_supervised import latent_features

    m1 = load_recipe(None, ["model.hidden=16", "model.latent=4", "train.epochs=20", "train.batch_size=32",
                            "train.lr=1e-2"])
    train(m1, tmp_path / "m1", data=tiny_images, progress=False)
    state = checkpoint.load(tmp_path / "m1")
    # make z_2 and z_3 inactive: the encoder's last layer puts out the 4 means first; with zero weights
    # their posterior means no longer depend on x
    last = [key for key in state["model"] if key.startswith("encoder") and key.endswith("weight")][-1]
    state["model"][last][2:4] = 0.0
    checkpoint.save_atomic(state, tmp_path / "m1" / checkpoint.CHECKPOINT_NAME)
    base = M2_TINY + ["train.epochs=2", f"data.features={tmp_path / 'm1'}", "model.likelihood=gaussian"]
    every = latent_features(load_recipe(None, base), tiny_images)
    active = latent_features(load_recipe(None, base + ["data.features_active_only=true"]), tiny_images)
    x = eval_inputs(m1, tiny_images, "train")
    count, _ = active_units(every.model, x)
    assert every.dim == 4 and active.dim == count <= 2
    assert torch.equal(active.mean(x), every.mean(x)[:, active.keep]) and set(active.keep.tolist()) <= {0, 1}
    assert active.sample(x[:5]).shape == (5, active.dim)
    result = train(load_recipe(None, base + ["data.features_active_only=true"]), tmp_path / "m1m2",
                   data=tiny_images, progress=False)
    assert result.finished and checkpoint.load(tmp_path / "m1m2")["shape"] == [1, 1, active.dim]
    with pytest.raises(ConfigError, match="set data.features"):
        load_recipe(None, M2_TINY + ["data.features_active_only=true"])


def test_m1_plus_m2_trains_on_the_codes_of_a_trained_vae(tmp_path, tiny_images, capsys):
    m1 = load_recipe(None, ["model.hidden=16", "model.latent=4", "train.epochs=20", "train.batch_size=32",
                            "train.lr=1e-2"])  # codes that carry the blob's position above the posterior noise
    train(m1, tmp_path / "m1", data=tiny_images, progress=False)
    config = load_recipe(None, M2_TINY + ["train.epochs=6", f"data.features={tmp_path / 'm1'}",
                                          "model.likelihood=gaussian"])
    result = train(config, tmp_path / "m1m2", data=tiny_images, progress=False)
    state = checkpoint.load(tmp_path / "m1m2")
    assert state["shape"] == [1, 1, 4] and state["likelihood"] == "gaussian"  # M2 models the 4-d codes
    import json
    last = json.loads((tmp_path / "m1m2" / "metrics.jsonl").read_text().splitlines()[-1])
    assert result.finished and last["val_error_pct"] < 50.0
    from vaekit.cli import main

    for command in ("sample", "reconstruct"):  # codes, not images: a clear refusal, not a traceback
        assert main([command, str(tmp_path / "m1m2")]) == 2
        assert "models the latent codes" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="no trained run"):
        train(load_recipe(None, M2_TINY + [f"data.features={tmp_path / 'none'}"]), tmp_path / "x",
              data=tiny_images, progress=False)


def test_m1_can_read_the_grey_levels_instead_of_binarised_images(tmp_path, tiny_images, monkeypatch):
    """``data.features_from``: what M1 actually receives, in a training batch (unlabelled and labelled halves), for
    validation, for the test figures and for counting active units -- binarised images, or their grey levels."""
    from vaekit import semi_supervised
    from vaekit.data import ImageData, to_float
    from vaekit.distributed import Dist
    from vaekit.families import family_of
    from vaekit.runs import eval_inputs

    grey = ImageData(**{**tiny_images.__dict__, **{s: getattr(tiny_images, s) // 3 + 40 for s in ("train", "val", "test")}})
    m1 = load_recipe(None, ["model.hidden=16", "model.latent=4", "train.epochs=2", "train.batch_size=32"])
    train(m1, tmp_path / "m1", data=grey, progress=False)
    seen = []

    class Recording(semi_supervised.LatentFeatures):
        def sample(self, x):
            seen.append(x)
            return super().sample(x)

        def mean(self, x, batch_size=5000):
            seen.append(x)
            return super().mean(x, batch_size)

    base = M2_TINY + ["train.epochs=1", f"data.features={tmp_path / 'm1'}", "model.likelihood=gaussian"]
    levels = {}
    for source in ("binarized", "intensities"):
        config = load_recipe(None, base + [f"data.features_from={source}"])
        family = family_of(config)
        monkeypatch.setattr(family, "_features", lambda config, data=None: Recording(config.data.features))
        seen.clear()
        feed = family.feed(config, grey, Dist())
        generator = torch.Generator().manual_seed(0)
        batch, _ = feed.batch(feed.plan(generator), 0, generator)
        validation, unlabelled, labelled = seen
        levels[source] = {float(v) for x in seen for v in x.unique()}
        assert batch.unlabelled.shape[-1] == 4 and len(unlabelled) == 32 and len(labelled) == 8
        assert torch.equal(validation, semi_supervised.feature_inputs(config, grey, "val"))
        test = semi_supervised.feature_inputs(config, grey, "test")
        expected = to_float(grey.test, 255) if source == "intensities" else eval_inputs(config, grey, "test")
        assert torch.equal(test, expected)
        assert torch.equal(semi_supervised.m2_inputs(config, grey, "test"),
                           semi_supervised.LatentFeatures(config.data.features).mean(expected))
    assert levels["binarized"] == {0.0, 1.0}
    grey_levels = {float(v) for v in torch.tensor([40 / 255, 125 / 255], dtype=torch.float32)}
    assert levels["intensities"] == grey_levels
    # the active units are counted on what M1 reads
    active = load_recipe(None, base + ["data.features_from=intensities", "data.features_active_only=true"])
    counted = []

    def spy(self, run_dir, reference=None):  # records what the count would run on (this M1 is too short to
        counted.append(reference)           # have active units)

    monkeypatch.setattr(semi_supervised.LatentFeatures, "__init__", spy)
    semi_supervised.latent_features(active, grey)
    assert {float(v) for v in counted[0].unique()} == grey_levels
    with pytest.raises(ConfigError, match="set data.features to the M1 run"):
        load_recipe(None, M2_TINY + ["data.features_from=intensities"])
    with pytest.raises(ConfigError, match="choose one of binarized, intensities"):
        load_recipe(None, base + ["data.features_from=grey"])
