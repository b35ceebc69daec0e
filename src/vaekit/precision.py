"""Whether this CPU does bfloat16 arithmetic natively, and a warning where mixed precision would be slow.

``train.precision = 'bfloat16'`` pays on CPUs with AVX512-BF16 or AMX (and on GPUs). On CPUs without them
(AVX2-only parts, many AMD EPYC machines among them) oneDNN emulates bfloat16 products, many times slower
than float32 ones; the trainer then raises :class:`~vaekit.errors.SlowPrecisionWarning` naming the fix (``--set train.precision=float32``).
"""

from __future__ import annotations

import functools
import platform
import warnings
from pathlib import Path

from .errors import SlowPrecisionWarning

_X86_FLAGS = {"avx512_bf16", "amx_bf16"}  # /proc/cpuinfo "flags" that give native bfloat16 products
_ARM_FEATURES = {"bf16"}                  # /proc/cpuinfo "Features" on aarch64 (BFMMLA, BFDOT)


@functools.lru_cache(maxsize=None)
def cpu_has_native_bfloat16(cpuinfo: str | None = None) -> bool | None:
    """True or False from ``/proc/cpuinfo`` (or the text given), None where it cannot tell (not Linux)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        if platform.system() != "Linux" or not path.exists():
            return None
        cpuinfo = path.read_text(errors="replace")
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            words = set(value.split())
            return bool(words & (_X86_FLAGS | _ARM_FEATURES))
    return None


def warn_if_bfloat16_is_emulated(precision: str, device: str) -> None:
    """Warn (once per call site) when a CPU run asks for bfloat16 on a CPU without native bfloat16 products."""
    if precision == "bfloat16" and device == "cpu" and cpu_has_native_bfloat16() is False:
        warnings.warn("train.precision = 'bfloat16' on a CPU without native bfloat16 arithmetic (no AVX512-BF16 or "
                      "AMX): its products are emulated and many times slower than float32; train with "
                      "--set train.precision=float32", SlowPrecisionWarning, stacklevel=3)
