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
from .config import DataConfig, RunConfig
from .data import ImageData, load
from .errors import ConfigError
from .models import VAE, build_model


def load_data(config: DataConfig) -> ImageData:
    """Load the data set a :class:`DataConfig` names, applying ``limit`` and ``eval_limit``."""
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


def resolve_likelihood(config: RunConfig, data: ImageData) -> str:
    """``bernoulli`` for binary or binarised data, ``gaussian`` for intensities, unless set explicitly."""
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


def load_model(run_dir: str | Path) -> tuple[RunConfig, VAE, dict]:
    """Rebuild the model of a run directory from its checkpoint (config, model in eval mode, checkpoint)."""
    state = checkpoint.load(run_dir)
    config = RunConfig.from_dict(state["config"])
    model = build_model(config.model, tuple(state["shape"]), state["likelihood"])
    model.load_state_dict(state["model"])
    model.eval()
    return config, model, state


def write_json(path: str | Path, obj) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
