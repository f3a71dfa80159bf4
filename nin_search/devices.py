"""The training device: ``"auto"`` resolved, and the CPU tuned for training.

On the CPU, :func:`configure_cpu_allocator` stops glibc from handing every large activation
buffer back to the kernel (the page faults cost about a sixth of a cifar10-mini trial), and
:func:`configure_cpu_threads` shares the cores between workers. No optuna in this module.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from nin_search.errors import UserError, check_int
from nin_search.vocabulary import PRECISIONS

__all__ = [
    "Precision",
    "configure_cpu_allocator",
    "configure_cpu_threads",
    "cpu_bf16_flags",
    "cpu_has_native_bf16",
    "resolve_device",
    "resolve_precision",
    "usable_cpu_cores",
]

# glibc malloc thresholds (bytes) for CPU training: blocks up to this size come from the heap
# and freed memory stays there, instead of an mmap/munmap (and page faults) per large tensor.
MALLOC_MMAP_THRESHOLD = 2**31 - 1  # mallopt takes an int: the largest one
MALLOC_TRIM_THRESHOLD = 2**31 - 1
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers, <malloc.h>


def resolve_device(name: str) -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; anything else must exist on this machine.

    Raises:
        UserError: For an unknown or unavailable device.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} asked for, but CUDA is not available; use --device cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UserError(
            f"device {name!r} does not exist ({torch.cuda.device_count()} CUDA devices)"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {name!r} asked for, but MPS is not available; use --device cpu")
    if device.type in ("cpu", "mps") and device.index not in (None, 0):
        raise UserError(
            f"device {name!r} does not exist: the {device.type} is one device; use "
            f"{device.type} (on the CPU, --workers N shares its cores between N processes)"
        )
    if device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


# /proc/cpuinfo flags of a CPU that multiplies bf16 natively (x86: AVX512-BF16 or AMX; Arm: BF16).
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_bf16_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The bf16 flags of :data:`NATIVE_BF16_FLAGS` this CPU has (``/proc/cpuinfo``): which kind
    of native bf16 it is matters, AMX's tiles gain far more than AVX512-BF16's dot products
    (benchmarks/RESULTS.md §3b). Empty where the kernel lists none (macOS, Windows)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, Arm
            return NATIVE_BF16_FLAGS & set(value.split())
    return frozenset()


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has bf16 dot-product instructions (elsewhere bf16 is emulated: slower
    than float32). Reads the kernel's CPU flags; False where there are none (macOS, Windows)."""
    return bool(cpu_bf16_flags(cpuinfo))


@dataclass(frozen=True)
class Precision:
    """The number format a run trains and evaluates in, resolved for its device.

    Attributes:
        name: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (what the trial records).
        device_type: ``"cpu"``, ``"cuda"`` or ``"mps"``.
    """

    name: str
    device_type: str

    @property
    def uses_grad_scaler(self) -> bool:
        """fp16 needs loss scaling; bf16 has float32's exponent range and does not."""
        return self.name == "fp16"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of this precision (a no-op for fp32)."""
        if self.name == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.name == "bf16" else torch.float16
        return torch.autocast(self.device_type, dtype=dtype)


def resolve_precision(precision: str, device: torch.device) -> Precision:
    """``"auto"``, ``"fp32"`` or ``"bf16"`` for ``device``.

    ``auto`` is bf16 on CUDA (fp16 with a grad scaler on GPUs without bf16) and on CPUs with
    native bf16 (:func:`cpu_has_native_bf16`), float32 elsewhere (MPS, and CPUs that would
    emulate bf16).

    Raises:
        ValueError: For a precision that is not one of ``auto``, ``fp32``, ``bf16``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, but got {precision!r}.")
    if precision == "bf16":
        return Precision("bf16", device.type)
    if precision == "fp32" or device.type == "mps":
        return Precision("fp32", device.type)
    if device.type == "cuda":
        return Precision("bf16" if torch.cuda.is_bf16_supported() else "fp16", device.type)
    return Precision("bf16" if cpu_has_native_bf16() else "fp32", device.type)


def usable_cpu_cores() -> int:
    """The cores this process may run on: its CPU affinity, else ``os.cpu_count()``."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def configure_cpu_threads(workers: int) -> int:
    """Shares this machine's cores between ``workers`` training processes.

    Sets ``torch.set_num_threads`` to the cores this process may use (its CPU affinity, else
    ``os.cpu_count()``) divided by ``workers``, at least 1: more OpenMP threads than cores
    spin and wait on each other, and the whole machine slows down.

    Args:
        workers: Training processes that share the machine (>= 1).

    Returns:
        The number of threads set.

    Raises:
        ValueError: If ``workers`` is not an integer >= 1.
    """
    check_int("workers", workers, minimum=1)
    threads = max(1, usable_cpu_cores() // workers)
    torch.set_num_threads(threads)
    return threads


_allocator_configured: bool | None = None


def configure_cpu_allocator() -> bool:
    """Keeps large CPU tensors on glibc's heap; once per process, a no-op elsewhere.

    By default glibc serves every block above 32 MiB (less before its threshold adapts) with
    a fresh ``mmap`` and returns it with ``munmap`` on free, so each training step and each
    evaluation batch page-faults its activations in again: 1.4 million faults and 2-3 s of
    ``sys`` time in 2 epochs (12 s) of a cifar10-mini trial. Raising the mmap and trim
    thresholds keeps freed memory for the next step (0.3 million faults, 0.4 s). The process
    keeps its peak memory instead of returning it to the system.

    Returns:
        True when the thresholds are set (Linux with glibc), False otherwise.
    """
    global _allocator_configured
    if _allocator_configured is not None:
        return _allocator_configured
    _allocator_configured = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        _allocator_configured = bool(
            libc.mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)
            and libc.mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)
        )
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        pass
    return _allocator_configured
