"""Model families (vaekit.families): which family a config names, and that every family's model comes back
identical from its checkpoint and from an export (spec + safetensors)."""

import pytest
import torch

from vaekit.config import load_recipe
from vaekit.export import export_run, load_exported
from vaekit.families import family_of
from vaekit.runs import load_model
from vaekit.train import train

TINY = ["model.hidden=16", "model.latent=3", "train.batch_size=32", "train.epochs=1"]


@pytest.mark.parametrize("overrides, family", [
    ([], "vae"),
    (["model.latent_type=categorical", "model.categories=4"], "vae"),
    (["model.arch=m2", "data.labelled=40"], "m2"),
    (["model.arch=m2", "data.labelled=40", "data.features=runs/m1"], "m1+m2"),
    (["model.arch=cvae", "data.quadrants=2"], "cvae"),
    (["model.arch=cvae-nn", "data.quadrants=2", "train.objective=mle"], "cvae"),
    (["data.name=ptb", "model.arch=lstm"], "sentence"),
    (["data.name=ptb", "model.arch=lstm-lm", "train.objective=mle"], "sentence"),
    (["data.name=brown", "model.arch=lstm", "model.condition_embedding=8"], "sentence-cvae"),
])
def test_each_config_names_one_family(overrides, family):
    assert family_of(load_recipe(None, overrides)).name == family


@pytest.mark.parametrize("overrides", [
    [],
    ["model.flow=2"],
    ["model.arch=m2", "data.labelled=40", "model.categories=4"],
    ["model.arch=cvae", "data.quadrants=2"],
    ["model.arch=cvae", "data.condition=label", "data.quadrants=0", "model.categories=4"],
    ["model.arch=cvae-nn", "data.quadrants=3", "train.objective=mle"],
])
def test_every_image_family_round_trips_through_checkpoint_and_export(tmp_path, tiny_images, overrides):
    config = load_recipe(None, TINY + overrides)
    trained = train(config, tmp_path / "run", data=tiny_images, progress=False).model
    _, restored, _ = load_model(tmp_path / "run")
    _, exported = load_exported(export_run(tmp_path / "run", tmp_path / "exported"))
    assert type(restored) is type(trained) is type(exported)
    reference = trained.state_dict()
    for model in (restored, exported):
        state = model.state_dict()
        assert state.keys() == reference.keys()
        assert all(torch.equal(state[k], reference[k]) for k in reference)


def test_plots_a_family_does_not_draw_are_refused_by_name(tmp_path, tiny_images, monkeypatch):
    import vaekit.report as report_module

    train(load_recipe(None, TINY + ["model.arch=cvae", "data.quadrants=2"]), tmp_path / "run", data=tiny_images,
          progress=False)
    monkeypatch.setattr("vaekit.runs.load_data", lambda config: tiny_images)
    with pytest.raises(ValueError, match=r"\['manifold'\] for a cvae run: choose from samples, completions"):
        report_module.plot_run(tmp_path / "run", ("manifold",))
    assert {p.name for p in report_module.plot_run(tmp_path / "run", ("completions",))} == {"completions.png"}
