import pytest

from vaekit.config import RunConfig, diff, load_recipe
from vaekit.errors import ConfigError
from vaekit.schedules import BURDA_STAGES, lr_multiplier


def test_burda_schedule_matches_the_paper_at_3280_epochs():
    assert sum(BURDA_STAGES) == 3280
    spe = 10
    # stage i covers epochs [sum_{j<i} 3^j, sum_{j<=i} 3^j) at 10^(-i/7)
    start = 0
    for i, length in enumerate(BURDA_STAGES):
        for epoch in (start, start + length - 1):
            assert lr_multiplier("burda", epoch * spe, spe, 3280) == pytest.approx(10 ** (-i / 7))
        start += length


def test_burda_schedule_compresses_proportionally():
    # with 328 epochs, stage 7 (2187/3280 of training) starts at epoch 109.3
    assert lr_multiplier("burda", 109 * 10, 10, 328) == pytest.approx(10 ** (-6 / 7))
    assert lr_multiplier("burda", 110 * 10, 10, 328) == pytest.approx(10 ** (-7 / 7))


def test_cosine_and_warmup():
    assert lr_multiplier("cosine", 0, 10, 10) == pytest.approx(1.0)
    assert lr_multiplier("cosine", 50, 10, 10) == pytest.approx(0.5)
    assert lr_multiplier("constant", 4, 10, 10, warmup_steps=10) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown lr_schedule"):
        lr_multiplier("linear-ish", 0, 10, 10)


def test_recipes_parse_and_overrides_are_typed(tmp_path):
    import pathlib
    for recipe in sorted(pathlib.Path("recipes").glob("*.toml")):
        load_recipe(recipe)
    config = load_recipe("recipes/default.toml", ["train.epochs=3", "model.hidden=64,32", "eval.plots=false"])
    assert config.train.epochs == 3 and config.model.hidden == (64, 32) and config.eval.plots is False
    assert RunConfig.from_dict(config.to_dict()) == config


def test_bad_config_gets_a_message_naming_the_key():
    with pytest.raises(ConfigError, match="unknown key train.epoch; did you mean train.epochs?"):
        load_recipe(None, ["train.epoch=3"])
    with pytest.raises(ConfigError, match=r"unknown key train.zzz; known keys"):  # no near match: no guess
        load_recipe(None, ["train.zzz=3"])
    with pytest.raises(ConfigError, match="train.epochs: cannot use 'many'"):
        load_recipe(None, ["train.epochs=many"])
    with pytest.raises(ConfigError, match="section.key=value"):
        load_recipe(None, ["epochs"])
    with pytest.raises(ConfigError, match="not found"):
        load_recipe("recipes/nope.toml")
    discrete = ["model.latent_type=categorical", "train.estimator=score", "train.baseline=loo"]
    with pytest.raises(ConfigError, match=r"train.k >= 2"):
        load_recipe(None, discrete)
    assert load_recipe(None, discrete + ["train.k=4"]).train.k == 4


def test_diff_names_every_changed_key():
    a = load_recipe(None).to_dict()
    b = load_recipe(None, ["model.latent=7", "train.beta=2"]).to_dict()
    assert diff(a, b) == ["model.latent: 20 != 7", "train.beta: 1.0 != 2.0"]


def test_choices_and_ranges_are_checked_when_the_config_is_read():
    with pytest.raises(ConfigError, match=r"model.arch = 'resnet': choose one of mlp, conv"):
        load_recipe(None, ["model.arch=resnet"])
    with pytest.raises(ConfigError, match="train.batch_size = 0: must be at least 1"):
        load_recipe(None, ["train.batch_size=0"])
    with pytest.raises(ConfigError, match="apply to the ELBO only"):
        load_recipe(None, ["train.objective=iwae", "train.beta=2"])
