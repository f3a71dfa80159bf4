"""Ctrl-C and SIGTERM in a process that runs trials: acted on at once while a trial trains,
held back while Optuna creates, samples or records a trial.

An interrupt that lands in Optuna's own bookkeeping (``study.ask``, a heartbeat thread being
started, ``tell``) is recorded nowhere: the trial stays RUNNING with no reason and no worker
attr, which no later run may fail, or a half-started heartbeat thread keeps the process alive
for ever. So while trials run (:func:`held`), a signal only notes the interrupt; it is raised
where nothing is half-written: as a trial's objective starts or while it trains
(:func:`allowed`, the trial is then failed with its reason and retried), after a trial was
recorded (:func:`raise_pending`, an Optuna callback), or when the loop ends.

* SIGTERM becomes :class:`Terminated` (a ``KeyboardInterrupt``), so a stopped worker fails its
  running trial with a reason, exactly like Ctrl-C (Optuna handles SIGINT only).
* Each is acted on once: a worker gets a terminal's Ctrl-C and the one its command forwards,
  or ``kill -TERM -PGID``'s and its command's, and the second must not cut short the recording
  of the stopped trial.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

__all__ = [
    "Terminated",
    "allowed",
    "handle_sigint",
    "handle_sigterm",
    "held",
    "raise_pending",
]


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM."""


class _State:
    held = False  # interrupts wait (Optuna's bookkeeping runs)
    pending: KeyboardInterrupt | None = None  # one that came while held


def _interrupt(signum: int, error: KeyboardInterrupt) -> None:
    signal.signal(signum, signal.SIG_IGN)  # on its way out already
    if _State.held:
        _State.pending = _State.pending or error
        return
    raise error


def handle_sigint(*, ignored: bool | None = None) -> None:
    """SIGINT raises :class:`KeyboardInterrupt` in this process, once (see the module).

    Args:
        ignored: Whether the command ignores SIGINT (a background job of a script, ``nohup``):
            then so does this process. None: this process's own disposition says.
    """
    if ignored is None:
        ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return

    def raise_interrupt(signum: int, frame: Any) -> None:
        _interrupt(signum, KeyboardInterrupt())

    signal.signal(signal.SIGINT, raise_interrupt)


def handle_sigterm() -> None:
    """SIGTERM raises :class:`Terminated` in this process, once (see the module)."""

    def raise_terminated(signum: int, frame: Any) -> None:
        _interrupt(signum, Terminated())

    signal.signal(signal.SIGTERM, raise_terminated)


def raise_pending(*_: Any) -> None:
    """Raises the interrupt that came while held, if one did (usable as an Optuna callback:
    after a trial was recorded, nothing is half-written)."""
    error, _State.pending = _State.pending, None
    if error is not None:
        raise error


@contextlib.contextmanager
def _holding(hold: bool) -> Iterator[bool]:
    """Sets whether interrupts wait while the body runs; yields the outer setting."""
    outer = _State.held
    _State.held = hold
    try:
        yield outer
    finally:
        _State.held = outer


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Interrupts wait while the body runs trials (except in :func:`allowed` parts); one that
    came is raised as the body ends."""
    with _holding(True) as outer:
        yield
    if not outer:
        raise_pending()


@contextlib.contextmanager
def allowed() -> Iterator[None]:
    """Interrupts are raised at once while the body runs (a trial's training); one that came
    while held is raised as it starts."""
    with _holding(False):
        raise_pending()
        yield
