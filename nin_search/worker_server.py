"""Worker processes forked from a server that imported torch ahead of time.

A spawned worker starts a fresh Python and imports torch, Optuna and nin-search again (about 7 s
on a 2-core CPU) before its first trial. On POSIX, workers are forked from multiprocessing's
fork server instead, which imports those modules once (``WORKER_MODULES``) and forks a worker
in milliseconds. ``start_worker_server`` starts it early, while this process is still busy
importing and loading data, so that the import overlaps that work. The server imports nothing
that starts threads or opens a device or a database, so a fork of it is safe (CUDA included).
Where there is no fork server (Windows), or when ``NIN_SEARCH_START_METHOD=spawn`` is set,
workers are spawned.

This module imports only the standard library: a command can call it before its heavy imports.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.context import BaseContext

from nin_search.errors import UserError

__all__ = ["START_METHOD_ENV", "WORKER_MODULES", "start_worker_server", "worker_context"]

START_METHOD_ENV = "NIN_SEARCH_START_METHOD"  # "spawn" or "forkserver" (the default where any)

# What a worker imports (nin_search.workers.run_worker or nin_search.ablation's worker, and
# scikit-learn for the stratified split, 1.7 s on its own); the console script's module too,
# because a worker started from
# `nin-search` imports it as its main module. torch._dynamo too: PyTorch imports it the first
# time a process builds an optimizer (``Optimizer.add_param_group`` is wrapped in
# ``torch._disable_dynamo``), which cost each worker's first trial 1.2-1.5 s here.
WORKER_MODULES = [
    "nin_search.worker_server_signals",  # first: the server ignores Ctrl-C and SIGTERM (see it)
    "torch",
    "torch._dynamo",
    "optuna",
    "sklearn.model_selection",
    "nin_search.cli",
    "nin_search.workers",
    "nin_search.data",
    "nin_search.devices",
    "nin_search.study",
    "nin_search.objective",
    "nin_search.artifacts",
    "nin_search.ablation",
]


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_context() -> BaseContext:
    """The multiprocessing context workers start from: the fork server where there is one."""
    method = os.environ.get(START_METHOD_ENV, "forkserver")
    if method not in ("spawn", "forkserver"):
        raise UserError(f"{START_METHOD_ENV} must be 'spawn' or 'forkserver', but got {method!r}")
    if method == "spawn" or "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_MODULES)
    return context


def start_worker_server() -> bool:
    """Starts the fork server now, when there is one and a spare core to import on.

    Returns whether it was started (or already ran). Workers started later come from it; with
    a single usable core the import would only slow this process down, so it waits until the
    first worker is started.
    """
    context = worker_context()
    if context.get_start_method() != "forkserver" or _usable_cores() < 2:
        return False
    from multiprocessing import forkserver

    forkserver.ensure_running()
    return True
