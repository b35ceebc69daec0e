"""Checkpoints: written atomically, loadable with ``weights_only=True``, checked before use.

A checkpoint is a dict of plain data and tensors: the resolved config, the data shape and
likelihood, model / optimiser / schedule state, the position in the current epoch (its permutation
and batch index) and every random-number-generator state, so that a resumed run continues exactly
as if it had never stopped.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .config import RunConfig, diff
from .errors import CheckpointError

FORMAT = "vaekit-checkpoint/1"
CHECKPOINT_NAME = "checkpoint.pt"

# Config keys that may change when a run is resumed (they do not change what was learned so far; the
# compute settings, threads and precision, change the arithmetic of later steps but not the model or the
# objective, so a long run may, say, switch to mixed precision half way).
RESUMABLE_CHANGES = ("train.epochs", "train.max_steps", "train.log_every", "train.threads", "train.retain_memory",
                     "train.precision", "train.device", "train.checkpoint_every", "train.val_every", "eval.",
                     "name")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_atomic(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same directory, fsync, then rename over ``path``.

    A crash at any moment leaves either the old checkpoint or the new one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; a checkpoint is as readable as any file
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; refuse files that are not vaekit checkpoints."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}: is this a vaekit run directory? "
                              "Train one with `vaekit train`.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file: one line, without torch's advice to unpickle it unsafely
        with open(path, "rb") as handle:
            is_archive = handle.read(4) == b"PK\x03\x04"  # torch.save writes a zip archive
        why = ("it is truncated or damaged (a torch archive that does not read to its end)" if is_archive
               else f"it is not a file vaekit wrote ({type(exc).__name__})")
        raise CheckpointError(f"cannot read {path} as a checkpoint: {why}; restore it from a copy or train the "
                              "run again") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint")
    return state


def check_compatible(saved: dict[str, Any], config: RunConfig, shape: tuple[int, ...] | None = None) -> None:
    """Refuse to resume a checkpoint under a config that would change what it means.

    Raises CheckpointError listing every differing key, e.g. ``model.latent: 50 != 20``.
    """
    saved_config = RunConfig.from_dict(saved["config"]).to_dict()  # fills keys added since with defaults
    differences = [d for d in diff(saved_config, config.to_dict())
                   if not d.startswith(RESUMABLE_CHANGES)]
    if shape is not None and list(saved["shape"]) != list(shape):
        differences.append(f"data shape: {tuple(saved['shape'])} != {tuple(shape)}")
    if differences:
        raise CheckpointError("the checkpoint was made with another model or config:\n  "
                              + "\n  ".join(differences)
                              + "\nResume with the run's own config (drop the overrides) or start a new run directory.")


def warm_start(model: torch.nn.Module, source: str | Path, reset: tuple[str, ...] = (), spec: dict | None = None) -> list[str]:
    """Copy the weights of the run ``source`` into a freshly initialised ``model``, except the submodules named
    in ``reset`` (state-dict prefixes such as ``decoder``), which keep their fresh initialisation: e.g. a VAE
    that starts from a pretrained autoencoder's encoder with a new decoder (Li et al. 2019). Returns the names of
    the parameters and buffers copied.

    Refused with the fix when ``source`` has another architecture (keys or shapes differ), another vocabulary
    (``spec['vocab']``), or when a name in ``reset`` matches nothing."""
    saved = load(source)
    theirs, ours = saved["model"], model.state_dict()
    if spec is not None and "vocab" in spec and saved.get("vocab") != spec["vocab"]:
        raise CheckpointError(f"train.init_from = {source}: that run has another vocabulary than this data gives; "
                              "start from a run trained on the same data and data.min_count / data.max_vocab")
    unknown = [name for name in reset if not any(key == name or key.startswith(name + ".") for key in ours)]
    if unknown:
        modules = sorted({key.split(".")[0] for key in ours})
        raise CheckpointError(f"train.init_reset names {', '.join(unknown)}, which this model does not have; "
                              f"its submodules are {', '.join(modules)}")
    differences = sorted(set(theirs) ^ set(ours)) + [
        f"{key}: {tuple(theirs[key].shape)} != {tuple(ours[key].shape)}"
        for key in sorted(set(theirs) & set(ours)) if theirs[key].shape != ours[key].shape]
    if differences:
        raise CheckpointError(f"train.init_from = {source} has another architecture than this run "
                              f"({'; '.join(differences[:6])}); give both runs the same [model] settings")
    kept = [key for key in ours if not any(key == name or key.startswith(name + ".") for name in reset)]
    with torch.no_grad():
        for key in kept:
            ours[key].copy_(theirs[key])
    return kept
