"""The trainer: exact resume, refusing foreign checkpoints, stopping on a non-finite loss."""

import json
import math
import os

import pytest
import torch

from vaekit import checkpoint
from vaekit.config import load_recipe
from vaekit.errors import CheckpointError, ConfigError, TrainingDiverged
from vaekit.train import train

TINY = ["model.hidden=16", "model.latent=3", "train.batch_size=32", "train.epochs=4", "train.lr=3e-3",
        "train.lr_schedule=cosine", "eval.k=10"]


def params(run_dir):
    return checkpoint.load(run_dir)["model"]


def test_resume_mid_epoch_equals_one_uninterrupted_run(tmp_path, tiny_images):
    config = load_recipe(None, TINY + ["train.max_steps=26"])  # 10 steps per epoch: stop inside epoch 2
    train(config, tmp_path / "whole", data=tiny_images, progress=False)

    half = load_recipe(None, TINY + ["train.max_steps=13"])
    first = train(half, tmp_path / "split", data=tiny_images, progress=False)
    assert first.step == 13 and not first.finished
    second = train(config, tmp_path / "split", resume=True, data=tiny_images, progress=False)
    assert second.step == 26

    a, b = params(tmp_path / "whole"), params(tmp_path / "split")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    whole = (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()
    split = (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    drop_timing = lambda lines: [{k: v for k, v in json.loads(l).items()
                                  if k not in ("examples_per_s", "elapsed_s")} for l in lines]
    assert drop_timing(whole) == drop_timing(split)  # the same epochs, none repeated


def test_resume_continues_to_the_end_and_metrics_have_every_epoch(tmp_path, tiny_images):
    config = load_recipe(None, TINY)
    result = train(config, tmp_path / "run", data=tiny_images, progress=False)
    assert result.finished and result.epoch == 4
    lines = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [1, 2, 3, 4]
    assert lines[-1]["val_elbo"] > lines[0]["val_elbo"]  # it learns


def test_a_checkpoint_of_another_model_is_refused_with_the_differences(tmp_path, tiny_images):
    train(load_recipe(None, TINY + ["train.epochs=1"]), tmp_path / "run", data=tiny_images, progress=False)
    other = load_recipe(None, TINY + ["model.latent=5", "train.lr=1e-2"])
    with pytest.raises(CheckpointError) as info:
        train(other, tmp_path / "run", resume=True, data=tiny_images, progress=False)
    message = str(info.value)
    assert "model.latent: 3 != 5" in message and "train.lr" in message


def test_an_existing_run_is_not_overwritten(tmp_path, tiny_images):
    config = load_recipe(None, TINY + ["train.epochs=1"])
    train(config, tmp_path / "run", data=tiny_images, progress=False)
    with pytest.raises(CheckpointError, match="--resume"):
        train(config, tmp_path / "run", data=tiny_images, progress=False)


def test_non_finite_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path, tiny_images, monkeypatch):
    import vaekit.objectives as objectives_module

    real = objectives_module.objective
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        terms = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 25:  # inside epoch 3
            terms.loss = terms.loss * float("nan")
        return terms

    monkeypatch.setattr(objectives_module, "objective", poisoned)  # what the image family's training_terms calls
    with pytest.raises(TrainingDiverged, match="step 25 .epoch 3."):
        train(load_recipe(None, TINY), tmp_path / "run", data=tiny_images, progress=False)
    saved = checkpoint.load(tmp_path / "run")
    assert saved["epoch"] == 2 and saved["step"] == 20
    assert all(torch.isfinite(v).all() for v in saved["model"].values())


def test_checkpoints_load_with_weights_only_and_foreign_files_are_refused(tmp_path, tiny_images):
    train(load_recipe(None, TINY + ["train.epochs=1"]), tmp_path / "run", data=tiny_images, progress=False)
    torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read .* not a file vaekit wrote") as refused:
        checkpoint.load(tmp_path / "bad.pt")
    assert "weights_only" not in str(refused.value) and "\n" not in str(refused.value)  # not torch's unsafe advice
    whole = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(whole[: len(whole) // 2])  # e.g. a copy interrupted half way
    with pytest.raises(CheckpointError, match="truncated or damaged.*restore it from a copy"):
        checkpoint.load(tmp_path / "cut.pt")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        checkpoint.load(tmp_path / "nowhere")


def test_atomic_save_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "c.pt"
    checkpoint.save_atomic({"a": torch.ones(2)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        checkpoint.save_atomic({"a": Unpicklable()}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind


def test_checkpoints_get_the_permissions_of_any_new_file(tmp_path):
    mask = os.umask(0o022)
    try:
        checkpoint.save_atomic({"a": torch.ones(2)}, tmp_path / "c.pt")
    finally:
        os.umask(mask)
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600


def test_iwae_objective_and_gaussian_likelihood_train(tmp_path, tiny_images):
    config = load_recipe(None, TINY + ["train.objective=iwae", "train.k=5", "train.epochs=2"])
    assert train(config, tmp_path / "iwae", data=tiny_images, progress=False).finished
    gaussian = load_recipe(None, TINY + ["data.binarize=none", "model.likelihood=auto", "train.epochs=2"])
    train(gaussian, tmp_path / "gauss", data=tiny_images, progress=False)
    assert checkpoint.load(tmp_path / "gauss")["likelihood"] == "gaussian"


def test_conv_encoder_decoder_train_and_reject_odd_sizes(tmp_path, tiny_images):
    config = load_recipe(None, TINY + ["model.arch=conv", "model.hidden=32", "train.epochs=1"])
    assert train(config, tmp_path / "conv", data=tiny_images, progress=False).finished
    from vaekit.models import build_model
    with pytest.raises(ValueError, match="divisible by 4"):
        build_model(config.model, (1, 10, 10), "bernoulli")


def test_the_default_conv_net_keeps_its_parameter_names_and_shapes():
    """Generalising the conv net to any depth kept the two-layer default's state-dict layout, so runs trained
    before still load."""
    from vaekit.models import build_model

    model = build_model(load_recipe(None, ["model.arch=conv", "model.hidden=32"]).model, (1, 28, 28), "bernoulli")
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.endswith("weight")}
    assert shapes == {"encoder.net.0.weight": (32, 1, 4, 4), "encoder.net.2.weight": (64, 32, 4, 4),
                      "encoder.net.5.weight": (32, 64 * 7 * 7), "encoder.net.7.weight": (40, 32),
                      "decoder.net.0.weight": (32, 20), "decoder.net.2.weight": (64 * 7 * 7, 32),
                      "decoder.net.5.weight": (64, 32, 4, 4), "decoder.net.7.weight": (32, 1, 4, 4)}


def test_a_deeper_conv_net_halves_the_sides_once_per_layer_and_trains(tmp_path, tiny_images):
    from vaekit.errors import ConfigError
    from vaekit.models import build_model

    dsprites_like = load_recipe(None, ["model.arch=conv", "model.hidden=256", "model.latent=10",
                                       "model.conv_channels=[32, 32, 64, 64]"]).model  # Locatello et al.'s 64x64 net
    model = build_model(dsprites_like, (1, 64, 64), "bernoulli")
    assert model.encoder.net[9].in_features == 64 * 4 * 4  # 64 -> 32 -> 16 -> 8 -> 4
    x = torch.rand(3, 64 * 64).round()
    assert model.encode(x).mean.shape == (3, 10) and model.decode(torch.randn(2, 3, 10)).mean.shape == (2, 3, 4096)
    with pytest.raises(ValueError, match="divisible by 16"):
        build_model(dsprites_like, (1, 28, 28), "bernoulli")
    with pytest.raises(ConfigError, match="model.conv_channels"):
        load_recipe(None, ["model.conv_channels=[]"])
    config = load_recipe(None, TINY + ["model.arch=conv", "model.hidden=16", "model.conv_channels=[4, 8, 8]",
                                       "train.epochs=2"])  # 8x8 images down to 1x1
    result = train(config, tmp_path / "deep", data=tiny_images, progress=False)
    lines = [json.loads(l) for l in (tmp_path / "deep" / "metrics.jsonl").read_text().splitlines()]
    assert result.finished and all(math.isfinite(l["val_elbo"]) for l in lines)


def test_sigterm_finishes_the_step_checkpoints_and_resumes_exactly(tmp_path, tiny_images, monkeypatch):
    import os
    import signal

    config = load_recipe(None, TINY + ["train.epochs=3"])
    train(config, tmp_path / "whole", data=tiny_images, progress=False)

    import vaekit.objectives as objectives_module

    real = objectives_module.objective
    calls = {"n": 0}

    def signalling(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 17:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(objectives_module, "objective", signalling)
    first = train(config, tmp_path / "split", data=tiny_images, progress=False)
    assert first.interrupted and first.step == 17 and not first.finished
    monkeypatch.setattr(objectives_module, "objective", real)
    assert train(config, tmp_path / "split", resume=True, data=tiny_images, progress=False).finished
    a, b = params(tmp_path / "whole"), params(tmp_path / "split")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("estimator,baseline", [("score", "none"), ("score", "moving-average"), ("score", "nvil"),
                                                ("score", "loo"), ("gumbel", "none"), ("st-gumbel", "none"),
                                                ("exact", "none")])
def test_discrete_latents_train_with_every_estimator_and_resume(tmp_path, tiny_images, estimator, baseline):
    overrides = TINY + ["model.latent_type=categorical", "model.latent=2", "model.categories=3",
                        f"train.estimator={estimator}", f"train.baseline={baseline}", "train.temperature_rate=0.01",
                        "train.temperature_every=5", "train.epochs=3"] + (["train.k=3"] if baseline == "loo" else [])
    whole = train(load_recipe(None, overrides), tmp_path / "whole", data=tiny_images, progress=False)
    lines = [json.loads(l) for l in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor([l["val_elbo"] for l in lines])))
    train(load_recipe(None, overrides + ["train.max_steps=15"]), tmp_path / "split", data=tiny_images,
          progress=False)
    train(load_recipe(None, overrides), tmp_path / "split", resume=True, data=tiny_images, progress=False)
    a, b = params(tmp_path / "whole"), params(tmp_path / "split")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert whole.model.sample(4).shape == (4, 64)


def test_gumbel_temperature_follows_jang_et_al():
    from vaekit.schedules import gumbel_temperature
    assert gumbel_temperature(0, 1.0, 0.5, 3e-5, 1000) == 1.0
    assert gumbel_temperature(1999, 1.0, 0.5, 3e-5, 1000) == pytest.approx(math.exp(-3e-5 * 1000))
    assert gumbel_temperature(10 ** 6, 1.0, 0.5, 3e-5, 1000) == 0.5


def test_kl_annealing_and_free_bits_are_training_policy_with_exact_resume(tmp_path, tiny_images):
    overrides = TINY + ["train.kl_schedule=linear", "train.kl_warmup=25", "train.free_bits=0.1"]
    train(load_recipe(None, overrides), tmp_path / "whole", data=tiny_images, progress=False)
    lines = [json.loads(l) for l in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert [l["kl_weight"] for l in lines] == [pytest.approx(9 / 25), pytest.approx(19 / 25), 1.0, 1.0]
    train(load_recipe(None, overrides + ["train.max_steps=13"]), tmp_path / "split", data=tiny_images,
          progress=False)
    train(load_recipe(None, overrides), tmp_path / "split", resume=True, data=tiny_images, progress=False)
    a, b = params(tmp_path / "whole"), params(tmp_path / "split")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_clip_gradients_equals_torch_clipping_bit_for_bit_whether_or_not_it_clips():
    from vaekit.train import clip_gradients

    torch.manual_seed(0)
    for max_norm in (0.1, 1e6):  # clips; leaves the gradients as they are
        ours = [torch.nn.Parameter(torch.randn(7, 3)) for _ in range(2)]
        theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
        for a, b in zip(ours, theirs):
            a.grad = torch.randn_like(a)
            b.grad = a.grad.clone()
        clip_gradients(ours, max_norm)
        torch.nn.utils.clip_grad_norm_(theirs, max_norm)
        assert all(torch.equal(a.grad, b.grad) for a, b in zip(ours, theirs))
    assert torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in ours])) > 0.1  # the second case kept them


def test_plateau_decays_after_patience_and_stops_after_the_last_decay():
    from vaekit.schedules import Plateau
    plateau = Plateau(patience=2, factor=0.5, max_decays=2)
    actions = [plateau.observe(b) for b in (-10.0, -9.0, -9.5, -9.0, -8.9, -9.2, -9.1)]
    assert actions == ["best", "best", "wait", "decay", "best", "wait", "stop"]  # ties are no better
    assert plateau.multiplier == 0.25 and plateau.done
    copy = Plateau()
    copy.load_state_dict(plateau.state_dict())
    assert copy == plateau


def scripted_validation(monkeypatch, bounds, snapshots):
    """Replace the validation bound by ``bounds`` in turn (one per validation, across resumed runs) and keep
    a copy of the weights each validation saw."""
    calls = iter(bounds)

    def fake(model, *args, **kwargs):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"elbo": next(calls), "log_px_z": 0.0, "kl": 0.0}
    monkeypatch.setattr("vaekit.train.validation_elbo", fake)


PLATEAU = TINY[:-2] + ["train.lr_schedule=plateau", "train.epochs=8", "train.plateau_decays=2", "eval.k=10"]
BOUNDS = [-10.0, -9.0, -9.5, -9.6, -9.7, -9.8, -1.0, -1.0]  # decay after epoch 4, stop after epoch 6


class ScalarWriter:
    """Stands in for TensorBoard's SummaryWriter, which refuses anything but numbers."""

    def __init__(self):
        self.keys = set()

    def add_scalar(self, key, value, step):
        float(value)
        self.keys.add(key)

    def close(self):
        pass


def test_plateau_halves_the_rate_from_the_best_weights_and_ends_on_them(tmp_path, tiny_images, monkeypatch):
    snapshots = []
    scripted_validation(monkeypatch, BOUNDS, snapshots)
    writer = ScalarWriter()
    monkeypatch.setattr("vaekit.train._tensorboard", lambda run_dir: writer)
    result = train(load_recipe(None, PLATEAU), tmp_path / "run", data=tiny_images, progress=False)
    lines = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [l["plateau"] for l in lines] == ["best", "best", "wait", "decay", "wait", "stop"]
    assert [l["lr"] for l in lines] == [3e-3] * 4 + [1.5e-3] * 2  # the rate each epoch trained at
    assert result.finished and result.epoch == 6 and len(snapshots) == 6
    # epoch 5 starts from the weights validated after epoch 2, and the run ends on them
    final = params(tmp_path / "run")
    assert all(torch.equal(final[k], snapshots[1][k]) for k in final)
    assert not all(torch.equal(snapshots[4][k], snapshots[3][k]) for k in final)  # epoch 5 trained on
    state = checkpoint.load(tmp_path / "run")
    assert state["stopped_early"] and state["plateau"]["state"]["decays"] == 2
    assert {"lr", "val_elbo", "lr_decays"} <= writer.keys and "plateau" not in writer.keys  # (a word, not a number)


def test_an_autoencoders_plateau_watches_its_reconstruction_not_its_elbo(tmp_path, tiny_images, monkeypatch):
    from vaekit.train import plateau_criterion

    record = {"val_elbo": -350.0, "val_log_px_z": -120.0, "val_kl": 230.0}
    assert plateau_criterion(record, 1.0) == -350.0
    assert plateau_criterion(record, 0.0) == -120.0 and plateau_criterion(record, 0.5) == -235.0
    assert plateau_criterion({"val_elbo": -3.0}, 0.0) == -3.0  # a family without the two terms: its bound

    # beta = 0: the reconstruction improves every epoch while the KL (and so the ELBO) grows worse: no decay
    terms = iter([(-130.0 + i, 200.0 + 10 * i) for i in range(8)])

    def fake(model, *args, **kwargs):
        log_px_z, kl = next(terms)
        return {"elbo": log_px_z - kl, "log_px_z": log_px_z, "kl": kl}
    monkeypatch.setattr("vaekit.train.validation_elbo", fake)
    train(load_recipe(None, PLATEAU + ["train.beta=0", "train.epochs=5"]), tmp_path / "ae", data=tiny_images,
          progress=False)
    lines = [json.loads(l) for l in (tmp_path / "ae" / "metrics.jsonl").read_text().splitlines()]
    assert [l["plateau"] for l in lines] == ["best"] * 5 and {l["lr"] for l in lines} == {3e-3}


def test_plateau_resumes_exactly_after_a_decay(tmp_path, tiny_images, monkeypatch):
    scripted_validation(monkeypatch, BOUNDS, [])
    train(load_recipe(None, PLATEAU), tmp_path / "whole", data=tiny_images, progress=False)
    scripted_validation(monkeypatch, BOUNDS, [])
    first = train(load_recipe(None, PLATEAU + ["train.max_steps=45"]), tmp_path / "split", data=tiny_images,
                  progress=False)  # 10 steps per epoch: stopped in epoch 5, after the decay
    assert not first.finished
    second = train(load_recipe(None, PLATEAU), tmp_path / "split", resume=True, data=tiny_images, progress=False)
    assert second.finished and second.epoch == 6
    a, b = params(tmp_path / "whole"), params(tmp_path / "split")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_plateau_needs_validation():
    with pytest.raises(ConfigError, match="set train.val_every to at least 1"):
        load_recipe(None, ["train.lr_schedule=plateau", "train.val_every=0"])


def test_plateau_ends_on_the_best_weights_when_the_epochs_run_out(tmp_path, tiny_images, monkeypatch):
    snapshots = []
    scripted_validation(monkeypatch, [-10.0, -9.0, -9.5], snapshots)
    result = train(load_recipe(None, PLATEAU + ["train.epochs=3"]), tmp_path / "run", data=tiny_images,
                   progress=False)
    state = checkpoint.load(tmp_path / "run")
    assert result.finished and not state["stopped_early"]
    assert state["plateau"]["best"] is None  # the model is the best copy: stored once
    final = params(tmp_path / "run")
    assert all(torch.equal(final[k], snapshots[1][k]) for k in final)
    # more epochs later: the best copy is the model again, so the next decay goes back to epoch 2's weights
    scripted_validation(monkeypatch, [-9.6, -1.0], snapshots)
    train(load_recipe(None, PLATEAU + ["train.epochs=5", "train.max_steps=40"]), tmp_path / "run", resume=True,
          data=tiny_images, progress=False)  # epoch 4 ends on the second validation without a new best
    after_decay = params(tmp_path / "run")
    assert all(torch.equal(after_decay[k], snapshots[1][k]) for k in final)
    assert not all(torch.equal(snapshots[3][k], snapshots[1][k]) for k in final)  # (epoch 4 had trained on)


def test_sgd_takes_the_plain_and_the_momentum_step():
    """theta <- theta - lr * b, with b <- momentum * b + g (b = g on the first step): two steps by hand."""
    from vaekit.train import make_optimizer
    for momentum in (0.0, 0.9):
        config = load_recipe(None, ["train.optimizer=sgd", "train.lr=0.5", f"train.momentum={momentum}"])
        layer = torch.nn.Linear(3, 1, bias=False)
        with torch.no_grad():
            layer.weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
        optimizer = make_optimizer(layer, config)
        assert isinstance(optimizer, torch.optim.SGD)
        x = torch.tensor([[1.0, 2.0, 3.0]])
        expected, buffer = layer.weight.detach().clone(), torch.zeros(1, 3)
        for _ in range(2):
            optimizer.zero_grad()
            (layer(x) ** 2).sum().backward()
            grad = 2 * (x @ expected.T) * x  # d/dw (w.x)^2
            buffer = momentum * buffer + grad
            expected = expected - 0.5 * buffer
            optimizer.step()
            assert torch.allclose(layer.weight.detach(), expected, atol=1e-6), momentum


def test_sgd_with_momentum_resumes_exactly(tmp_path, tiny_images):
    sgd = TINY + ["train.optimizer=sgd", "train.lr=0.05", "train.momentum=0.9"]
    train(load_recipe(None, sgd + ["train.max_steps=26"]), tmp_path / "whole", data=tiny_images, progress=False)
    train(load_recipe(None, sgd + ["train.max_steps=13"]), tmp_path / "split", data=tiny_images, progress=False)
    train(load_recipe(None, sgd + ["train.max_steps=26"]), tmp_path / "split", resume=True, data=tiny_images,
          progress=False)  # (the momentum buffers travel in the checkpoint)
    a, b = params(tmp_path / "whole"), params(tmp_path / "split")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_an_unknown_optimizer_or_momentum_is_refused():
    with pytest.raises(ConfigError, match="train.optimizer = 'rmsprop': choose one of adam, sgd"):
        load_recipe(None, ["train.optimizer=rmsprop"])
    with pytest.raises(ConfigError, match=r"train.momentum = 1.5: must lie in \[0, 1\)"):
        load_recipe(None, ["train.momentum=1.5"])
