"""Export a trained model as ``model.safetensors`` + ``config.json``, and load it back."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .config import RunConfig
from .families import SPEC_KEYS, family_of
from .runs import load_model

EXPORT_FORMAT = "vaekit-export/1"


def export_run(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write the run's weights (safetensors) and what is needed to rebuild the model (JSON)."""
    config, model, state = load_model(run_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, out / "model.safetensors", metadata={"format": EXPORT_FORMAT})
    spec = {key: state[key] for key in SPEC_KEYS if key in state}  # what the family needs to rebuild the model
    (out / "config.json").write_text(json.dumps({"format": EXPORT_FORMAT, "config": config.to_dict(), **spec},
                                                indent=2) + "\n")
    return out


def load_exported(directory: str | Path) -> tuple[RunConfig, torch.nn.Module]:
    """Rebuild an exported model (in eval mode) from ``model.safetensors`` + ``config.json``."""
    directory = Path(directory)
    meta = json.loads((directory / "config.json").read_text())
    config = RunConfig.from_dict(meta["config"])
    model = family_of(config).build(config, meta)  # meta holds the family's spec (shape, likelihood, vocab)
    model.load_state_dict(load_file(directory / "model.safetensors"))
    model.eval()
    return config, model
