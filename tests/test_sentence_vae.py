"""The sentence VAE: padding invariance, the objectives on sentences, decoding through the model."""

import pytest
import torch

from vaekit.data.text import pad
from vaekit.decoding import beam_search
from vaekit.models import SentenceBatch, SentenceVAE, SentenceVAEConfig
from vaekit.objectives import elbo, iwae_bound, log_likelihood

VOCAB = 30


def sentences(seed=0, n=7):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        length = int(torch.randint(1, 12, (1,), generator=g))
        out.append(torch.cat([torch.randint(4, VOCAB, (length,), generator=g), torch.tensor([3])]))
    return out


def batch_of(sents):
    b = pad(sents)
    return SentenceBatch.from_tokens(b.tokens, b.mask, bos=2)


@pytest.mark.parametrize("options", [dict(), dict(bidirectional=True, z_every_input=True),
                                     dict(tie_embeddings=True, z_to_initial_state=False, z_every_input=True),
                                     dict(inputless=True), dict(dropout=0.5),  # dropout: off in eval mode
                                     dict(weight_drop=0.5)])
def test_a_sentence_scores_the_same_in_a_padded_batch_as_alone(options):
    torch.manual_seed(0)
    model = SentenceVAE(SentenceVAEConfig(VOCAB, embedding=8, hidden=12, latent=3, **options)).eval()
    sents = sentences()
    batch = batch_of(sents)
    z = torch.randn(len(sents), 3)
    together = model.decode(z).log_prob(batch)
    q = model.encode(batch)
    for i, s in enumerate(sents):
        alone = batch_of([s])
        assert torch.allclose(model.decode(z[i:i + 1]).log_prob(alone), together[i:i + 1], atol=1e-5)
        q_alone = model.encode(alone)
        assert torch.allclose(q_alone.mean, q.mean[i:i + 1], atol=1e-6)
        assert torch.allclose(q_alone.stddev, q.stddev[i:i + 1], atol=1e-6)


def test_padding_tokens_change_no_loss():
    torch.manual_seed(0)
    model = SentenceVAE(SentenceVAEConfig(VOCAB, embedding=8, hidden=12, latent=3)).eval()
    batch = batch_of(sentences())
    z = torch.randn(len(batch), 3)
    base = model.decode(z).log_prob(batch)
    garbage = batch.tokens.masked_fill(~batch.mask, 17)
    scrambled = SentenceBatch(garbage, batch.mask, batch.lengths, batch.inputs.masked_fill(~batch.mask, 9))
    assert torch.allclose(model.decode(z).log_prob(scrambled), base)


def test_generic_objectives_run_on_sentences_and_order_correctly():
    torch.manual_seed(0)
    model = SentenceVAE(SentenceVAEConfig(VOCAB, embedding=8, hidden=12, latent=3)).eval()
    batch = batch_of(sentences())
    with torch.no_grad():
        e = torch.stack([elbo(model, batch).bound for _ in range(200)]).mean(0)
        i = torch.stack([iwae_bound(model, batch, 20).bound for _ in range(20)]).mean(0)
        ll = log_likelihood(model, batch, k=500, sample_chunk=100)
    assert e.shape == (7,) and torch.all(e < i + 0.05)  # ELBO <= IWAE_20 (both averaged over repeats)
    assert torch.all(i < ll + 0.3)  # IWAE_20 <= log p(x) estimated with K = 500, within its noise
    terms = elbo(model, batch)
    terms.loss.mean().backward()
    assert model.encoder.weight_ih_l0.grad is not None and model.to_posterior.weight.grad is not None


def test_language_model_baseline_uses_the_same_decoder_without_z():
    torch.manual_seed(0)
    model = SentenceVAE(SentenceVAEConfig(VOCAB, embedding=8, hidden=12, latent=3)).eval()
    batch = batch_of(sentences())
    lm = model.decode(None, batch_size=len(batch)).log_prob(batch)
    assert lm.shape == (7,) and torch.all(lm < 0)


def test_beam_search_through_the_model_matches_its_own_scores():
    torch.manual_seed(0)
    model = SentenceVAE(SentenceVAEConfig(VOCAB, embedding=8, hidden=12, latent=3)).eval()
    z = torch.randn(1, 3)
    with torch.no_grad():
        best = beam_search(model.step(z), None, bos=2, eos=3, beam=4, max_length=8, state_dim=1)[0]
        scored = model.decode(z).log_prob(batch_of([torch.tensor(best.tokens)]))
    if best.tokens[-1] == 3:
        assert best.log_prob == pytest.approx(scored.item(), abs=1e-4)


def test_dropout_acts_in_training_only():
    torch.manual_seed(0)
    model = SentenceVAE(SentenceVAEConfig(VOCAB, embedding=8, hidden=12, latent=3, dropout=0.5))
    batch = batch_of(sentences())
    z = torch.randn(len(batch), 3)
    model.train()
    assert not torch.allclose(model.decode(z).log_prob(batch), model.decode(z).log_prob(batch))
    model.eval()
    assert torch.equal(model.decode(z).log_prob(batch), model.decode(z).log_prob(batch))


def test_weight_drop_masks_the_recurrent_weights_once_per_pass_in_training_only():
    """DropConnect (Merity et al. 2018): one mask on weight_hh for every time step and sentence of a pass; the
    same pass as an nn.LSTM whose weight_hh is dropout(weight_hh) under the same random state; none in eval."""
    from vaekit.nets.dropout import dropout
    from vaekit.nets.recurrent import LSTM

    torch.manual_seed(0)
    lstm = LSTM(4, 6, batch_first=True, weight_drop=0.5)
    plain = torch.nn.LSTM(4, 6, batch_first=True)
    plain.load_state_dict(lstm.state_dict())
    x = torch.randn(3, 9, 4)
    lstm.train()
    torch.manual_seed(1)
    out, _ = lstm(x)
    torch.manual_seed(1)
    masked = dropout(plain.weight_hh_l0, 0.5)
    assert (masked == 0).any() and not (masked == 0).all()
    with torch.no_grad():
        plain.weight_hh_l0.copy_(masked)
    assert torch.allclose(out, plain(x)[0], atol=1e-6)
    out.sum().backward()  # the gradient reaches the parameter through the mask: zero where a weight was dropped
    grad = lstm.weight_hh_l0.grad
    assert (grad[masked == 0] == 0).all() and (grad[masked != 0] != 0).all()
    lstm.eval()
    plain.load_state_dict(lstm.state_dict())
    assert torch.equal(lstm(x)[0], plain(x)[0])
    assert lstm.weight_hh_l0 is lstm._flat_weights[lstm._flat_weights_names.index("weight_hh_l0")]  # restored


def test_weight_drop_out_of_range_is_refused_with_the_range():
    from vaekit.config import ConfigError, RunConfig, load_recipe

    with pytest.raises(ConfigError, match="weight_drop"):
        load_recipe(None, ["data.name=ptb", "model.arch=lstm", "model.weight_drop=1.0"])
    with pytest.raises(ConfigError, match="sentence models"):
        load_recipe(None, ["model.weight_drop=0.5"])
    assert RunConfig().model.weight_drop == 0


def test_bag_of_words_loss_is_the_words_log_likelihood_under_one_softmax_and_leaves_the_bound_alone():
    torch.manual_seed(0)
    model = SentenceVAE(SentenceVAEConfig(vocab_size=VOCAB, embedding=5, hidden=6, latent=3, bag_of_words=True))
    sents = sentences()
    batch = batch_of(sents)
    z = torch.randn(len(sents), 3)
    log_probs = torch.log_softmax(model.bow(z), -1)
    by_hand = torch.stack([-log_probs[i, s].sum() for i, s in enumerate(sents)])
    assert torch.allclose(model.bag_of_words_nll(z, batch), by_hand)
    torch.manual_seed(1)
    plain = elbo(model, batch)
    torch.manual_seed(1)
    with_bow = elbo(model, batch, auxiliary=lambda zz: model.bag_of_words_nll(zz, batch))
    assert torch.allclose(plain.bound, with_bow.bound) and (with_bow.loss > plain.loss).all()


@pytest.mark.parametrize("options", [dict(), dict(inputless=True), dict(tie_embeddings=True)])
def test_training_looks_up_encoder_and_decoder_words_at_once_with_the_same_loss_and_gradients(options):
    torch.manual_seed(0)
    model = SentenceVAE(SentenceVAEConfig(VOCAB, embedding=8, hidden=12, latent=3, **options))
    batch = batch_of(sentences())

    def loss_and_grads(training: bool):
        model.train(training)
        torch.manual_seed(1)
        b = batch_of(sentences())
        loss = elbo(model, b).loss.sum()
        grads = torch.autograd.grad(loss, list(model.parameters()))
        return loss, grads, b.decoder_embedding is not None

    shared_loss, shared_grads, shared = loss_and_grads(True)   # (no dropout: train and eval compute the same)
    apart_loss, apart_grads, kept = loss_and_grads(False)
    assert shared and not kept and batch.decoder_embedding is None
    assert torch.allclose(shared_loss, apart_loss)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(shared_grads, apart_grads))
