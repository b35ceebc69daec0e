"""Reader for the IDX format of the MNIST files (LeCun et al.).

An IDX file is a big-endian header -- two zero bytes, a type code, the number of dimensions
``n`` -- followed by ``n`` 32-bit dimension sizes and the data in C order. MNIST uses type
0x08 (unsigned byte): images are ``(N, 28, 28)``, labels ``(N,)``.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from ..errors import DataError

_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into a NumPy array.

    Raises DataError naming the file when the magic number, type code or length is wrong:
    a truncated download or a file of another kind is refused rather than misread.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"IDX file not found: {path}") from None
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file (its first two bytes must be zero); "
                        "point at the uncompressed or .gz MNIST-style IDX file")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _DTYPES:
        raise DataError(f"{path}: unknown IDX type code 0x{type_code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated inside its header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _DTYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(raw) - header
    if got != expected:
        raise DataError(f"{path}: the header promises shape {tuple(shape)} ({expected} bytes) but "
                        f"the file holds {got} bytes: it is truncated or corrupt; fetch it again")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx_pair(images: str | Path, labels: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file and its labels file and check that they belong together."""
    x, y = read_idx(images), read_idx(labels)
    if x.ndim not in (3, 4) or y.ndim != 1:
        raise DataError(f"expected images (N, H, W[, C]) in {images} and labels (N,) in {labels}, found "
                        f"{x.shape} and {y.shape}; did you swap the images and labels files?")
    if len(x) != len(y):
        raise DataError(f"{images} holds {len(x)} images but {labels} holds {len(y)} labels: "
                        "the files do not belong together")
    return x, y
