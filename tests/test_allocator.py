"""vaekit.allocator: after retain_freed_memory, a large tensor allocated again reuses mapped pages; after
flush_denormals, denormal floats compute as zero; the trainer makes both settings when its config asks."""

import platform
import subprocess
import sys

import pytest

CHILD = """
import resource, torch
from vaekit.allocator import retain_freed_memory
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.empty(16 << 20).fill_(1.0)  # 64 MiB: glibc would mmap it afresh
    del t
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
assert retain_freed_memory()
first = faults()
settling = [faults() for _ in range(3)]  # the heap may grow once more while small objects settle in it
again = [faults() for _ in range(4)]
print(first, max(again))
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_retained_memory_is_reused_without_page_faults():
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout.split()
    first, again = int(out[0]), int(out[1])
    assert first > 0  # the first 64 MiB are faulted in page by page (16,384 pages of 4 KiB; fewer if huge)...
    assert again <= first // 100  # ...and reused from the heap afterwards


DENORMAL = """
import torch
from vaekit.allocator import flush_denormals
tiny = torch.tensor([1e-39, 1e-30])  # a float32 denormal and a normal number
before = (tiny * 1.0).tolist()
supported = flush_denormals()
print(supported, before[0] > 0, (tiny * 1.0).tolist() == [0.0, before[1]])
"""


def test_flush_denormals_computes_denormals_as_zero_and_leaves_normal_numbers():
    out = subprocess.run([sys.executable, "-c", DENORMAL], capture_output=True, text=True, check=True).stdout.split()
    if out[0] != "True":
        pytest.skip("this CPU has no flush-to-zero mode torch can set")
    assert out[1:] == ["True", "True"]


@pytest.mark.parametrize("flush", [True, False])
def test_the_trainer_flushes_denormals_when_its_config_asks(tmp_path, tiny_images, monkeypatch, flush):
    import vaekit.train
    from vaekit.config import load_recipe

    calls = []
    monkeypatch.setattr(vaekit.train, "flush_denormals", lambda: calls.append(1) or True)
    config = load_recipe(None, ["model.hidden=8", "model.latent=2", "train.epochs=1", "train.max_steps=2",
                                f"train.flush_denormals={str(flush).lower()}"])
    vaekit.train.train(config, tmp_path / "run", data=tiny_images, progress=False)
    assert calls == ([1] if flush else [])
