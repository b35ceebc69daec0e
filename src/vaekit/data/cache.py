"""Where fetched data sets live: ``$VAEKIT_DATA`` or ``~/.cache/vaekit``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_dir() -> Path:
    """The data cache directory (created on demand), set by the ``VAEKIT_DATA`` environment variable."""
    root = os.environ.get("VAEKIT_DATA") or os.path.join(os.path.expanduser("~"), ".cache", "vaekit")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
