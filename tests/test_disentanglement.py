"""dSprites generator (the published factor grid, deterministic bytes) and disentanglement metrics on codes
with known answers."""

import math
import zlib

import numpy as np
import pytest

from vaekit.data import dsprites
from vaekit.disentanglement import betavae_score, factorvae_score, mutual_information_gap


def test_dsprites_has_the_published_factor_grid():
    assert dsprites.FACTOR_SIZES == (3, 6, 40, 32, 32) and dsprites.COUNT == 737280
    assert np.allclose(dsprites.FACTOR_VALUES["scale"], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert dsprites.FACTOR_VALUES["orientation"][0] == 0 and math.isclose(
        dsprites.FACTOR_VALUES["orientation"][-1], 2 * math.pi)
    assert np.allclose(np.diff(dsprites.FACTOR_VALUES["pos_x"]), 1 / 31)


def test_every_factor_combination_appears_exactly_once_in_the_published_order():
    factors = dsprites.factors_of(np.arange(dsprites.COUNT))
    assert factors.shape == (737280, 5)
    assert len(np.unique(dsprites.index_of(factors))) == 737280
    assert np.array_equal(dsprites.index_of(factors), np.arange(737280))
    assert factors[1].tolist() == [0, 0, 0, 0, 1] and factors[32].tolist() == [0, 0, 0, 1, 0]  # pos_y fastest
    assert factors[-1].tolist() == [2, 5, 39, 31, 31]


def test_rendering_is_deterministic_binary_and_moves_with_the_factors():
    idx = np.arange(0, dsprites.COUNT, 1237)
    a = dsprites.render(dsprites.factors_of(idx))
    dsprites._base_masks.cache_clear()
    b = dsprites.render(dsprites.factors_of(idx))
    assert np.array_equal(a, b) and set(np.unique(a)) <= {0, 1} and a.shape == (len(idx), 4096)
    assert dsprites.digest(idx) == dsprites.digest(idx)
    left, right = dsprites.render(np.array([[0, 5, 0, 0, 16], [0, 5, 0, 31, 16]])).reshape(2, 64, 64)
    cols = lambda im: np.nonzero(im.any(0))[0]  # noqa: E731
    assert cols(right).mean() - cols(left).mean() == pytest.approx(40, abs=1)  # pos_x moves the shape right
    small, big = dsprites.render(np.array([[1, 0, 0, 16, 16], [1, 5, 0, 16, 16]])).sum(1)
    assert big > 3 * small  # area ~ scale^2: (1 / 0.5)^2 = 4
    full = dsprites.render(dsprites.factors_of(np.arange(0, dsprites.COUNT, 101))).reshape(-1, 64, 64)
    assert full.any(axis=(1, 2)).all()
    assert not (full[:, 0].any() or full[:, -1].any() or full[:, :, 0].any() or full[:, :, -1].any())


def test_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(dsprites, "COUNT", 5000)  # the first 5000 images: the full build takes ~40 s
    path = dsprites.build_cache(tmp_path / "dsprites.npz", chunk=1024)
    images, factors = dsprites.load_cache(path)
    assert np.array_equal(images, dsprites.render(dsprites.factors_of(np.arange(5000))))
    assert np.array_equal(factors, dsprites.factors_of(np.arange(5000)))
    monkeypatch.setattr(dsprites, "COUNT", 6000)
    with pytest.raises(ValueError, match="build it again"):
        dsprites.load_cache(path)


SIZES = (4, 5, 6)


def sample_factors(n, rng):
    return np.stack([rng.integers(0, s, n) for s in SIZES], axis=1)


def render(factors):
    return factors.astype(np.float64)


def perfect(x):
    """Each factor in its own dimension (scaled, with a little noise), plus one dimension of pure noise."""
    rng = np.random.default_rng(zlib.crc32(x.tobytes()))
    return np.concatenate([x * 0.7 + 0.01 * rng.standard_normal(x.shape), rng.standard_normal((len(x), 1))], 1)


def noise(x):
    rng = np.random.default_rng(zlib.crc32(x.tobytes()))
    return rng.standard_normal((len(x), 4))


def entangled(x):
    """An invertible mix: informative but not axis-aligned."""
    mix = np.array([[1.0, 1.0, 0.0], [1.0, -1.0, 1.0], [0.0, 1.0, 1.0]])
    return x @ mix


@pytest.mark.parametrize("metric, top, bottom", [
    (lambda e: betavae_score(e, sample_factors, render, 3, n_train=300, n_eval=200, batch=32), 0.98, 0.5),
    (lambda e: factorvae_score(e, sample_factors, render, 3, n_train=300, n_eval=200, batch=32, n_global=2000),
     0.98, 0.5),
    (lambda e: mutual_information_gap(e, sample_factors, render, n=5000), 0.95, 0.05),
])
def test_metrics_score_a_disentangled_code_at_the_top_and_noise_near_chance(metric, top, bottom):
    assert metric(perfect) >= top
    assert metric(noise) <= bottom  # chance is 1/3 for the two classifiers, 0 for MIG


def test_mig_is_low_for_an_entangled_code_that_a_classifier_still_reads():
    assert mutual_information_gap(entangled, sample_factors, render, n=5000) < 0.5
    assert mutual_information_gap(perfect, sample_factors, render, n=5000) > 0.95


def test_dsprites_loads_as_image_data_from_the_cache_it_builds(tmp_path, monkeypatch):
    from vaekit.data.images import dsprites_path, load_dsprites

    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))
    monkeypatch.setattr(dsprites, "COUNT", 3000)  # the first 3000 images (the full build takes ~40 s)
    data = load_dsprites(validation=300, test=300)
    assert dsprites_path().exists() and data.shape == (1, 64, 64) and data.is_binary
    assert len(data.train) + len(data.val) + len(data.test) == 3000
    assert set(data.train_labels.unique().tolist()) <= {0}  # the first 3000 images are all squares


def test_controlled_capacity_penalises_the_distance_of_the_batch_kl_from_c():
    import torch

    from vaekit.config import ModelConfig
    from vaekit.models.vae import build_model
    from vaekit.objectives import elbo

    torch.manual_seed(0)
    model = build_model(ModelConfig(hidden=(8,), latent=3), (1, 2, 4), "bernoulli")
    x = (torch.rand(6, 8) > 0.5).float()
    torch.manual_seed(1)
    plain = elbo(model, x)
    torch.manual_seed(1)
    capped = elbo(model, x, beta=10.0, capacity=2.0)
    expected = -plain.log_px_z.mean() + 10.0 * (plain.kl.mean() - 2.0).abs()
    assert torch.allclose(capped.loss.mean(), expected) and torch.allclose(capped.bound, plain.bound)
