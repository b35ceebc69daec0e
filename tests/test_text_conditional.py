"""Label-conditional sentence models (a sentence CVAE and the conditional LM), and the genre classifier."""

import pytest
import torch
from torch.distributions import kl_divergence

from vaekit.cli import main
from vaekit.conditional import ConditionalBatch, conditional_elbo, conditional_log_likelihood, evaluate_conditional
from vaekit.config import load_recipe
from vaekit.data.text import load_text_file
from vaekit.errors import ConfigError, DataError, VaekitError
from vaekit.feeds import sentence_batch, sentence_batches
from vaekit.generate import sample_sentences
from vaekit.models.sentence_vae import SentenceVAE, SentenceVAEConfig
from vaekit.runs import load_model, run_vocab
from vaekit.text_classifier import BagOfNgrams, balanced_accuracy, generated_label_accuracy, train_classifier
from vaekit.train import train

from test_text_training import corpus  # noqa: F401  (the fixture)

NAMES = ("cat", "dog")


def labelled(path):
    """The corpus with a label per sentence: its noun (so the label is recoverable from the words)."""
    data = load_text_file(path)
    word = {i: w for i, w in enumerate(data.vocab.itos)}
    label = lambda s: 0 if "cat" in [word[int(t)] for t in s] else 1
    data.labels = {split: [label(s) for s in data.split(split)] for split in ("train", "val", "test")}
    data.label_names = NAMES
    return data


def tiny(path, *extra):
    return load_recipe(None, [f"data.path={path}", "model.arch=lstm", "model.embedding=8", "model.hidden=12",
                              "model.latent=3", "model.condition_embedding=4", "train.batch_size=16",
                              "train.epochs=2", "train.word_dropout=0.2", "train.kl_schedule=linear",
                              "train.kl_warmup=20", "eval.k=20", "eval.batch_size=32", *extra])


def small_model(**kw):
    torch.manual_seed(0)
    return SentenceVAE(SentenceVAEConfig(vocab_size=9, embedding=5, hidden=6, latent=3, conditions=3,
                                         condition_embedding=2, z_every_input=True, **kw))


def some_sentences():
    ids = [torch.tensor([4, 5, 6, 3]), torch.tensor([7, 3]), torch.tensor([8, 8, 5, 4, 6, 3])]
    return ConditionalBatch(sentence_batch(ids, bos=2), torch.tensor([0, 2, 1]))


def test_the_prior_network_gives_each_label_its_own_prior_and_the_kl_is_between_the_two():
    model, batch = small_model(), some_sentences()
    prior = model.prior(batch.c)
    assert prior.batch_shape == (3,) and prior.event_shape == (3,)
    assert not torch.allclose(prior.base_dist.loc[0], prior.base_dist.loc[1])
    terms = conditional_elbo(model, batch)
    q = model.encode(batch.x, batch.c)
    z = q.sample((20000,))
    monte_carlo = (q.log_prob(z) - prior.log_prob(z)).mean(0)
    exact = kl_divergence(q, prior)
    assert torch.allclose(terms.kl, exact)
    assert torch.allclose(monte_carlo, exact, atol=4 * (q.log_prob(z) - prior.log_prob(z)).std(0).max().item() / 20000 ** 0.5)
    # without a prior network p(z|c) is N(0, I) for every label
    plain = small_model(prior_network=False).prior(batch.c)
    assert torch.equal(plain.base_dist.loc, torch.zeros(3))


def test_teacher_forced_scores_equal_the_step_decoder_that_generation_uses():
    """log p(x|z,c) by one teacher-forced pass equals the sum of the one-step decoder's log-probabilities fed
    the same code [z; e_c] (the path of sampling and beam search), for the CVAE and the conditional LM."""
    batch = some_sentences()
    for model in (small_model(), small_model(language_model=True)):
        model.eval()
        z = torch.randn(3, 3) if model.has_latent else None
        scores = model.decode(z, batch.c).log_prob(batch.x)
        for row in range(3):
            code = model.code(None if z is None else z[row:row + 1], batch.c[row:row + 1])
            step, state, total = model.step(code), None, 0.0
            tokens = batch.x.tokens[row, : batch.x.lengths[row]]
            inputs = [2] + tokens[:-1].tolist()
            for token_in, token_out in zip(inputs, tokens.tolist()):
                log_probs, state = step(torch.tensor([token_in]), state)
                total += log_probs[0, token_out].item()
            assert scores[row].item() == pytest.approx(total, abs=1e-4)
        other = model.decode(z, (batch.c + 1) % 3).log_prob(batch.x)
        assert not torch.allclose(scores, other)  # the label matters


def test_the_conditional_lm_is_scored_exactly_and_the_cvae_by_importance_sampling():
    batch = some_sentences()
    lm = small_model(language_model=True)
    # the scorer runs without autograd and the reference with it: the LSTM kernels may round differently
    torch.testing.assert_close(conditional_log_likelihood(lm, batch), lm.predict(batch.c).log_prob(batch.x),
                               rtol=0, atol=1e-5)
    cvae = small_model()
    torch.manual_seed(1)
    estimate = conditional_log_likelihood(cvae, batch, samples=2000)
    assert (estimate > conditional_elbo(cvae, batch).bound).all()  # a tighter bound than one-sample ELBOs on average
    result = evaluate_conditional(cvae, [batch], samples=50)
    assert result["tokens"] == 12 and result["ppl"] > 1 and result["k"] == 50


def test_a_conditional_lm_learns_its_labels_and_generates_for_each(tmp_path, corpus):  # noqa: F811
    data = labelled(corpus)
    config = tiny(corpus, "model.arch=lstm-lm", "train.objective=mle", "train.kl_schedule=none",
                  "train.word_dropout=0", "train.epochs=20", "train.lr=0.01")
    train(config, tmp_path / "clm", data=data, progress=False)
    _, model, state = load_model(tmp_path / "clm")
    assert state["label_names"] == list(NAMES)
    vocab = run_vocab(state)
    for label, noun in enumerate(NAMES):
        generated = sample_sentences(model, vocab, n=20, label=label, seed=label)
        assert sum(noun in g.words for g in generated) >= 18, [" ".join(g.words) for g in generated]
    with pytest.raises(VaekitError, match="name one"):
        sample_sentences(model, vocab, n=1)
    # a classifier of the real sentences recognises the label of the generated ones
    words = lambda split: [s[:-1].tolist() for s in data.split(split)]
    classifier, real = train_classifier(words("train"), data.labels["train"], words("val"), data.labels["val"],
                                        len(data.vocab), 2, epochs=60)
    assert real == 1.0  # the noun gives the label away
    accuracy, sentences = generated_label_accuracy(model, vocab, classifier, per_label=20)
    assert accuracy >= 0.9 and [len(s) for s in sentences] == [20, 20]


def test_a_sentence_cvae_trains_resumes_exactly_and_samples_from_the_cli(tmp_path, corpus, capsys):  # noqa: F811
    data = labelled(corpus)
    config = tiny(corpus, "model.bag_of_words=true")
    whole = train(config, tmp_path / "whole", data=data, progress=False)
    half = load_recipe(None, [f"train.max_steps={whole.step // 2 + 3}"], base=config.to_dict())
    train(half, tmp_path / "split", data=data, progress=False)
    resumed = train(config, tmp_path / "split", resume=True, data=data, progress=False)
    for (name, a), (_, b) in zip(whole.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    from vaekit.export import export_run, load_exported

    export_run(tmp_path / "whole", tmp_path / "exported")
    _, loaded = load_exported(tmp_path / "exported")
    probe = ConditionalBatch(sentence_batch(data.test[:4], data.vocab.bos), torch.tensor(data.labels["test"][:4]))
    whole.model.eval()
    assert torch.equal(loaded.decode(torch.zeros(4, 3), probe.c).log_prob(probe.x),
                       whole.model.decode(torch.zeros(4, 3), probe.c).log_prob(probe.x))
    batches = sentence_batches(data.test, 32, data.vocab.bos, data.labels["test"])
    assert isinstance(batches[0], ConditionalBatch) and len(batches[0].c) == len(batches[0].x)
    result = evaluate_conditional(whole.model, batches, samples=10)
    assert result["n"] == len(data.test) and result["kl"] > 0
    assert main(["sample", str(tmp_path / "whole"), "--n", "3", "--label", "dog"]) in (0, None)
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    assert main(["sample", str(tmp_path / "whole"), "--label", "news"]) not in (0, None)
    assert "this run knows the labels cat, dog" in capsys.readouterr().err
    run = str(tmp_path / "whole")
    for argv, lines in ((["reconstruct", run, "the cat sat on the mat", "--n", "2"], 2),
                        (["interpolate", run, "the cat sat on the mat", "the dog ran under the log", "--steps", "3"], 3),
                        (["impute", run, "the dog ran", "--icm", "1"], 1)):
        assert main(argv + ["--label", "dog"]) in (0, None), argv
        out = capsys.readouterr().out.strip().splitlines()
        assert len(out) == lines, out
        assert main(argv) not in (0, None)  # the label is required
        assert "name one" in capsys.readouterr().err


def test_conditioning_on_labels_that_the_data_lacks_is_refused(tmp_path, corpus):  # noqa: F811
    with pytest.raises(DataError, match="has no labels"):
        train(tiny(corpus), tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match="free bits"):
        train(tiny(corpus, "train.free_bits=0.5"), tmp_path / "run2", data=labelled(corpus), progress=False)


def test_the_classifier_separates_separable_labels_and_balanced_accuracy_has_known_answers():
    g = torch.Generator().manual_seed(0)
    make = lambda label, n: [(torch.randint(0, 5, (6,), generator=g) + 5 * label).tolist() for _ in range(n)]
    train_x = make(0, 200) + make(1, 40) + make(2, 100)
    train_y = [0] * 200 + [1] * 40 + [2] * 100
    val_x, val_y = make(0, 20) + make(1, 20) + make(2, 20), [0] * 20 + [1] * 20 + [2] * 20
    model, accuracy = train_classifier(train_x, train_y, val_x, val_y, vocab_size=15, classes=3, epochs=10)
    assert isinstance(model, BagOfNgrams) and accuracy == 1.0
    labels = torch.tensor([0, 0, 0, 0, 1])
    assert balanced_accuracy(torch.tensor([0, 0, 0, 0, 0]), labels, 2) == 0.5  # majority guessing: chance
    assert balanced_accuracy(torch.tensor([0, 0, 0, 1, 1]), labels, 2) == pytest.approx((0.75 + 1) / 2)
