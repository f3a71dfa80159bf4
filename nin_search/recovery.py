"""What stopped or dead workers leave behind, and how a run that was stopped ends.

* A trial whose worker is gone (killed, crashed) is failed and re-queued with the same
  parameters: at once when the worker ran on this machine (its host and PID are recorded on
  the trial), by Optuna's heartbeat after the grace period when it ran elsewhere.
* How Ctrl-C and SIGTERM stop a trial: :mod:`nin_search.interrupts`.
* :class:`RunOutcome`: how a run ended (done, Ctrl-C, SIGTERM, a worker died), for the
  command's exit code and its one line of what to do next.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import warnings
from collections import Counter
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from nin_search.compat import optuna_fail_reason, optuna_retried_trial, storage_of, trial_id_of
from nin_search.config import MAX_RETRY
from nin_search.errors import EXIT_DATABASE_LOST, EXIT_INTERRUPTED, EXIT_TERMINATED
from nin_search.interrupts import Terminated
from nin_search.outputs import process_is_alive
from nin_search.records import (
    BASELINE,
    FAIL_REASON,
    INTERRUPTED,
    RETRY,
    RETRY_DEPTH,
    RETRY_OF,
    SAMPLED_BY,
    WORKER,
)

__all__ = [
    "RunOutcome",
    "fail_dead_local_trials",
    "fail_stale_trials",
    "failure_summary",
    "interrupt_exit_code",
    "interrupted_outcome",
    "interrupted_trials",
    "requeue_interrupted",
    "stopped_outcome",
]


def _how_worker_ended(exit_code: int | None) -> str:
    """Why a worker's trial stopped, from its exit code (None: not known, a later run)."""
    if exit_code is None:
        return "ended while running it (it was killed, crashed or lost the database server)"
    if exit_code == EXIT_DATABASE_LOST:
        return "lost the connection to the database server"
    if exit_code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-exit_code).name}"
        return f"was killed by signal {-exit_code}"
    return f"died with exit code {exit_code}"


def fail_dead_local_trials(
    study: optuna.Study, exit_codes: dict[int, int | None] | None = None
) -> list[int]:
    """Fails RUNNING trials whose worker ran on this machine and no longer exists.

    They are marked for a retry with the same parameters (see :func:`requeue_interrupted`).

    Args:
        study: The study.
        exit_codes: The exit code of each worker process id, when the caller waited for them;
            the recorded reason says how the worker ended.

    Returns:
        The failed trials' numbers.
    """
    host = socket.gethostname()
    storage = storage_of(study)
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(WORKER) or {}
        if worker.get("host") != host or process_is_alive(int(worker.get("pid", -1))):
            continue
        how = _how_worker_ended((exit_codes or {}).get(int(worker["pid"])))
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            trial_id = trial_id_of(trial)
            storage.set_trial_user_attr(
                trial_id, FAIL_REASON, f"worker {worker['pid']} on {host} {how}"
            )
            storage.set_trial_user_attr(trial_id, RETRY, True)
            if storage.set_trial_state_values(trial_id, TrialState.FAIL):
                failed.append(trial.number)
    return failed


def fail_stale_trials(study: optuna.Study) -> list[int]:
    """Fails RUNNING trials whose heartbeat stopped more than the grace period ago (their
    machine died or lost the database), and queues each again through Optuna's heartbeat
    retry (``optuna.storages.fail_stale_trials``). Optuna does this as each trial starts; this
    does it also when the study has reached its target and no trial starts. Returns their
    numbers."""
    running = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if not running:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    return sorted(t.number for t in failed if t.number in running)


def _interrupted(trial: FrozenTrial) -> bool:
    """Stopped by Ctrl-C or SIGTERM (older studies recorded only the reason)."""
    reason = str(trial.user_attrs.get(FAIL_REASON, ""))
    return bool(trial.user_attrs.get(INTERRUPTED)) or reason.startswith("interrupted (")


def requeue_interrupted(study: optuna.Study, *, max_retry: int = MAX_RETRY) -> list[int]:
    """Enqueues again, with the same parameters, failed trials marked for a retry.

    A trial is marked when Ctrl-C or SIGTERM stopped it or its worker died. Each retry
    records ``retry_of`` (the trial it repeats) and is enqueued once. A user's interrupt is
    always retried and never counts; a chain of crashes (a worker that died) is retried at
    most ``max_retry`` times (``retry_depth`` counts them). Returns the numbers of the
    re-queued trials.
    """
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get(RETRY_OF) for t in trials}
    # Optuna's own heartbeat retry (RetryHeartbeatStaleTrialCallback) also counts.
    retried |= {optuna_retried_trial(t) for t in trials}
    requeued = []
    for trial in trials:
        if trial.state != TrialState.FAIL or not trial.user_attrs.get(RETRY):
            continue
        if trial.number in retried:
            continue
        crashes = trial.user_attrs.get(RETRY_DEPTH, 0)
        if not _interrupted(trial):
            if crashes >= max_retry:
                continue
            crashes += 1
        user_attrs = {RETRY_OF: trial.number, RETRY_DEPTH: crashes}
        for name in (BASELINE, SAMPLED_BY):  # a retry keeps what the trial it repeats was
            if trial.user_attrs.get(name):
                user_attrs[name] = trial.user_attrs[name]
        study.enqueue_trial(trial.params, user_attrs=user_attrs)
        requeued.append(trial.number)
    return requeued


def failure_summary(trials: list[FrozenTrial]) -> list[tuple[str, int]]:
    """Failed trials grouped by reason, most frequent first."""
    reasons = Counter(
        str(t.user_attrs.get(FAIL_REASON) or optuna_fail_reason(t) or "unknown")
        for t in trials
        if t.state == TrialState.FAIL
    )
    return reasons.most_common()


@dataclass(frozen=True)
class RunOutcome:
    """How a search run ended, for the command's exit code."""

    exit_code: int  # 0: finished; 1: a worker died; EXIT_INTERRUPTED; EXIT_TERMINATED
    message: str | None = None  # what to tell the user when the run stopped early


def interrupted_trials(study: optuna.Study) -> str:
    """What happened to the trial(s) an interrupt stopped; true to the retry rule."""
    trials = study.get_trials(deepcopy=False)
    retried = {trial.user_attrs.get(RETRY_OF) for trial in trials}
    stopped = [
        trial.number
        for trial in trials
        if trial.state == TrialState.FAIL
        and trial.user_attrs.get(INTERRUPTED)
        and trial.number not in retried
    ]
    if not stopped:
        return "no trial was running; "
    return f"trial(s) {stopped} recorded as failed, and the next run retries them; "


def interrupt_exit_code(interrupt: KeyboardInterrupt) -> int:
    """The exit code of a process that ``interrupt`` stopped: SIGTERM or Ctrl-C."""
    return EXIT_TERMINATED if isinstance(interrupt, Terminated) else EXIT_INTERRUPTED


def interrupted_outcome(study: optuna.Study, interrupt: KeyboardInterrupt) -> RunOutcome:
    """The outcome of a search run in this process that Ctrl-C or SIGTERM stopped."""
    return stopped_outcome(
        interrupt,
        f"{interrupted_trials(study)}run the same command again to resume the study",
    )


def stopped_outcome(interrupt: KeyboardInterrupt, what_next: str) -> RunOutcome:
    """The outcome of a run that Ctrl-C or SIGTERM stopped, with what to do next."""
    code = interrupt_exit_code(interrupt)
    return RunOutcome(
        code, f"{'terminated' if code == EXIT_TERMINATED else 'interrupted'}: {what_next}"
    )
