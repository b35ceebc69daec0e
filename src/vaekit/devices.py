"""Where a run computes: ``train.device`` / ``eval.device`` and moving batches there.

``cpu`` (the default) keeps every tensor where the data loaders put it. ``cuda`` (or ``cuda:N``) moves the
model and each batch to that GPU; ``auto`` picks ``cuda`` when torch sees one, else ``cpu``.

The feeds (:mod:`vaekit.feeds`) stay on the CPU whatever the device: the epoch's plan, the binarisation and
the word dropout draw from the same CPU generators, so a GPU run sees exactly the batches the CPU run of
the same seed sees; only the reparameterisation noise (torch's generator of that device) differs. A batch
is a tensor or a dataclass of tensors (:class:`~vaekit.models.SentenceBatch`,
:class:`~vaekit.conditional.ConditionalBatch`, :class:`~vaekit.semi_supervised.LabelledBatch`), moved
by :func:`to_device` once per step.
"""

from __future__ import annotations

import dataclasses
import re

import torch

from .errors import ConfigError

DEVICE_PATTERN = re.compile(r"^(cpu|auto|cuda(:\d+)?)$")


def check_device_name(where: str, name: str) -> None:
    """ConfigError unless ``name`` is a device this library knows how to use (spelling only, not presence)."""
    if not DEVICE_PATTERN.match(name):
        raise ConfigError(f"{where} = {name!r}: choose cpu, cuda, cuda:N (a GPU's index) or auto "
                          "(cuda when torch sees a GPU, else cpu)")


def resolve_device(name: str, where: str = "train.device") -> torch.device:
    """The ``torch.device`` that ``name`` means here; ConfigError naming the fix when it is not available."""
    check_device_name(where, name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"a CUDA {torch.version.cuda} build"
            fix = f"{where} cpu" if where.startswith("--") else f"--set {where}=cpu"  # a flag, or a config key
            raise ConfigError(f"{where} = {name!r}, but torch ({torch.__version__}, {build}) sees no GPU: run "
                              f"on the CPU ({fix}), or install a CUDA build of torch on a machine with an NVIDIA GPU")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(f"{where} = {name!r}, but torch sees {count} GPU(s) (cuda:0 to cuda:{count - 1}): "
                              "choose one of those")
    return device


def to_device(batch, device: torch.device, non_blocking: bool = False):
    """``batch`` with every tensor in it on ``device``: a tensor, a dataclass of tensors (other fields kept),
    or a tuple / list of those. On the device it is already on, the same object comes back."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        moved = {f.name: to_device(getattr(batch, f.name), device, non_blocking)
                 for f in dataclasses.fields(batch) if f.init}
        if all(moved[name] is getattr(batch, name) for name in moved):
            return batch
        return dataclasses.replace(batch, **moved)
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(item, device, non_blocking) for item in batch)
    return batch


def rng_state(device: torch.device) -> torch.Tensor | None:
    """The state of torch's generator on a GPU ``device`` (its reparameterisation noise), None on the CPU."""
    return torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def set_rng_state(state: torch.Tensor | None, device: torch.device) -> None:
    """Restore what :func:`rng_state` returned (nothing to do for the CPU, or for a state of no GPU)."""
    if device.type == "cuda" and state is not None:
        torch.cuda.set_rng_state(state, device)


def describe(device: torch.device) -> str:
    """``'cpu'`` or e.g. ``'cuda:0 (NVIDIA H200)'``, for reports and benchmark records."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)


def machine_report() -> list[str]:
    """What ``vaekit info`` prints: the versions, the CPU (cores, torch threads, native bfloat16 or not) and the
    GPUs torch sees, each with what it means for ``train.device`` and ``train.precision``."""
    import os
    import platform
    from importlib import metadata

    from .precision import cpu_has_native_bfloat16

    try:
        version = metadata.version("vaekit")
    except metadata.PackageNotFoundError:
        version = "not installed (running from a source tree)"
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only build"
    lines = [f"vaekit {version}; torch {torch.__version__} ({build}); Python {platform.python_version()}"]
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    lines.append(f"CPU: {cpu}; {os.cpu_count()} logical cores; torch uses {torch.get_num_threads()} threads "
                 "(train.threads sets it)")
    native = cpu_has_native_bfloat16()
    lines.append("bfloat16 on this CPU: " + {
        True: "native (AMX or AVX512-BF16): --set train.precision=bfloat16 speeds up training",
        False: "emulated (no AMX or AVX512-BF16): keep train.precision=float32 on the CPU",
        None: "unknown (not Linux): measure before choosing train.precision=bfloat16"}[native])
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            lines.append(f"GPU cuda:{index}: {props.name}, {props.total_memory / 2 ** 30:.0f} GiB, compute capability "
                         f"{props.major}.{props.minor}")
        lines.append("train.device=auto uses cuda:0 here; `vaekit eval RUN --device cuda` scores a run on it")
    else:
        lines.append("GPU: none that torch sees" + ("" if torch.version.cuda else " (this torch is a CPU-only build)")
                     + "; train.device=auto means cpu here")
    return lines
