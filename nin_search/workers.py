"""Several workers on one study, and recovery from workers that died or were stopped.

* ``run_worker`` is one worker process: it loads the data onto its device, opens the study and
  runs its share of the trials. ``nin-search optimize --workers N`` starts N of them.
* A trial whose worker is gone (killed, crashed) is failed and re-queued with the same
  parameters: at once when the worker ran on this machine (its host and PID are recorded on
  the trial), by Optuna's heartbeat after the grace period when it ran elsewhere.
* SIGTERM is turned into :class:`Terminated` (a ``KeyboardInterrupt``), so that a stopped
  worker fails its running trial with a reason, exactly like Ctrl-C, instead of leaving it
  RUNNING (Optuna handles SIGINT only).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nin_search.compat import storage_of, trial_id_of
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
    "Terminated",
    "WorkerSpec",
    "fail_dead_local_trials",
    "failure_summary",
    "handle_sigterm",
    "requeue_interrupted",
    "run_worker",
    "split_quota",
]


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM."""


def handle_sigterm() -> None:
    """Turns SIGTERM into :class:`Terminated` in this process."""

    def raise_terminated(signum: int, frame: Any) -> None:
        raise Terminated()

    signal.signal(signal.SIGTERM, raise_terminated)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def fail_dead_local_trials(study: optuna.Study) -> list[int]:
    """Fails RUNNING trials whose worker ran on this machine and no longer exists.

    They are marked for a retry with the same parameters (see :func:`requeue_interrupted`).
    Returns their numbers.
    """
    host = socket.gethostname()
    storage = storage_of(study)
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(WORKER) or {}
        if worker.get("host") != host or _process_alive(int(worker.get("pid", -1))):
            continue
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            trial_id = trial_id_of(trial)
            storage.set_trial_user_attr(
                trial_id, FAIL_REASON, f"worker {worker['pid']} on {host} died"
            )
            storage.set_trial_user_attr(trial_id, RETRY, True)
            if storage.set_trial_state_values(trial_id, TrialState.FAIL):
                failed.append(trial.number)
    return failed


def _interrupted(trial: FrozenTrial) -> bool:
    """Stopped by Ctrl-C or SIGTERM (older studies recorded only the reason)."""
    reason = str(trial.user_attrs.get(FAIL_REASON, ""))
    return bool(trial.user_attrs.get(INTERRUPTED)) or reason.startswith("interrupted (")


def requeue_interrupted(study: optuna.Study, *, max_retry: int = 2) -> list[int]:
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
    retried |= {t.system_attrs.get("failed_trial") for t in trials}
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
        str(t.user_attrs.get(FAIL_REASON) or t.system_attrs.get("fail_reason") or "unknown")
        for t in trials
        if t.state == TrialState.FAIL
    )
    return reasons.most_common()


def split_quota(remaining: int, workers: int) -> list[int]:
    """``remaining`` trials shared as evenly as possible between ``workers``."""
    base, extra = divmod(max(0, remaining), workers)
    return [base + (index < extra) for index in range(workers)]


@dataclass(frozen=True)
class WorkerSpec:
    """Everything one worker process needs (plain data: it crosses a process boundary)."""

    config: dict[str, Any]  # StudyConfig.model_dump()
    storage_url: str
    study_name: str
    device: str
    threads: int
    quota: int
    artifact_dir: str
    worker_index: int = 0


def run_worker(spec: WorkerSpec) -> None:
    """One worker process: data on its device, then its share of the study's trials."""
    import torch

    from nin_search.artifacts import KeepBestWeights, checkpoint_dir_for, make_artifact_store
    from nin_search.config import StudyConfig
    from nin_search.data import load_search_data
    from nin_search.devices import resolve_device
    from nin_search.objective import Objective
    from nin_search.study import open_study, optimize

    handle_sigterm()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    torch.set_num_threads(spec.threads)
    config = StudyConfig.model_validate(spec.config)
    device = resolve_device(spec.device)
    data = load_search_data(config.data, device=device)
    study = open_study(
        config,
        storage_url=spec.storage_url,
        study_name=spec.study_name,
        worker_index=spec.worker_index,
    )
    store = make_artifact_store(Path(spec.artifact_dir))
    try:
        optimize(
            study,
            Objective(
                config,
                data,
                artifact_store=store,
                checkpoint_dir=checkpoint_dir_for(Path(spec.artifact_dir), spec.study_name),
            ),
            n_trials=config.study.n_trials,
            quota=spec.quota,
            timeout=config.study.timeout,
            callbacks=[KeepBestWeights(store, keep=config.study.keep_weights)],
        )
    except Terminated:
        raise SystemExit(143) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
