"""Sentence models through the one trainer, evaluation, generation and the CLI."""

import json
import math

import pytest
import torch

from vaekit import checkpoint
from vaekit.cli import main
from vaekit.config import load_recipe
from vaekit.distributed import Dist
from vaekit.errors import CheckpointError, ConfigError
from vaekit.evaluate import evaluate_text
from vaekit.feeds import TextFeed, text_batches
from vaekit.models import sentence_vae
from vaekit.report import evaluate_run
from vaekit.runs import load_data, load_model
from vaekit.train import train

WORDS = "the a cat dog sat ran on under mat log big small red".split()


@pytest.fixture
def corpus(tmp_path):
    """A text file of 300 short sentences from a tiny grammar (one sentence per line)."""
    g = torch.Generator().manual_seed(0)
    pick = lambda options: options[int(torch.randint(len(options), (1,), generator=g))]
    lines = []
    for _ in range(300):
        noun, verb, place = pick(["cat", "dog"]), pick(["sat", "ran"]), pick(["mat", "log"])
        adjective = [pick(["big", "small", "red"])] if torch.rand(1, generator=g) < 0.5 else []
        lines.append(" ".join(["the", *adjective, noun, verb, pick(["on", "under"]), "the", place]))
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def tiny(path, *extra):
    return load_recipe(None, [f"data.path={path}", "model.arch=lstm", "model.embedding=8", "model.hidden=12",
                              "model.latent=3", "train.batch_size=16", "train.epochs=2", "train.word_dropout=0.3",
                              "train.kl_schedule=linear", "train.kl_warmup=20", "eval.k=20", "eval.sample_chunk=7",
                              "eval.batch_size=32", *extra])


@pytest.mark.parametrize("bf16_lstm", [True, False], ids=["native", "avx2-fallback"])
def test_a_sentence_vae_learns_in_mixed_precision(tmp_path, corpus, monkeypatch, bf16_lstm):
    from vaekit.nets import recurrent
    if not bf16_lstm:  # as on CPUs without a bfloat16 LSTM primitive: the recurrence runs in float32
        monkeypatch.setattr(recurrent, "bfloat16_lstm_available", lambda: False)
    result = train(tiny(corpus, "train.precision=bfloat16", "model.tie_embeddings=true", "model.embedding=12"),
                   tmp_path / "run", progress=False)
    lines = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert result.finished and lines[-1]["train_bound"] > lines[0]["train_bound"]
    assert math.isfinite(lines[-1]["val_elbo"])


def test_a_sentence_vae_trains_and_resumes_exactly_with_word_dropout(tmp_path, corpus):
    config = tiny(corpus)
    whole = train(config, tmp_path / "whole", progress=False)
    steps = whole.step
    assert steps == 2 * math.ceil(len(load_data(config.data).train) / 16)
    half = load_recipe(None, [f"train.max_steps={steps // 2 + 3}"], base=config.to_dict())  # stops mid-epoch 2
    train(half, tmp_path / "split", progress=False)
    resumed = train(config, tmp_path / "split", resume=True, progress=False)
    for (name, a), (_, b) in zip(whole.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    lines = [json.loads(l) for l in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["train_bound"] > lines[0]["train_bound"]  # it learns
    assert {"tokens_per_s", "train_nll_per_token", "val_elbo", "val_kl"} <= set(lines[-1])
    assert checkpoint.load(tmp_path / "whole")["vocab"][:4] == ["<pad>", "<unk>", "<s>", "</s>"]


def test_word_dropout_touches_training_batches_only(corpus):
    config = tiny(corpus, "train.word_dropout=1.0")
    data = load_data(config.data)
    feed = TextFeed(config, data, Dist())
    plan = feed.plan(torch.Generator().manual_seed(0))
    batch, size = feed.batch(plan, 0, torch.Generator().manual_seed(1))
    assert size == len(batch) == 16
    real = batch.mask.clone()
    real[:, 0] = False
    assert (batch.inputs[real] == data.vocab.unk).all() and (batch.inputs[:, 0] == data.vocab.bos).all()
    assert (batch.inputs[~batch.mask] == 0).all()  # padding stays padding
    for val in feed.validation_batches():  # evaluation sees the true words
        expected = torch.cat([torch.full_like(val.tokens[:, :1], data.vocab.bos), val.tokens[:, :-1]], 1)
        assert torch.equal(val.inputs, expected.masked_fill(~val.mask, 0))


def test_the_plan_covers_every_sentence_once_per_epoch(corpus):
    config = tiny(corpus)
    data = load_data(config.data)
    plan = TextFeed(config, data, Dist()).plan(torch.Generator().manual_seed(0))
    seen = plan[plan >= 0].sort().values
    assert torch.equal(seen, torch.arange(len(data.train)))


def test_scoring_many_codes_in_groups_equals_one_code_at_a_time(monkeypatch, corpus):
    config = tiny(corpus)
    data = load_data(config.data)
    from vaekit.runs import build_sentence_model

    torch.manual_seed(0)
    model = build_sentence_model(config.model, data.vocab).eval()
    batch = text_batches(data, "test", 8)[0]
    z = torch.randn(5, len(batch), 3)
    monkeypatch.setattr(sentence_vae, "ROWS_PER_CALL", 2 * len(batch))  # groups of 2, 2 and 1 codes
    grouped = model.decode(z).log_prob(batch)
    single = torch.stack([model.decode(zi).log_prob(batch) for zi in z])
    assert grouped.shape == (5, len(batch))
    assert torch.allclose(grouped, single, atol=1e-5)


def test_text_evaluation_is_consistent_and_the_lm_is_scored_exactly(tmp_path, corpus):
    run = tmp_path / "vae"
    train(tiny(corpus), run, progress=False)
    report = evaluate_run(run, k=50, split="test")
    assert report["ppl"] == pytest.approx(math.exp(report["nll"] * report["n"] / report["tokens"]), rel=1e-6)
    assert report["nll"] <= -report["elbo"] + 0.5  # IS with K = 50 is at least as tight as the ELBO (noise)
    assert 0 <= report["active_units"] <= 3 and 0 <= report["reconstruction_accuracy"] <= 1
    lm = tmp_path / "lm"
    train(tiny(corpus, "model.arch=lstm-lm", "train.objective=mle", "train.kl_schedule=none"), lm, progress=False)
    _, model, _ = load_model(lm)
    data = load_data(tiny(corpus).data)
    batches = text_batches(data, "test", 32)
    exact = -torch.cat([model.log_prob(b) for b in batches]).double().mean().item()
    result = evaluate_text(model, batches)
    assert result["k"] is None and result["nll"] == pytest.approx(exact, rel=1e-6)  # float32 rounding
    assert "kl" not in result


def test_sentence_configs_that_do_not_fit_are_refused_with_the_fix(corpus):
    with pytest.raises(ConfigError, match="does not fit the data"):
        load_recipe(None, ["model.arch=lstm"])  # MNIST with an LSTM
    with pytest.raises(ConfigError, match="train with train.objective = 'mle'"):
        load_recipe(None, [f"data.path={corpus}", "model.arch=lstm-lm"])
    with pytest.raises(ConfigError, match="word_dropout applies to sentence models"):
        load_recipe(None, ["train.word_dropout=0.2"])
    with pytest.raises(ConfigError, match="probability"):
        tiny(corpus, "train.word_dropout=1.5")


def test_cli_generates_from_a_sentence_run(tmp_path, corpus, capsys):
    run = tmp_path / "run"
    train(tiny(corpus), run, progress=False)
    assert main(["sample", str(run), "--n", "3", "--method", "beam"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert main(["reconstruct", str(run), "the dog sat on the mat", "--n", "4"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4
    assert main(["interpolate", str(run), "the cat sat on the mat", "the big dog ran under the log",
                 "--steps", "4"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4
    assert main(["impute", str(run), "the big", "--icm", "2"]) == 0
    assert capsys.readouterr().out.startswith("the big")
    assert main(["impute", str(run), "the big", "--icm", "1", "--length-penalty", "1"]) == 0
    assert capsys.readouterr().out.startswith("the big")
    assert main(["eval", str(run), "--k", "10", "--limit", "20"]) == 0
    assert "perplexity" in capsys.readouterr().out
    assert main(["impute", str(run), "  "]) == 2
    assert "at least one word" in capsys.readouterr().err
    from vaekit.export import load_exported

    assert main(["export", str(run), "--out", str(tmp_path / "exported")]) == 0
    _, exported = load_exported(tmp_path / "exported")
    _, original, _ = load_model(run)
    for (name, a), (_, b) in zip(original.state_dict().items(), exported.state_dict().items()):
        assert torch.equal(a, b), name


def test_generation_verbs_refuse_an_image_run(tmp_path, tiny_images, capsys):
    from vaekit.config import load_recipe as recipe

    run = tmp_path / "img"
    train(recipe(None, ["model.hidden=16", "model.latent=2", "train.epochs=1", "train.batch_size=50"]), run,
          data=tiny_images, progress=False)
    assert main(["interpolate", str(run), "a b", "c d"]) == 2
    assert "works on sentence models" in capsys.readouterr().err


@pytest.mark.slow
def test_a_sentence_vae_trains_on_a_slice_of_the_penn_treebank(tmp_path):
    config = load_recipe("recipes/ptb_vae.toml", ["data.limit=256", "data.eval_limit=64", "model.embedding=16",
                                                  "model.hidden=16", "train.epochs=1", "eval.k=5"])
    result = train(config, tmp_path / "ptb", progress=False)
    assert result.finished and result.step == 8
    report = evaluate_run(tmp_path / "ptb", split="test", limit=32)
    assert report["n"] == 32 and math.isfinite(report["nll"]) and report["ppl"] > 1


def test_imputation_split_and_adversarial_error_have_known_answers():
    from vaekit.imputation import adversarial_error, split_ending

    assert split_ending("a b c d e f g h i j".split()) == ("a b c d e f g h".split(), ["i", "j"])
    assert split_ending(["a", "b"]) == (["a"], ["b"])
    g = torch.Generator().manual_seed(0)
    sents = [[WORDS[int(i)] for i in torch.randint(len(WORDS), (6,), generator=g)] for _ in range(60)]
    assert adversarial_error(sents, [list(s) for s in sents]) == 0.5  # identical pairs: a coin flip at best
    other = [[w.upper() for w in s] for s in sents]                  # disjoint words: trivially told apart
    assert adversarial_error(sents, other) == 0.0
    with pytest.raises(ValueError, match="same number"):
        adversarial_error(sents, other[:-1])
    with pytest.raises(ValueError, match="unigram or lstm"):
        adversarial_error(sents, other, classifier="bigram")


def test_the_lstm_adversary_sees_word_order_that_the_unigram_one_cannot():
    """True sentences put a word of group A, then B, then C; the 'generated' ones hold the same words in the
    order C, B, A. Their bags of words are identical, so the unigram adversary is at chance; the LSTM is not."""
    from vaekit.imputation import adversarial_error

    g = torch.Generator().manual_seed(0)
    groups = [[f"{name}{i}" for i in range(8)] for name in "abc"]
    true = [[group[int(torch.randint(8, (1,), generator=g))] for group in groups] for _ in range(200)]
    reordered = [list(reversed(s)) for s in true]
    assert abs(adversarial_error(true, reordered, classifier="unigram") - 0.5) < 0.05
    assert adversarial_error(true, reordered, classifier="lstm") < 0.05
    assert adversarial_error(true, [list(s) for s in true], classifier="lstm") == 0.5  # identical pairs: chance


def test_imputed_endings_keep_the_beginning(tmp_path, corpus):
    from vaekit.data.text import Vocab
    from vaekit.imputation import impute_endings

    run = tmp_path / "run"
    train(tiny(corpus), run, progress=False)
    _, model, state = load_model(run)
    sentences = [["the", "big", "dog", "sat", "on", "the", "mat"], ["the", "cat"]]
    out = impute_endings(model, Vocab(state["vocab"]), sentences, icm=1, beam=3)
    assert out[0][:5] == sentences[0][:5] and out[1][:1] == ["the"]


def test_bag_of_words_trains_through_the_trainer_and_is_refused_elsewhere(tmp_path, corpus):
    result = train(tiny(corpus, "model.bag_of_words=true", "train.epochs=1"), tmp_path / "bow", progress=False)
    assert result.finished and result.model.bow is not None
    assert any(k.startswith("bow.") for k in checkpoint.load(tmp_path / "bow")["model"])
    with pytest.raises(ConfigError, match="bag_of_words"):
        load_recipe(None, ["model.bag_of_words=true"])  # an image VAE


def test_a_stopped_text_evaluation_resumes_to_exactly_the_uninterrupted_figures(tmp_path, corpus, monkeypatch):
    """PTB scoring at K = 500 outlives a session: stopped after its third batch, the same call continues from the
    partial file and gives every figure of the uninterrupted run, bit for bit, scoring no batch twice."""
    from vaekit import evaluate as evaluate_module
    run = tmp_path / "vae"
    train(tiny(corpus), run, progress=False)
    _, model, _ = load_model(run)
    batches = text_batches(load_data(tiny(corpus).data), "test", 3)
    assert len(batches) >= 5
    whole = evaluate_text(model, batches, k=20, sample_chunk=7, seed=3)
    partial = tmp_path / "partial.pt"
    scored, real = [], evaluate_module.log_likelihood

    def stop_at_the_fourth(model, batch, **kw):
        scored.append(len(scored))
        if len(scored) == 4:
            raise KeyboardInterrupt
        return real(model, batch, **kw)

    monkeypatch.setattr(evaluate_module, "log_likelihood", stop_at_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        evaluate_text(model, batches, k=20, sample_chunk=7, seed=3, partial=partial, save_every_s=0)
    assert torch.load(partial, weights_only=True)["next_batch"] == 3
    scored.clear()
    monkeypatch.setattr(evaluate_module, "log_likelihood", lambda *a, **kw: scored.append(1) or real(*a, **kw))
    torch.manual_seed(123)  # the caller's random state does not matter: the partial file carries its own
    resumed = evaluate_text(model, batches, k=20, sample_chunk=7, seed=3, partial=partial, save_every_s=0)
    assert len(scored) == len(batches) - 3  # only the batches not yet scored
    monkeypatch.setattr(evaluate_module, "log_likelihood", real)
    assert not partial.exists()  # finished: the partial file is removed
    for key in whole:
        if key != "seconds":
            assert resumed[key] == whole[key], key
    # a partial file of another K is not continued; a damaged one is ignored: both start over, same figures
    evaluate_text(model, batches[:2], k=20, sample_chunk=7, seed=3, partial=partial, save_every_s=0)
    partial.write_bytes(b"damaged")
    again = evaluate_text(model, batches, k=20, sample_chunk=7, seed=3, partial=partial)
    assert again["nll_per_example"] == whole["nll_per_example"]


def test_a_vae_warm_starts_from_an_autoencoders_encoder_with_a_fresh_decoder(tmp_path, corpus):
    """Li et al. (2019): pretrain as an autoencoder (beta = 0), keep its encoder, start the decoder afresh."""
    from vaekit.families import family_of
    ae = tmp_path / "ae"
    train(tiny(corpus, "train.beta=0", "train.kl_schedule=none", "train.word_dropout=0"), ae, progress=False)
    fresh_decoder = ("decoder", "to_state", "output")
    config = tiny(corpus, f"train.init_from={ae}", "train.init_reset=decoder,to_state,output")
    assert config.train.init_reset == fresh_decoder
    data = load_data(config.data)
    family = family_of(config)
    spec = family.spec(config, data)
    torch.manual_seed(config.train.seed)
    model = family.build(config, spec)  # as the trainer builds it: the run's own fresh initialisation
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    kept = checkpoint.warm_start(model, ae, config.train.init_reset, spec)
    pretrained = checkpoint.load(ae)["model"]
    for key, value in model.state_dict().items():
        expected = fresh[key] if key.split(".")[0] in fresh_decoder else pretrained[key]
        assert torch.equal(value, expected), key
    assert any(k.startswith("encoder.") for k in kept) and not any(k.startswith("decoder.") for k in kept)
    assert not torch.equal(fresh["encoder.weight_ih_l0"], pretrained["encoder.weight_ih_l0"])  # a real copy
    result = train(config, tmp_path / "vae", progress=False)  # and the trainer does the same, then learns
    assert result.finished and json.loads((tmp_path / "vae" / "config.json").read_text())["train"]["init_from"]


def test_a_warm_start_from_another_architecture_or_an_unknown_module_is_refused(tmp_path, corpus):
    ae = tmp_path / "ae"
    train(tiny(corpus, "train.beta=0", "train.kl_schedule=none"), ae, progress=False)
    with pytest.raises(CheckpointError, match="another architecture.*same \\[model\\] settings"):
        train(tiny(corpus, f"train.init_from={ae}", "model.hidden=10"), tmp_path / "a", progress=False)
    with pytest.raises(CheckpointError, match="init_reset names decodr.*submodules are .*decoder"):
        train(tiny(corpus, f"train.init_from={ae}", "train.init_reset=decodr"), tmp_path / "b", progress=False)
