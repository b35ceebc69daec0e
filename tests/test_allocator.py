"""vaekit.allocator: after retain_freed_memory, a large tensor allocated again reuses mapped pages."""

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
