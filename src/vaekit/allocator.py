"""Keep freed memory in the process heap while training (glibc's ``malloc``).

A training step of a sentence model allocates tensors of tens of megabytes: the ``(tokens, vocabulary)``
logits, their softmax and its gradient. glibc's ``malloc`` serves blocks that large with fresh ``mmap``
pages and unmaps them again on ``free``, so every step pays a page fault for each page it first touches:
about 13,800 faults per step of the Penn Treebank sentence VAE, which trains 1.10x as fast without them
(1.15x in bfloat16; a K = 100 evaluation 1.49x) on this project's 2-core machine
(``benchmarks/allocator.py``). :func:`retain_freed_memory` sets ``M_MMAP_MAX = 0`` (serve every block from
the heap) and the largest trim threshold, 2 GiB (keep freed heap memory unless 2 GiB of it lie free at the
top), so that after the first steps each step's tensors reuse pages that are already mapped. The price:
the process keeps its peak memory until it exits. The PyTorch CPU performance guide recommends jemalloc or
tcmalloc for the same reason; this needs no preloaded library.

It changes the whole process, like ``torch.set_num_threads``; ``train.retain_memory = false`` leaves
``malloc`` alone. Elsewhere than glibc (macOS, musl, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
LARGEST_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int


def _glibc():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")  # glibc's soname on every Linux architecture
    except OSError:
        return None


def retain_freed_memory() -> bool:
    """Serve every allocation from the heap and keep what is freed; True when glibc took both settings."""
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, LARGEST_TRIM_THRESHOLD))
