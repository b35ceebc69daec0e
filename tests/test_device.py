"""``train.device`` / ``eval.device``: choosing a device, moving batches, and (where torch sees a GPU) every
model family training, resuming and evaluating on it.

The GPU tests skip on a machine without CUDA (CI, this project's CPU machines); they were run on an NVIDIA
H200 (see BENCHMARKS.md, "On a GPU"). Exactness on a GPU: cuBLAS and cuDNN pick the same kernels for the same
shapes, so a resumed run is compared with the uninterrupted one to float32 round-off, not bit for bit."""

import pytest
import torch

from vaekit import checkpoint
from vaekit.conditional import ConditionalBatch
from vaekit.config import load_recipe
from vaekit.devices import describe, resolve_device, to_device
from vaekit.errors import CheckpointError, ConfigError
from vaekit.models.sentence_vae import SentenceBatch
from vaekit.report import evaluate_run
from vaekit.semi_supervised import LabelledBatch
from vaekit.train import train

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="torch sees no GPU here")

@pytest.fixture
def tiny_everywhere(tiny_images, monkeypatch):
    """``tiny_images`` also for :func:`evaluate_run`, which loads a run's data by its config."""
    import vaekit.report as report_module

    monkeypatch.setattr(report_module, "load_data", lambda config: tiny_images)
    return tiny_images


TINY = ["model.hidden=16", "model.latent=3", "train.batch_size=32", "train.lr=3e-3", "eval.k=10"]


def test_auto_means_the_gpu_when_there_is_one():
    assert resolve_device("auto").type == ("cuda" if CUDA else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert describe(torch.device("cpu")) == "cpu"


@pytest.mark.skipif(CUDA, reason="this machine has a GPU")
def test_asking_for_a_gpu_without_one_names_the_fix():
    with pytest.raises(ConfigError, match="sees no GPU.*--set train.device=cpu"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="--set eval.device=cpu"):
        resolve_device("cuda:1", "eval.device")


@pytest.mark.parametrize("name", ["gpu", "cuda:", "CUDA", "cuda:x", "tpu"])
def test_a_misspelt_device_is_refused_by_the_config_with_the_choices(name):
    with pytest.raises(ConfigError, match="choose cpu, cuda, cuda:N"):
        load_recipe(None, [f"train.device={name}"])
    with pytest.raises(ConfigError, match="eval.device"):
        load_recipe(None, [f"eval.device={name}"])


def test_to_device_moves_every_tensor_of_a_batch_and_keeps_the_rest():
    tokens = torch.tensor([[4, 5, 2], [6, 2, 0]])
    sentences = SentenceBatch.from_tokens(tokens, tokens > 0, bos=1)
    nested = ConditionalBatch(sentences, torch.tensor([0, 3]))
    labelled = LabelledBatch(torch.rand(3, 4), torch.rand(2, 4), torch.tensor([1, 0]), labelled_weight=0.25)
    cpu = torch.device("cpu")
    for batch in (sentences, nested, labelled, torch.rand(2, 2)):  # already there: the very same object
        assert to_device(batch, cpu) is batch
    # the meta device (shapes without storage) stands in for a GPU: the same code path on any machine
    meta = torch.device("meta")
    moved = to_device(nested, meta)
    assert isinstance(moved, ConditionalBatch) and isinstance(moved.x, SentenceBatch)
    assert all(t.is_meta for t in (moved.c, moved.x.tokens, moved.x.mask, moved.x.lengths, moved.x.inputs))
    assert moved.x.tokens.shape == tokens.shape and nested.x.tokens.device == cpu  # the original is untouched
    moved = to_device(labelled, meta)
    assert moved.labelled_weight == 0.25 and moved.unlabelled.is_meta and moved.labels.is_meta
    assert to_device((labelled, [tokens]), cpu)[1][0] is tokens


def test_a_run_may_resume_on_another_device_setting(tmp_path, tiny_images):
    """``train.device`` is a compute setting like ``train.threads``: changing it is no other model."""
    config = load_recipe(None, TINY + ["train.epochs=2", "train.max_steps=12", "train.device=cpu"])
    train(config, tmp_path / "run", data=tiny_images, progress=False)
    moved = load_recipe(None, TINY + ["train.epochs=2", "train.device=auto"])
    result = train(moved, tmp_path / "run", resume=True, data=tiny_images, progress=False)
    assert result.finished
    other = load_recipe(None, TINY + ["train.epochs=2", "model.latent=4"])
    with pytest.raises(CheckpointError, match="model.latent"):
        train(other, tmp_path / "run", resume=True, data=tiny_images, progress=False)


def test_the_report_says_where_it_was_computed(tmp_path, tiny_everywhere):
    tiny_images = tiny_everywhere
    train(load_recipe(None, TINY + ["train.epochs=1"]), tmp_path / "run", data=tiny_images, progress=False)
    report = evaluate_run(tmp_path / "run", k=5, device="cpu", write=False)
    assert report["device"] == "cpu"


# --- on a GPU: every family trains, resumes and evaluates there --------------------------------------------------

FAMILIES = {
    "vae-mlp": [],
    "vae-conv": ["model.arch=conv", "model.hidden=[8, 8]"],
    "iwae-dreg-hierarchy": ["train.objective=iwae", "train.k=4", "train.estimator=dreg", "model.hierarchy=[2]"],
    "planar-flow": ["model.flow=2"],
    "bf16": ["train.precision=bfloat16"],
    "categorical-gumbel": ["model.latent_type=categorical", "model.categories=4", "train.estimator=gumbel",
                           "train.temperature_rate=0.01"],
    "bernoulli-score-nvil": ["model.latent_type=bernoulli", "model.latent=6", "train.estimator=score",
                             "train.baseline=nvil"],
    "bernoulli-loo": ["model.latent_type=bernoulli", "model.latent=6", "train.estimator=score", "train.baseline=loo",
                      "train.k=3"],
    "categorical-exact": ["model.latent_type=categorical", "model.categories=3", "model.latent=2",
                          "train.estimator=exact"],
    "sbn-rws": ["model.hidden=[]", "model.latent=8", "model.latent_type=bernoulli", "train.objective=rws",
                "train.k=3"],
    "m2": ["model.arch=m2", "data.labelled=8", "model.categories=4", "model.activation=softplus",
           "train.labelled_batch=8"],
    "cvae-quadrants": ["model.arch=cvae", "data.quadrants=2", "train.objective=hybrid"],
    "cvae-by-class": ["model.arch=cvae", "data.condition=label", "model.categories=4"],
}


def _params_close(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


@needs_cuda
@pytest.mark.parametrize("extra", FAMILIES.values(), ids=FAMILIES.keys())
def test_every_image_family_trains_resumes_and_evaluates_on_the_gpu(tmp_path, tiny_everywhere, extra):
    tiny_images = tiny_everywhere
    overrides = TINY + extra + ["train.device=cuda", "train.epochs=2"]
    whole = train(load_recipe(None, overrides), tmp_path / "whole", data=tiny_images, progress=False)
    assert next(whole.model.parameters()).is_cuda
    train(load_recipe(None, overrides + ["train.max_steps=15"]), tmp_path / "split", data=tiny_images, progress=False)
    train(load_recipe(None, overrides), tmp_path / "split", resume=True, data=tiny_images, progress=False)
    _params_close(checkpoint.load(tmp_path / "whole")["model"], checkpoint.load(tmp_path / "split")["model"])
    report = evaluate_run(tmp_path / "whole", k=10, write=False)
    assert report["device"].startswith("cuda")
    figures = [v for k, v in report.items() if k in ("nll", "ncll", "elbo", "error_pct") and v is not None]
    assert figures and all(torch.isfinite(torch.tensor(float(v))) for v in figures)


@needs_cuda
def test_gpu_and_cpu_evaluations_of_one_checkpoint_agree(tmp_path, tiny_everywhere):
    """The same weights scored on both devices: importance samples differ, so the NLLs agree to the estimator's
    noise (K = 200 on 50 test images of a small model: a few hundredths of a nat), and the ELBO's KL too."""
    train(load_recipe(None, TINY + ["train.epochs=3"]), tmp_path / "run", data=tiny_everywhere, progress=False)
    cpu = evaluate_run(tmp_path / "run", k=200, device="cpu", write=False)
    gpu = evaluate_run(tmp_path / "run", k=200, device="cuda", write=False)
    assert abs(cpu["nll"] - gpu["nll"]) < 0.1, (cpu["nll"], gpu["nll"])
    assert cpu["active_units"] == gpu["active_units"]


@needs_cuda
@pytest.mark.parametrize("arch", ["lstm", "lstm-lm"])
def test_a_sentence_model_trains_resumes_and_evaluates_on_the_gpu(tmp_path, arch):
    words = "the a cat dog sat ran on under mat log big small red".split()
    g = torch.Generator().manual_seed(0)
    lines = [" ".join(words[int(i)] for i in torch.randint(len(words), (int(n),), generator=g))
             for n in torch.randint(3, 9, (200,), generator=g)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n")
    objective = ["train.objective=mle", "train.kl_schedule=none"] if arch == "lstm-lm" else [
        "train.word_dropout=0.3", "train.kl_schedule=linear", "train.kl_warmup=20"]
    overrides = [f"data.path={corpus}", f"model.arch={arch}", "model.embedding=8", "model.hidden=12",
                 "model.latent=3", "train.batch_size=16", "train.epochs=2", "eval.k=20", "eval.sample_chunk=7",
                 "eval.batch_size=32", "train.device=cuda", *objective]
    train(load_recipe(None, overrides), tmp_path / "whole", progress=False)
    train(load_recipe(None, overrides + ["train.max_steps=13"]), tmp_path / "split", progress=False)
    train(load_recipe(None, overrides), tmp_path / "split", resume=True, progress=False)
    _params_close(checkpoint.load(tmp_path / "whole")["model"], checkpoint.load(tmp_path / "split")["model"])
    gpu = evaluate_run(tmp_path / "whole", write=False)
    cpu = evaluate_run(tmp_path / "whole", device="cpu", write=False)
    assert gpu["device"].startswith("cuda") and gpu["tokens"] == cpu["tokens"]
    assert abs(gpu["nll"] - cpu["nll"]) < (1e-4 if arch == "lstm-lm" else 0.2), (gpu["nll"], cpu["nll"])


@pytest.mark.parametrize("native, advice", [(True, "speeds up training"), (False, "keep train.precision=float32"),
                                            (None, "measure before")])
def test_vaekit_info_says_what_the_machine_offers(capsys, monkeypatch, native, advice):
    import vaekit.precision
    from vaekit.cli import main

    monkeypatch.setattr(vaekit.precision, "cpu_has_native_bfloat16", lambda: native)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"torch {torch.__version__}" in out and "logical cores" in out and advice in out
    assert ("GPU cuda:0" in out) == CUDA and ("train.device=auto means cpu" in out) == (not CUDA)


@pytest.mark.skipif(CUDA, reason="this machine has a GPU")
def test_a_run_trained_on_a_gpu_is_scored_on_the_cpu_where_there_is_none(tmp_path, tiny_everywhere, capsys):
    """A run directory copied from a GPU machine: `vaekit eval` scores it here (with a note), unless a GPU is
    asked for by name."""
    train(load_recipe(None, TINY + ["train.epochs=1"]), tmp_path / "run", data=tiny_everywhere, progress=False)
    state = checkpoint.load(tmp_path / "run")
    state["config"]["train"]["device"] = "cuda"  # as the GPU machine wrote it
    checkpoint.save_atomic(state, tmp_path / "run" / checkpoint.CHECKPOINT_NAME)
    report = evaluate_run(tmp_path / "run", k=5, write=False)
    assert report["device"] == "cpu" and "scoring it on the CPU" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"\(--device cpu\)"):
        evaluate_run(tmp_path / "run", k=5, write=False, device="cuda")
