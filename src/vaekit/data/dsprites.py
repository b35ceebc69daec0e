"""dSprites, generated here: 2-D shapes on a 64 x 64 binary canvas from five independent factors.

The factor grid is the published one (Matthey et al. 2017, the ``dsprites_ndarray`` release; used by
Higgins et al. 2017, Kim & Mnih 2018, Chen et al. 2018, Locatello et al. 2019):

    shape        3   square, ellipse, heart              (values 1, 2, 3)
    scale        6   linspace(0.5, 1, 6)
    orientation 40   linspace(0, 2 pi, 40)   (both ends included, as published: 0 and 2 pi look alike)
    pos_x       32   linspace(0, 1, 32)
    pos_y       32   linspace(0, 1, 32)

3 x 6 x 40 x 32 x 32 = 737,280 images, indexed in the published order (pos_y varies fastest). The
pixels are our own rendering (no package ships the original images): each shape is rasterised by testing
pixel centres against its outline, rotated and scaled about its centre, and placed with its centre at
``12 + 40 * pos`` pixels (rounded), so that every shape at every scale and angle stays on the canvas.
Rendering is deterministic (no randomness, plain float64 arithmetic), so any subset can be rendered on
demand; :func:`build_cache` writes all images, bit-packed (377 MB), once.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
FACTOR_VALUES = {
    "shape": np.array([1.0, 2.0, 3.0]),
    "scale": np.linspace(0.5, 1.0, 6),
    "orientation": np.linspace(0.0, 2 * math.pi, 40),
    "pos_x": np.linspace(0.0, 1.0, 32),
    "pos_y": np.linspace(0.0, 1.0, 32),
}
SIZE = 64
COUNT = int(np.prod(FACTOR_SIZES))  # 737,280
_HALF = 16          # base masks are (33, 33) around the shape's centre
_EXTENT = 8.0       # half-size in pixels of a shape at scale 1 (the heart reaches 1.25 of it)


def factors_of(indices: np.ndarray) -> np.ndarray:
    """Image indices ``(n,)`` -> factor classes ``(n, 5)`` (shape, scale, orientation, pos_x, pos_y)."""
    return np.stack(np.unravel_index(np.asarray(indices), FACTOR_SIZES), axis=1)


def index_of(factors: np.ndarray) -> np.ndarray:
    """Factor classes ``(n, 5)`` -> image indices ``(n,)`` in the published order."""
    return np.ravel_multi_index(tuple(np.asarray(factors).T), FACTOR_SIZES)


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether points ``(u, v)`` (units of the shape's half-size, unrotated) lie in shape 0, 1 or 2."""
    if shape == 0:  # square
        return (np.abs(u) <= 0.8) & (np.abs(v) <= 0.8)
    if shape == 1:  # ellipse, axes 1 and 0.5
        return u ** 2 + (v / 0.5) ** 2 <= 1.0
    x, y = u / 0.9, -(v + 0.1) / 0.9  # heart: (x^2 + y^2 - 1)^3 <= x^2 y^3, point up in image rows
    return (x ** 2 + y ** 2 - 1.0) ** 3 <= x ** 2 * y ** 3


@lru_cache(maxsize=1)
def _base_masks() -> np.ndarray:
    """``(3, 6, 40, 33, 33)`` bool: every shape, scale and orientation around a centred pixel."""
    offsets = np.arange(-_HALF, _HALF + 1, dtype=np.float64)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    masks = np.zeros((3, 6, 40, 2 * _HALF + 1, 2 * _HALF + 1), dtype=bool)
    for k, scale in enumerate(FACTOR_VALUES["scale"]):
        for a, angle in enumerate(FACTOR_VALUES["orientation"]):
            c, s = math.cos(angle), math.sin(angle)
            u = (c * dx + s * dy) / (_EXTENT * scale)   # rotate the pixel grid by -angle
            v = (-s * dx + c * dy) / (_EXTENT * scale)
            for shape in range(3):
                masks[shape, k, a] = _inside(shape, u, v)
    return masks


def _centre(pos_class: np.ndarray) -> np.ndarray:
    return np.rint(12 + 40 * FACTOR_VALUES["pos_x"][pos_class]).astype(np.int64)


def render(factors: np.ndarray) -> np.ndarray:
    """Images for factor classes ``(n, 5)``: ``(n, 64 * 64)`` uint8 in {0, 1}."""
    factors = np.asarray(factors, dtype=np.int64).reshape(-1, 5)
    masks = _base_masks()
    padded = np.zeros((len(factors), SIZE + 2 * _HALF, SIZE + 2 * _HALF), dtype=np.uint8)
    rows, cols = _centre(factors[:, 4]), _centre(factors[:, 3])  # pos_y -> row, pos_x -> column
    for i, (shape, scale, angle, _, _) in enumerate(factors):
        r, c = rows[i], cols[i]
        padded[i, r:r + 2 * _HALF + 1, c:c + 2 * _HALF + 1] = masks[shape, scale, angle]
    return padded[:, _HALF:_HALF + SIZE, _HALF:_HALF + SIZE].reshape(len(factors), SIZE * SIZE)


def sample_factors(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` factor classes drawn uniformly and independently: ``(n, 5)`` int64."""
    return np.stack([rng.integers(0, size, n) for size in FACTOR_SIZES], axis=1)


def digest(indices: np.ndarray) -> str:
    """SHA-256 of the rendered bytes of ``indices``: a fingerprint of the rendering."""
    return hashlib.sha256(render(factors_of(indices)).tobytes()).hexdigest()


def build_cache(path: str | Path, chunk: int = 16384) -> Path:
    """Render all 737,280 images into ``path`` (``.npz``: ``images`` bit-packed ``(N, 512)`` uint8 and
    ``factors`` ``(N, 5)``), written atomically."""
    path = Path(path)
    packed = np.empty((COUNT, SIZE * SIZE // 8), dtype=np.uint8)
    for start in range(0, COUNT, chunk):
        idx = np.arange(start, min(COUNT, start + chunk))
        packed[idx] = np.packbits(render(factors_of(idx)), axis=1)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, images=packed, factors=factors_of(np.arange(COUNT)).astype(np.uint8))
    tmp.replace(path)
    return path


def load_cache(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 4096) uint8 in {0, 1}, factors (N, 5))`` from :func:`build_cache`'s file, checked."""
    with np.load(path) as data:
        images, factors = np.unpackbits(data["images"], axis=1), data["factors"].astype(np.int64)
    if len(images) != COUNT or images.shape[1] != SIZE * SIZE:
        raise ValueError(f"{path}: {len(images)} images of {images.shape[1]} pixels, expected {COUNT} of 4096; "
                         "delete it and build it again")
    return images, factors
