"""A run directory and the objects a config describes: data, likelihood and model.

    RUN_DIR/config.json       resolved config (plain data)
    RUN_DIR/checkpoint.pt     latest checkpoint (atomic; resume from here)
    RUN_DIR/metrics.jsonl     one JSON line per epoch
    RUN_DIR/report.json|md    final evaluation
    RUN_DIR/*.png             plots
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from . import checkpoint
from .config import DataConfig, ModelConfig, RunConfig
from .data import ImageData, load
from .data.text import TextData, Vocab
from .errors import ConfigError
from .models import SentenceVAE, SentenceVAEConfig


def load_data(config: DataConfig) -> ImageData | TextData:
    """Load the data set a :class:`DataConfig` names, applying ``limit`` and ``eval_limit``."""
    if config.is_text:
        return load_text_data(config)
    data = load(config.name, config.path or None, validation=config.validation, seed=config.split_seed)
    if config.limit:
        data.train = data.train[: config.limit]
        data.train_labels = None if data.train_labels is None else data.train_labels[: config.limit]
    if config.eval_limit:
        for split in ("val", "test"):
            x, y = data.split(split)
            setattr(data, split, x[: config.eval_limit])
            setattr(data, f"{split}_labels", None if y is None else y[: config.eval_limit])
    return data


def load_text_data(config: DataConfig) -> TextData:
    """PTB, Brown or the user's text file, with the vocabulary options and limits of ``config``."""
    from .data.text import load_brown, load_ptb, load_text_file

    max_length = config.max_length or None
    max_size = config.max_vocab or None
    if config.path:
        data = load_text_file(config.path, min_count=config.min_count, max_size=max_size, max_length=max_length,
                              seed=config.split_seed)
    elif config.name == "ptb":
        if config.min_count != 1 or config.max_vocab:
            raise ConfigError("the Penn Treebank has its own 10k vocabulary: leave data.min_count and "
                              "data.max_vocab at their defaults")
        data = load_ptb(max_length=max_length)
    else:
        data = load_brown(min_count=config.min_count, max_size=max_size, max_length=max_length,
                          seed=config.split_seed)
    if config.limit:
        data.train = data.train[: config.limit]
    if config.eval_limit:
        data.val, data.test = data.val[: config.eval_limit], data.test[: config.eval_limit]
    if data.labels is not None and (config.limit or config.eval_limit):
        data.labels = {"train": data.labels["train"][: len(data.train)], "val": data.labels["val"][: len(data.val)],
                       "test": data.labels["test"][: len(data.test)]}
    return data


def build_sentence_model(config: ModelConfig, vocab: Vocab, conditions: int = 0) -> SentenceVAE:
    """The sentence VAE (``arch = lstm``) or its language-model baseline (``lstm-lm``) for ``vocab``; with
    ``conditions`` labels (and ``config.condition_embedding > 0``), their label-conditional versions."""
    return SentenceVAE(SentenceVAEConfig(
        vocab_size=len(vocab), embedding=config.embedding, hidden=config.hidden[0] if config.hidden else 191,
        latent=config.latent, bidirectional=config.bidirectional, z_to_initial_state=config.z_to_initial_state,
        z_every_input=config.z_every_input, inputless=config.inputless, tie_embeddings=config.tie_embeddings,
        unk_id=vocab.unk, bos_id=vocab.bos, eos_id=vocab.eos, language_model=config.arch == "lstm-lm",
        dropout=config.dropout, weight_drop=config.weight_drop, bag_of_words=config.bag_of_words, conditions=conditions,
        condition_embedding=config.condition_embedding, prior_network=config.prior_network))


def run_vocab(state: dict) -> Vocab:
    """The vocabulary a sentence model's checkpoint (or export) carries as ``state["vocab"]``."""
    return Vocab(state["vocab"])


def resolve_likelihood(config: RunConfig, data: ImageData | TextData) -> str:
    """``bernoulli`` for binary or binarised data, ``gaussian`` for intensities, unless set explicitly;
    ``categorical`` (a softmax over the vocabulary per token) for sentences."""
    if isinstance(data, TextData):
        return "categorical"
    binarised = config.data.binarize == "dynamic" or data.is_binary
    if config.data.binarize not in ("dynamic", "none"):
        raise ConfigError(f"data.binarize = {config.data.binarize!r}: choose dynamic or none")
    choice = config.model.likelihood
    if choice == "auto":
        return "bernoulli" if binarised else "gaussian"
    if choice == "bernoulli" and not binarised:
        raise ConfigError("a Bernoulli likelihood needs binary data: set data.binarize = 'dynamic' or "
                          "model.likelihood = 'gaussian' for intensities")
    return choice


def eval_inputs(config: RunConfig, data: ImageData, split: str) -> torch.Tensor:
    """The fixed float32 inputs of an evaluation split (binarised once with a fixed seed if binarising)."""
    from .data import fixed_binarization, to_float

    x, _ = data.split(split)
    if config.data.binarize == "dynamic" and not data.is_binary:
        return fixed_binarization(x, data.max_value).to(torch.float32)
    return to_float(x, data.max_value)


def load_model(run_dir: str | Path) -> tuple[RunConfig, torch.nn.Module, dict]:
    """Rebuild the model of a run directory from its checkpoint (config, model in eval mode, checkpoint).
    The checkpoint holds the family's spec (:mod:`vaekit.families`): shape and likelihood, and a sentence
    model's vocabulary (``state["vocab"]``, a list of words, ``<pad>`` first)."""
    from .families import family_of

    state = checkpoint.load(run_dir)
    config = RunConfig.from_dict(state["config"])
    model = family_of(config).build(config, state)
    model.load_state_dict(state["model"])
    model.eval()
    return config, model, state


def write_json(path: str | Path, obj) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
