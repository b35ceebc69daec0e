"""Initialisation choices: Glorot-uniform Linear layers and a decoder that starts at the data's mean image."""

import math

import pytest
import torch

from vaekit import checkpoint
from vaekit.config import load_recipe
from vaekit.errors import ConfigError
from vaekit.families import family_of
from vaekit.models import build_model
from vaekit.train import train

TINY = ["model.hidden=16", "model.latent=3", "train.batch_size=32", "train.epochs=2", "train.lr=3e-3",
        "train.log_every=1000"]


def test_glorot_init_draws_every_linear_layer_within_its_bound_with_zero_biases():
    torch.manual_seed(0)
    config = load_recipe(None, ["model.hidden=[300, 200]", "model.init=glorot"])
    family = family_of(config)
    model = build_model(config.model, (1, 28, 28), "bernoulli")
    family.initialise(model, config, data=None)
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert len(layers) == 6
    for layer in layers:
        n_out, n_in = layer.weight.shape
        bound = math.sqrt(6 / (n_in + n_out))
        assert layer.weight.abs().max() <= bound and torch.count_nonzero(layer.bias) == 0
        # a uniform on (-b, b) has standard deviation b / sqrt(3); 784 x 300 draws pin it to ~0.2%
        if layer.weight.numel() > 50000:
            assert layer.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.01)


def test_output_bias_starts_the_decoder_at_the_mean_training_image(tiny_images):
    config = load_recipe(None, TINY + ["model.output_bias=data"])
    family = family_of(config)
    model = family.build(config, family.spec(config, tiny_images))
    family.initialise(model, config, tiny_images)
    mean = (tiny_images.train.double() / 255).flatten(1).mean(0).clamp(0.001, 0.999)
    assert torch.allclose(torch.sigmoid(model.decoder.net[-1].bias.double()), mean, atol=1e-6)
    with pytest.raises(ConfigError, match="output biases"):
        load_recipe(None, ["model.output_bias=data", "model.arch=conv"])


def test_a_run_with_both_choices_resumes_exactly(tmp_path, tiny_images):
    overrides = TINY + ["model.init=glorot", "model.output_bias=data"]
    train(load_recipe(None, overrides), tmp_path / "whole", data=tiny_images, progress=False)
    train(load_recipe(None, overrides + ["train.max_steps=5"]), tmp_path / "split", data=tiny_images, progress=False)
    train(load_recipe(None, overrides), tmp_path / "split", resume=True, data=tiny_images, progress=False)
    a, b = (checkpoint.load(tmp_path / d)["model"] for d in ("whole", "split"))
    assert all(torch.equal(a[k], b[k]) for k in a)
