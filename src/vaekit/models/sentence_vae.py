"""The sentence VAE of Bowman et al. (2016), "Generating sentences from a continuous space", Sec. 3.

    prior    p(z)   = N(0, I)
    encoder  q(z|x) = N(mu, diag sigma^2) from the final state of an LSTM over x (uni- or bidirectional)
    decoder  p(x|z) = prod_t p(x_t | x_<t, z): an LSTM whose initial state is a function of z and/or
                      whose every input is concatenated with z; ``z = None`` gives the plain LSTM
                      language model with the same decoder (the baseline a sentence VAE must beat).

Conditioned on a label ``c`` (e.g. a Brown corpus genre; ``conditions > 0``), it is the CVAE of Sohn et al.
(2015) for sentences, as Zhao et al. (2017) use for dialogue acts:

    prior    p(z|c)   = N(mu(e_c), diag sigma^2(e_c)) from an MLP on the label embedding e_c (``prior_network``;
                        N(0, I) otherwise)
    encoder  q(z|x,c) = the LSTM's final state concatenated with e_c
    decoder  p(x|z,c) = the decoder above driven by the code ``[z; e_c]`` instead of ``z``

and the language model becomes the label-conditional LM ``p(x|c)`` (code ``e_c``). The conditional
objectives (:mod:`vaekit.conditional`) use ``encode(x, c)``, ``prior(c)``, ``decode(z, c)`` and, for the
language model, ``predict(c)``.

Sentences arrive as :class:`SentenceBatch` (token ids ending in ``</s>``, a padding mask, and the
decoder inputs). ``decode(z)`` returns an :class:`AutoregressiveSequence` distribution whose
``log_prob(batch)`` runs the decoder with teacher forcing and sums log-probabilities over real
tokens only, so padding changes no loss. Word dropout (Bowman et al., Sec. 3.2) is training policy:
the trainer replaces ``batch.inputs`` (see :func:`vaekit.text_policy.word_dropout`); the model never
drops anything itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, Independent, Normal
from torch.nn.utils.rnn import pack_padded_sequence

from ..nets.dropout import Dropout
from ..nets.heads import diagonal_gaussian, full_precision
from ..nets.recurrent import LSTM
from ..nets.softmax_output import aligned_logits, linear_token_nll


@dataclass
class SentenceBatch:
    """``tokens`` ``(B, T)`` (ending in ``</s>``, padded with 0), ``mask`` ``(B, T)``, ``lengths`` ``(B,)``,
    and ``inputs`` ``(B, T)``: the decoder's inputs, ``<s>`` followed by ``tokens[:, :-1]`` (possibly with
    word dropout applied by the trainer)."""

    tokens: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    inputs: torch.Tensor
    # (inputs, their embeddings (B, T, E)), left by SentenceVAE.encode while training (see _embed_for_encoder)
    decoder_embedding: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, init=False, repr=False,
                                                                        compare=False)

    @classmethod
    def from_tokens(cls, tokens: torch.Tensor, mask: torch.Tensor, bos: int) -> "SentenceBatch":
        inputs = torch.cat([torch.full_like(tokens[:, :1], bos), tokens[:, :-1]], dim=1).masked_fill(~mask, 0)
        return cls(tokens, mask, mask.sum(1), inputs)

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def repeat(self, times: int) -> "SentenceBatch":
        """The batch ``times`` times over, ``(times * B, T)`` (copy ``s`` of sentence ``b`` at row ``s * B + b``)."""
        if times == 1:
            return self
        return SentenceBatch(*(t.repeat(times, *([1] * (t.dim() - 1)))
                               for t in (self.tokens, self.mask, self.lengths, self.inputs)))

    def with_inputs(self, inputs: torch.Tensor) -> "SentenceBatch":
        """The same sentences with other decoder inputs (e.g. after word dropout)."""
        return SentenceBatch(self.tokens, self.mask, self.lengths, inputs)


@dataclass(frozen=True)
class SentenceVAEConfig:
    vocab_size: int
    embedding: int = 353          # Bowman et al. 2016, Sec. 4: 353-dimensional embeddings
    hidden: int = 191             # ... 191 LSTM units (their hyper-parameter search)
    latent: int = 13              # ... 13-dimensional z
    bidirectional: bool = False
    z_to_initial_state: bool = True   # h_0, c_0 = tanh(W z)
    z_every_input: bool = False       # concatenate z to every decoder input
    inputless: bool = False           # the decoder sees only <s> / <unk> (the paper's "inputless" variant)
    tie_embeddings: bool = False      # output layer shares the embedding matrix (needs a projection H -> E)
    language_model: bool = False      # no encoder and no z: the LSTM language model with the same decoder
    dropout: float = 0.0              # on embeddings and LSTM outputs, training only (Zaremba et al. 2014)
    weight_drop: float = 0.0          # DropConnect on the decoder LSTM's recurrent weights (Merity et al. 2018)
    bag_of_words: bool = False        # an auxiliary head predicting the sentence's words from z (Zhao et al. 2017)
    conditions: int = 0               # labels c the model is conditioned on (0: unconditional)
    condition_embedding: int = 16     # size of the label embedding e_c
    prior_network: bool = True        # p(z|c) learned from e_c (False: N(0, I) for every c)
    unk_id: int = 1
    bos_id: int = 2
    eos_id: int = 3


class AutoregressiveSequence(Distribution):
    """``p(x|z) = prod_t Categorical(x_t; softmax(W h_t))`` over whole sentences: batch shape ``(B,)``.

    ``log_prob(batch)`` teacher-forces ``batch.inputs`` and sums over ``batch.mask``. ``z`` is ``(B, Z)``,
    ``(S, B, Z)`` (S codes per sentence, e.g. importance samples; log_prob is then ``(S, B)``) or None
    (the language model).
    """

    arg_constraints = {}
    has_rsample = False

    def __init__(self, model: "SentenceVAE", z: torch.Tensor | None, batch_shape: torch.Size):
        self.model, self.z = model, z
        super().__init__(batch_shape=batch_shape, validate_args=False)

    def token_log_probs(self, batch: SentenceBatch) -> torch.Tensor:
        """``log p(x_t | x_<t, z)`` for every position, ``(B, T)`` (zero on padding)."""
        return self.model.token_log_probs(self.z, batch)

    def log_prob(self, batch: SentenceBatch) -> torch.Tensor:
        if self.z is not None and self.z.dim() == 3:  # (S, B, Z): several z per sentence, in memory-bounded groups
            samples, size = self.z.shape[0], len(batch)
            group = max(1, min(samples, ROWS_PER_CALL // max(1, size)))
            out = []
            for start in range(0, samples, group):
                z = self.z[start:start + group]
                g = z.shape[0]
                out.append(self.model.token_log_probs(z.reshape(g * size, -1), batch.repeat(g)).sum(1).view(g, size))
            return torch.cat(out)
        return self.token_log_probs(batch).sum(1)


ROWS_PER_CALL = 1024  # sentences decoded at once when scoring many z per sentence (bounds memory)


class SentenceVAE(nn.Module):
    """Bowman et al.'s (2016) sentence VAE, or (``config.language_model``) the same decoder as an LSTM language model:
    :meth:`prior` ``N(0, I)`` (or ``p(z|c)``), :meth:`encode` ``q(z|x)`` from the encoder LSTM's final state(s), and
    :meth:`decode` an :class:`AutoregressiveSequence` ``p(x|z)`` over whole sentences of a :class:`SentenceBatch`."""

    def __init__(self, config: SentenceVAEConfig):
        super().__init__()
        c = self.config = config
        self.latent_dim = c.latent
        self.embed = nn.Embedding(c.vocab_size, c.embedding, padding_idx=0)
        directions = 2 if c.bidirectional else 1
        label_dim = c.condition_embedding if c.conditions else 0
        self.label_embed = nn.Embedding(c.conditions, label_dim) if c.conditions else None
        self.prior_net = (nn.Sequential(nn.Linear(label_dim, c.hidden), nn.Tanh(), nn.Linear(c.hidden, 2 * c.latent))
                          if c.conditions and c.prior_network and not c.language_model else None)
        code_dim = label_dim + (0 if c.language_model else c.latent)  # what drives the decoder: [z; e_c]
        self.code_dim = code_dim
        if c.language_model:
            self.encoder = self.to_posterior = None
        else:
            self.encoder = LSTM(c.embedding, c.hidden, batch_first=True, bidirectional=c.bidirectional)
            self.to_posterior = nn.Linear(directions * c.hidden + label_dim, 2 * c.latent)
        self.to_state = nn.Linear(code_dim, 2 * c.hidden) if c.z_to_initial_state and code_dim else None
        decoder_in = c.embedding + (code_dim if c.z_every_input else 0)
        self.decoder = LSTM(decoder_in, c.hidden, batch_first=True, weight_drop=c.weight_drop)
        if c.tie_embeddings:
            self.project = nn.Linear(c.hidden, c.embedding)
            self.output_bias = nn.Parameter(torch.zeros(c.vocab_size))
        else:
            self.output = nn.Linear(c.hidden, c.vocab_size)
        self.drop = Dropout(c.dropout)
        self.bow = (nn.Sequential(nn.Linear(c.latent, c.hidden), nn.Tanh(), nn.Linear(c.hidden, c.vocab_size))
                    if c.bag_of_words and not c.language_model else None)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    @property
    def has_latent(self) -> bool:
        """False for the language model (no z, no q)."""
        return self.encoder is not None

    def code(self, z: torch.Tensor | None, c: torch.Tensor | None = None) -> torch.Tensor | None:
        """The decoder's conditioning vector: ``z`` ``(..., Z)``, or ``[z; e_c]`` ``(..., Z + E)`` for a
        conditional model (``c`` ``(B,)`` label ids, ``z`` ``(B, Z)`` or ``(S, B, Z)``); ``e_c`` alone for the
        conditional language model (``z = None``)."""
        if self.label_embed is None:
            if c is not None:
                raise ValueError("this sentence model is not conditional (model.condition_embedding = 0): give no c")
            return z
        if c is None:
            raise ValueError("a conditional sentence model needs the labels c of its sentences")
        e = self.label_embed(c)
        return e if z is None else torch.cat([z, e.expand(*z.shape[:-1], -1)], dim=-1)

    # the three distributions -----------------------------------------------------------------
    def prior(self, c: torch.Tensor | None = None) -> Distribution:
        """``N(0, I)``, or ``p(z|c)`` from the prior network (batch shape ``(B,)``) for labels ``c``."""
        if self.prior_net is not None and c is not None:
            return diagonal_gaussian(self.prior_net(self.label_embed(c)))
        zeros = self._anchor.new_zeros(self.latent_dim)
        return Independent(Normal(zeros, torch.ones_like(zeros), validate_args=False), 1, validate_args=False)

    def encode(self, batch: SentenceBatch, c: torch.Tensor | None = None) -> Distribution:
        """``q(z|x)`` (or ``q(z|x,c)``) from the LSTM's final state(s) over the real tokens of each sentence.

        A unidirectional encoder runs over the padded batch and reads its output at each sentence's last
        token (exact: later padding cannot reach earlier outputs); a bidirectional one packs the batch.
        """
        if self.encoder is None:
            raise TypeError("the language model (model.arch = 'lstm-lm') has no encoder q(z|x)")
        emb = self.drop(self._embed_for_encoder(batch))
        if self.config.bidirectional:
            packed = pack_padded_sequence(emb, batch.lengths.cpu(), batch_first=True, enforce_sorted=False)
            _, (h, _) = self.encoder(packed)
            final = torch.cat([h[-2], h[-1]], dim=-1)
        else:
            out, _ = self.encoder(emb)
            final = out[torch.arange(len(batch), device=out.device), batch.lengths - 1]
        if self.label_embed is not None:
            if c is None:
                raise ValueError("a conditional sentence model needs the labels c of its sentences")
            final = torch.cat([final, self.label_embed(c)], dim=-1)
        return diagonal_gaussian(self.to_posterior(final))

    def log_prob(self, batch: SentenceBatch) -> torch.Tensor:
        """The (unconditional) language model's exact ``log p(x)`` per sentence, ``(B,)`` (``z = None``)."""
        return self.decode(None, batch_size=len(batch)).log_prob(batch)

    def decode(self, z: torch.Tensor | None, c: torch.Tensor | None = None,
               batch_size: int | None = None) -> AutoregressiveSequence:
        """``p(x|z)`` (or ``p(x|z,c)``) for ``z`` ``(B, Z)`` or ``(S, B, Z)``; ``z = None`` is the language
        model (conditional on ``c`` if given)."""
        code = self.code(z, c)
        size = code.shape[-2] if code is not None else batch_size
        return AutoregressiveSequence(self, code, torch.Size([size]) if size is not None else torch.Size())

    def predict(self, c: torch.Tensor) -> AutoregressiveSequence:
        """The label-conditional language model ``p(x|c)`` (exact), the baseline of a sentence CVAE."""
        return self.decode(None, c)

    def bag_of_words_nll(self, z: torch.Tensor, batch: SentenceBatch) -> torch.Tensor:
        """Zhao, Zhao & Eskenazi (2017), Sec. 3.2: ``-sum_t log softmax(f(z))[x_t]`` over the real tokens of each
        sentence (words and ``</s>``), ``(B,)``: an auxiliary loss that z alone must carry the sentence's words,
        against posterior collapse. Not part of the bound."""
        log_probs = F.log_softmax(full_precision(self.bow(z)), dim=-1)  # (B, V)
        picked = log_probs.gather(1, batch.tokens.clamp(min=0)) * batch.mask
        return -picked.sum(1)

    # the decoder ----------------------------------------------------------------------------
    def initial_state(self, z: torch.Tensor | None, n: int):
        if z is None or self.to_state is None:
            return None
        h, c = torch.tanh(self.to_state(z)).chunk(2, dim=-1)
        return h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()

    def output_layer(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(features, weight, bias)`` with ``logits = features @ weight.T + bias``: the decoder states and the
        output layer, or the projected states and the embedding matrix when the embeddings are tied."""
        if self.config.tie_embeddings:
            return self.project(hidden), self.embed.weight, self.output_bias
        return hidden, self.output.weight, self.output.bias

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(*self.output_layer(hidden))

    def decoder_ids(self, inputs: torch.Tensor) -> torch.Tensor:
        """The token ids the decoder reads: ``inputs``, or only ``<s>`` and ``<unk>`` for the inputless decoder."""
        if self.config.inputless:
            return torch.where(inputs == self.config.bos_id, inputs, torch.full_like(inputs, self.config.unk_id))
        return inputs

    def _embed_for_encoder(self, batch: SentenceBatch) -> torch.Tensor:
        """The embeddings of ``batch.tokens`` ``(B, T, E)``. While training, the decoder's inputs are looked up in
        the same call and left on the batch for the decoder: the embedding matrix then gets one dense ``(V, E)``
        gradient per step, where two lookups get two that autograd zero-fills and adds."""
        if not (self.training and torch.is_grad_enabled()):
            return self.embed(batch.tokens)
        both = self.embed(torch.stack([batch.tokens, self.decoder_ids(batch.inputs)]))
        batch.decoder_embedding = (batch.inputs, both[1])
        return both[0]

    def decoder_inputs(self, z: torch.Tensor | None, inputs: torch.Tensor,
                       embedded: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's input vectors ``(B, T, E [+ Z])``: the embedded ``inputs`` (or ``embedded``, their
        embeddings already looked up), with the code ``z`` appended to each if ``model.z_every_input``."""
        emb = self.drop(self.embed(self.decoder_ids(inputs)) if embedded is None else embedded)
        if self.config.z_every_input and z is not None:
            emb = torch.cat([emb, z[:, None, :].expand(-1, emb.shape[1], -1)], dim=-1)
        return emb

    def decoder_hidden(self, z: torch.Tensor | None, inputs: torch.Tensor,
                       embedded: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced decoder states ``(B, T, H)`` over the padded inputs. Exact for every real position:
        the decoder is causal, so the padding after a sentence cannot change its earlier states."""
        out, _ = self.decoder(self.decoder_inputs(z, inputs, embedded), self.initial_state(z, inputs.shape[0]))
        return self.drop(out)

    def real_token_logits(self, z: torch.Tensor | None, batch: SentenceBatch, aligned: bool = False) -> torch.Tensor:
        """Teacher-forced logits ``(N, V)`` of the N real tokens of the batch, in ``batch.mask`` order. The
        output layer (most of the arithmetic, with a 10k vocabulary) never sees a padded position. ``aligned``:
        ``(N, V')`` with ``V'`` a multiple of 16 and ``-inf`` in the extra columns, computed faster
        (:func:`~vaekit.nets.softmax_output.aligned_logits`); the same log-softmax, cross-entropy and argmax."""
        hidden = self.decoder_hidden(z, batch.inputs)[batch.mask]
        return aligned_logits(*self.output_layer(hidden)) if aligned else self.logits(hidden)

    def token_log_probs(self, z: torch.Tensor | None, batch: SentenceBatch) -> torch.Tensor:
        """``log p(x_t | x_<t, z)`` ``(B, T)``, zero on padding."""
        kept = batch.decoder_embedding
        embedded = kept[1] if kept is not None and kept[0] is batch.inputs else None
        hidden = self.decoder_hidden(z, batch.inputs, embedded)[batch.mask]
        picked = -linear_token_nll(*self.output_layer(hidden), batch.tokens[batch.mask])
        return picked.new_zeros(batch.mask.shape).masked_scatter(batch.mask, picked)

    def step(self, z: torch.Tensor | None):
        """A step function for :mod:`vaekit.decoding` given one code ``z`` ``(1, Z)`` (or None for the LM).

        The decoding state is the LSTM's ``(h, c)``, whose batch dimension is 1 (``state_dim=1``).
        """
        def run(tokens: torch.Tensor, state):
            n = len(tokens)
            zz = None if z is None else z.expand(n, -1)
            if state is None:
                state = self.initial_state(zz, n)
            out, state = self.decoder(self.decoder_inputs(zz, tokens[:, None]), state)
            return torch.log_softmax(self.logits(out[:, 0]), -1), state
        return run
