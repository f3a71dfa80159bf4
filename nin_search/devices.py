"""The training device: ``"auto"`` resolved, and the CPU tuned for training.

On the CPU, :func:`configure_cpu_allocator` stops glibc from handing every large activation
buffer back to the kernel (the page faults cost about a sixth of a cifar10-mini trial), and
:func:`configure_cpu_threads` shares the cores between workers. No optuna in this module.
"""

from __future__ import annotations

import ctypes
import os
import sys

import torch

from nin_search.errors import UserError

__all__ = ["configure_cpu_allocator", "configure_cpu_threads", "resolve_device"]

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
    if device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


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
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, but got workers={workers!r}.")
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    threads = max(1, cores // workers)
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
