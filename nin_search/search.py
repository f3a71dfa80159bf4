"""`nin-search optimize` as library steps: check every input, load the data, open the study
(recovering what dead or stopped workers left), run the trials here or in worker processes.

Each step is one call, so that the command only parses, calls and prints::

    plan = plan_search(config, storage_url=..., study_name=..., workers=2)
    data = load_data(plan)
    opened = open_search(plan, data)
    outcome = run_search(plan, opened.study, data)

Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nin_search.artifacts import (
    KeepBestWeights,
    artifact_dir_for,
    check_artifact_folders,
    checkpoint_dir_for,
    forget_missing_weights,
    make_artifact_store,
)
from nin_search.config import StudyConfig
from nin_search.data import SearchData, load_search_data
from nin_search.interrupts import handle_sigint, handle_sigterm
from nin_search.objective import Objective
from nin_search.outputs import check_outputs
from nin_search.recovery import (
    RunOutcome,
    fail_dead_local_trials,
    fail_stale_trials,
    failure_summary,
    interrupted_outcome,
    requeue_interrupted,
)
from nin_search.storage import check_storage_url
from nin_search.study import check_study_name, open_study, optimize
from nin_search.trials import FINISHED_STATES, finished_trials
from nin_search.workers import WorkerPlan, plan_workers, run_workers

__all__ = [
    "OpenedSearch",
    "SearchPlan",
    "every_trial_failed",
    "load_data",
    "open_search",
    "plan_search",
    "run_search",
    "timeout_note",
]


@dataclass(frozen=True)
class SearchPlan(WorkerPlan):
    """A search whose inputs are all checked, before anything is written: where it trains
    (:class:`~nin_search.workers.WorkerPlan`) and what."""

    config: StudyConfig
    storage_url: str
    study_name: str
    artifact_dir: Path
    log_file: Path | None = None  # one JSON line per finished trial (checked, not yet opened)


def plan_search(
    config: StudyConfig,
    *,
    storage_url: str,
    study_name: str,
    artifact_dir: Path | None = None,
    workers: int | None = 1,
    devices: str | None = None,
    log_file: Path | None = None,
) -> SearchPlan:
    """Checks the storage URL, the study name, the output folders, workers and devices.

    Args:
        config: The study config.
        storage_url: The Optuna storage.
        study_name: The study.
        artifact_dir: The artifact store folder; None for the config's (else beside the
            SQLite file).
        workers: Worker processes sharing the study (>= 1); None for one per usable CPU core
            when training on the CPU (faster than one worker using every core: see
            benchmarks/RESULTS.md, workers vs threads), else one per device.
        devices: Comma-separated devices given to the workers in turn; None for the config's.
        log_file: A file to append one JSON line per finished trial to; checked here (so
            that a bad one stops the run before anything is written). :func:`run_search` does
            not write it: pass :class:`nin_search.summary.TrialLog` ``(study, plan.log_file)``
            its ``update`` as ``on_trial``/``on_poll``, as ``nin-search optimize`` does.

    Raises:
        UserError: For any input the user can fix.
    """
    check_storage_url(storage_url, must_exist=False)
    check_study_name(study_name)
    folder = artifact_dir_for(
        storage_url, str(artifact_dir) if artifact_dir else config.optuna.artifact_dir
    )
    # Checked before the study exists: a folder that cannot be written leaves nothing behind.
    check_artifact_folders(folder, study_name)
    if log_file is not None:
        check_outputs([("--log-file", log_file)], storage_url=storage_url, artifact_dir=folder)
    where = plan_workers(workers, devices, device=config.train.device)
    return SearchPlan(
        workers=where.workers,
        devices=where.devices,
        training_device=where.training_device,
        config=config,
        storage_url=storage_url,
        study_name=study_name,
        artifact_dir=folder,
        log_file=None if log_file is None else Path(log_file).expanduser(),
    )


def load_data(plan: SearchPlan) -> SearchData:
    """The search's train and validation splits, on :attr:`SearchPlan.load_device`."""
    return load_search_data(plan.config.data, device=plan.load_device)


@dataclass(frozen=True)
class OpenedSearch:
    """The study, ready to run, and what was recovered from earlier runs."""

    study: optuna.Study
    dead: list[int]  # trials of dead local workers, failed now
    requeued: list[int]  # interrupted trials queued again
    finished: int  # finished (completed + pruned) trials before this run
    stale: list[int] = field(default_factory=list)  # trials without heartbeats, failed and queued
    waiting: int = 0  # trials queued to run (retries, baselines) before this run


def open_search(plan: SearchPlan, data: SearchData) -> OpenedSearch:
    """Creates the study with the data's facts (or loads it, if its data is the same), forgets
    the weights entries of lost files, and fails and re-queues the trials that dead or stopped
    workers left."""
    study = open_study(
        plan.config, storage_url=plan.storage_url, study_name=plan.study_name, data_info=data.info()
    )
    make_artifact_store(plan.artifact_dir)
    forget_missing_weights(study, plan.artifact_dir)  # entries of lost files
    dead = fail_dead_local_trials(study)
    stale = fail_stale_trials(study)  # other machines' trials; Optuna's retry queues them
    requeued = requeue_interrupted(study)
    waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    return OpenedSearch(study, dead, requeued, len(finished_trials(study)), stale, waiting)


def _run_in_process(
    plan: SearchPlan,
    study: optuna.Study,
    data: SearchData,
    *,
    on_epoch: Callable[[optuna.Trial, Any], None] | None,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None,
) -> RunOutcome:
    config = plan.config
    make_artifact_store(plan.artifact_dir)
    handle_sigint()
    handle_sigterm()
    objective = Objective(
        config,
        data,
        artifact_dir=plan.artifact_dir,
        checkpoint_dir=checkpoint_dir_for(plan.artifact_dir, study.study_name),
        on_epoch=on_epoch,
    )
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = [
        KeepBestWeights(plan.artifact_dir, keep=config.study.keep_weights)
    ]
    callbacks += [on_trial] if on_trial is not None else []
    try:
        optimize(
            study,
            objective,
            n_trials=config.study.n_trials,
            timeout=config.study.timeout,
            callbacks=callbacks,
        )
    except KeyboardInterrupt as interrupt:
        return interrupted_outcome(study, interrupt)
    return RunOutcome(0)


def run_search(
    plan: SearchPlan,
    study: optuna.Study,
    data: SearchData,
    *,
    on_epoch: Callable[[optuna.Trial, Any], None] | None = None,
    on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    on_poll: Callable[[optuna.Study], None] | None = None,
) -> RunOutcome:
    """Runs the study's missing trials: in this process, or in ``plan.workers`` processes.

    Args:
        plan: The checked search.
        study: The opened study.
        data: The data (used in this process only).
        on_epoch: In this process, after every epoch of a trial.
        on_trial: In this process, after every trial.
        on_poll: With workers, about every second while they run.

    Returns:
        How the run ended (Ctrl-C, SIGTERM, a dead worker); a re-run resumes.
    """
    if plan.workers == 1:
        return _run_in_process(plan, study, data, on_epoch=on_epoch, on_trial=on_trial)
    return run_workers(
        study,
        plan.config.model_dump(mode="json"),
        storage_url=plan.storage_url,
        artifact_dir=plan.artifact_dir,
        quota=plan.config.study.n_trials - len(finished_trials(study)),
        workers=plan.workers,
        devices=list(plan.devices),
        on_poll=on_poll,
    )


def every_trial_failed(trials: list[FrozenTrial]) -> str | None:
    """The most common failure reason when every trial of a run failed, else None (a script
    must not go on after such a run)."""
    if not trials or any(trial.state in FINISHED_STATES for trial in trials):
        return None
    reasons = failure_summary(trials)
    return reasons[0][0] if reasons else None


def timeout_note(plan: SearchPlan, study: optuna.Study) -> str | None:
    """What to say when the run stopped at ``study.timeout`` (``--timeout``) short of
    ``study.n_trials`` finished trials; ``None`` otherwise."""
    timeout, target = plan.config.study.timeout, plan.config.study.n_trials
    finished = len(finished_trials(study))
    if timeout is None or finished >= target:
        return None
    return (
        f"stopped at the timeout ({timeout:g} s) with {finished} of {target} trials finished; "
        "run the same command again to go on"
    )
