"""Data sets: MNIST, Fashion-MNIST and the user's own images, held as single tensors."""

from .batching import binarize, fixed_binarization, to_float
from .idx import read_idx, read_idx_pair
from .images import DATASETS, ImageData, from_arrays, load, mnist_dir, verify

__all__ = ["DATASETS", "ImageData", "binarize", "fixed_binarization", "from_arrays", "load",
           "mnist_dir", "read_idx", "read_idx_pair", "to_float", "verify"]
