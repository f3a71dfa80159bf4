"""The paired ablation of a study's winner(s), as Optuna trials in a companion study: resolved,
planned and queued (:mod:`nin_search.ablation_plan`), then trained in this process or in
worker processes. A re-run after a crash or Ctrl-C trains only what did not finish (an
interrupted run continues from its last checkpoint).

``nin-search ablate`` as library steps, so that the command only parses, calls and prints::

    setup = setup_ablation(storage_url, study_name, study_file=config, workers=2)
    data = load_ablation_data(setup)
    prepared = prepare_ablation(setup.study, setup.config, data=data,
                                artifact_dir=setup.artifact_dir)
    outcome = run_queued_ablation(setup, prepared)

Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from nin_search import records
from nin_search.ablation_plan import (
    AblationPlan,
    load_ablation_study,
    open_ablation_study,
    plan_ablation,
    queue_ablation,
    source_trials,
)
from nin_search.artifacts import artifact_dir_for, check_artifact_folders, checkpoint_dir_for
from nin_search.config import DEFAULT_STORAGE, StudyConfig
from nin_search.data import SearchData, load_search_data
from nin_search.errors import UserError
from nin_search.interrupts import handle_sigint, handle_sigterm, held, raise_pending
from nin_search.objective import AblationObjective, EpochCallback
from nin_search.records import ablation_study_name
from nin_search.recovery import (
    RunOutcome,
    fail_stale_trials,
    stopped_outcome,
)
from nin_search.study import data_changes, load_searched_study
from nin_search.trials import recorded_study_config
from nin_search.workers import (
    WorkerPlan,
    WorkerSpec,
    exit_worker,
    plan_workers,
    run_workers,
    start_worker,
)

__all__ = [
    "AblationSetup",
    "PreparedAblation",
    "ablation_workers",
    "load_ablation_data",
    "prepare_ablation",
    "run_ablation",
    "run_ablation_in_workers",
    "run_ablation_worker",
    "run_queued_ablation",
    "search_still_running",
    "setup_ablation",
]


RERUN_NOTE = "finished ablation runs are kept; run the same command again to train only the rest"


def search_still_running(study: optuna.Study) -> list[int]:
    """Trials of ``study`` that other processes or machines still train (trials whose machine
    stopped sending heartbeats are failed and queued first): the winner may still change, so
    the ablation that follows a search waits for the last of them to finish."""
    fail_stale_trials(study)
    return [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]


def run_ablation(
    ablation: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    *,
    callbacks: Iterable[Callable[[optuna.Study, FrozenTrial], None]] = (),
    n_runs: int | None = None,
) -> RunOutcome:
    """Trains waiting ablation trials (one per queued job) in this process until none waits,
    or ``n_runs`` of them (one worker's share).

    Several processes or machines may run the same ablation at once: each takes the next
    waiting run, and each stops when the queue is empty (a run that two of them queued at once
    is trained once: :class:`~nin_search.objective.AblationObjective`). A trial that raises is
    recorded as failed with its reason and queued again by the next run; Ctrl-C and SIGTERM
    stop the run (the trial is failed and continues from its checkpoint next time).

    Returns:
        How the run ended: done, or stopped by Ctrl-C or SIGTERM (a re-run trains the rest).
    """
    waiting = len(ablation.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    if n_runs is not None:
        waiting = min(waiting, n_runs)
    if waiting == 0:
        return RunOutcome(0)
    handle_sigint()
    handle_sigterm()
    try:
        with held():  # Ctrl-C and SIGTERM never land in Optuna's bookkeeping
            ablation.optimize(
                objective, n_trials=waiting, catch=(Exception,),
                callbacks=[*callbacks, _stop_when_none_waits, raise_pending],
                gc_after_trial=False,
            )  # fmt: skip
    except KeyboardInterrupt as interrupt:
        return stopped_outcome(interrupt, RERUN_NOTE)
    return RunOutcome(0)


def _stop_when_none_waits(ablation: optuna.Study, trial: FrozenTrial) -> None:
    # Other processes take waiting runs too: asking for one more when none waits would make
    # Optuna create a trial that is no run.
    if not ablation.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        ablation.stop()


def run_ablation_worker(spec: WorkerSpec) -> None:
    """One ablation worker process: the study's data on its device, then its share
    (``spec.quota``) of the waiting runs of the companion study ``spec.study_name``."""
    exit_worker(lambda: _ablate(spec))


def _ablate(spec: WorkerSpec) -> None:
    config, data = start_worker(spec)
    with held():  # a signal must not land in SQLAlchemy's connect or dispose (interrupts)
        ablation = load_ablation_study(spec.storage_url, spec.study_name)
    checkpoints = checkpoint_dir_for(Path(spec.artifact_dir), spec.study_name)
    objective = AblationObjective(config, data, checkpoint_dir=checkpoints)
    outcome = run_ablation(ablation, objective, n_runs=spec.quota)
    if outcome.exit_code:
        raise SystemExit(outcome.exit_code)


def run_ablation_in_workers(
    setup: AblationSetup,
    ablation: optuna.Study,
    *,
    on_poll: Callable[[optuna.Study], None] | None = None,
) -> RunOutcome:
    """Trains the waiting runs of the companion study ``ablation`` in ``setup.workers``
    processes (at most one per run) on ``setup.devices`` and waits for them.

    The waiting runs are shared out as quotas that add up to their number, so that no worker
    asks for a run when none is left (it would get a trial that is no run). Each run trains
    with its own seed, so its result does not depend on which worker trains it, nor on how
    many runs were left: each worker has the threads of one of ``setup.workers`` workers.

    Args:
        setup: The resolved ablation (its config, storage, artifact folder, workers, devices).
        ablation: Its companion study, with the runs queued (:func:`prepare_ablation`).
        on_poll: Called about every second while the workers run, and once at the end.

    Returns:
        How the run ended: done, stopped by Ctrl-C or SIGTERM, or a worker died (a re-run
        trains the rest).
    """
    waiting = len(ablation.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    if waiting == 0:
        return RunOutcome(0)
    return run_workers(
        ablation,
        setup.config.model_dump(mode="json"),
        storage_url=setup.storage_url,
        artifact_dir=setup.artifact_dir,
        quota=waiting,
        workers=min(setup.workers, waiting),
        devices=list(setup.devices),
        on_poll=on_poll,
        entry=run_ablation_worker,
        requeue=False,  # the next run's queue_ablation queues what did not complete
        stopped_note=RERUN_NOTE,
        cpu_workers=setup.workers,  # threads as with a full queue: the same numbers
    )


def ablation_workers(setup: AblationSetup, plan: AblationPlan) -> int:
    """The worker processes that train the waiting runs: ``setup.workers``, at most one per
    run; 0 when ``setup.workers`` is 1 (the runs train in this process, on its data) or no run
    waits."""
    if setup.workers == 1 or plan.to_train == 0:
        return 0
    return min(setup.workers, plan.to_train)


def run_queued_ablation(
    setup: AblationSetup,
    prepared: PreparedAblation,
    *,
    callbacks: Iterable[Callable[[optuna.Study, FrozenTrial], None]] = (),
    on_poll: Callable[[optuna.Study], None] | None = None,
) -> RunOutcome:
    """Trains the runs :func:`prepare_ablation` queued: in this process (``callbacks`` after
    each run, and the objective's ``on_epoch``), or in :func:`ablation_workers` processes
    (``on_poll`` about every second)."""
    if ablation_workers(setup, prepared.plan) == 0:
        return run_ablation(prepared.study, prepared.objective, callbacks=callbacks)
    return run_ablation_in_workers(setup, prepared.study, on_poll=on_poll)


@dataclass(frozen=True)
class AblationSetup:
    """An ablation whose study, config and artifact folder are resolved, before anything is
    written or loaded."""

    study: optuna.Study  # the searched study (its companion study is written next to it)
    config: StudyConfig  # the search's config, with the study file's [ablation] and the device
    artifact_dir: Path
    storage_url: str  # the storage it resolved (for workers, and the commands messages suggest)
    where: WorkerPlan  # how many processes train the runs, on which devices

    @property
    def training_device(self) -> torch.device:
        return self.where.training_device

    @property
    def workers(self) -> int:
        return self.where.workers

    @property
    def devices(self) -> tuple[str, ...]:
        return self.where.devices


def setup_ablation(
    storage_url: str | None,
    study_name: str | None,
    *,
    study_file: StudyConfig | None = None,
    device: str | None = None,
    artifact_dir: Path | None = None,
    workers: int | None = 1,
    devices: str | None = None,
) -> AblationSetup:
    """Resolves what ``nin-search ablate`` works on: given values, else the study file's, else
    the defaults (the search's own recorded config for everything else).

    Args:
        storage_url: The storage; None for the study file's, else the default.
        study_name: The searched study; None for the study file's, else the storage's only one.
        study_file: The study file given (for its storage, name and ``[ablation]`` settings).
        device: Train on this device instead of the search's.
        artifact_dir: The artifact folder; None for the search's (else beside the database).
        workers: Processes that train the runs (:func:`nin_search.workers.plan_workers`;
            None for one per usable CPU core when training on the CPU, else one per device).
        devices: Comma-separated devices given to the workers in turn; None for the device.

    Raises:
        UserError: For a storage, study, device or worker count that cannot be used.
    """
    if storage_url is None:
        storage_url = study_file.optuna.storage if study_file else DEFAULT_STORAGE
    if study_name is None and study_file is not None:
        study_name = study_file.study.name
    study = load_searched_study(storage_url, study_name, read_only=False)  # writes its companion
    config = recorded_study_config(study, command="ablate")
    if study_file is not None:  # the file's [ablation] settings; the search's own config
        config = config.model_copy(update={"ablation": study_file.ablation})
    if device is not None:
        train = config.train.model_copy(update={"device": device})
        config = config.model_copy(update={"train": train})
    where = plan_workers(workers, devices, device=config.train.device)  # unusable ones stop here
    folder = artifact_dir_for(
        storage_url, str(artifact_dir) if artifact_dir else config.optuna.artifact_dir
    )
    return AblationSetup(study, config, folder, storage_url, where)


def load_ablation_data(setup: AblationSetup) -> SearchData:
    """The search's train and validation splits, on the training device (with several
    workers, on the CPU: each worker loads its own copy)."""
    return load_search_data(setup.config.data, device=setup.where.load_device)


class PreparedAblation(NamedTuple):
    """An ablation ready to run: the companion study with its jobs queued, and the objective."""

    study: optuna.Study  # the companion study
    plan: AblationPlan
    objective: AblationObjective
    sources: list[int]  # the ablated trial numbers


def prepare_ablation(
    study: optuna.Study,
    config: StudyConfig,
    *,
    data: SearchData,
    artifact_dir: Path,
    trial_number: int | None = None,
    top: int | None = None,
    seeds: int | None = None,
    on_epoch: EpochCallback | None = None,
) -> PreparedAblation:
    """Plans the ablation of ``study``'s best ``top`` trials (or of ``trial_number``) with
    ``seeds`` seeds each and queues what is not done yet. Every input is checked before the
    companion study is written.

    Args:
        study: The searched study.
        config: Its config (:func:`nin_search.trials.recorded_study_config`); ``top`` and
            ``seeds`` default to its ``ablation`` section.
        data: The study's train/validation split on the training device.
        artifact_dir: The study's artifact folder; checkpoints go beside it.
        trial_number: Ablate this trial instead of the best ones.
        top: Ablate the best ``top`` trials.
        seeds: Seeds per variant.
        on_epoch: Called after every epoch of every ablation trial.

    Raises:
        UserError: For a trial that cannot be ablated, data that is not the study's, or an
            artifact folder that cannot hold the checkpoints.
    """
    top = config.ablation.top if top is None else top
    seeds = config.ablation.seeds if seeds is None else seeds
    if top < 1 or seeds < 1:
        raise UserError(f"--top and --seeds must be >= 1, but got top={top}, seeds={seeds}")
    changes = data_changes(study.user_attrs.get(records.DATA), data.info())
    if changes:
        raise UserError(
            f"study {study.study_name!r} was searched on other data ({'; '.join(changes)}); "
            "ablate with the study's own data"
        )
    check_artifact_folders(artifact_dir, ablation_study_name(study.study_name))
    sources = source_trials(study, trial_number=trial_number, top=top)
    shape = {"in_channels": data.in_channels, "num_classes": data.num_classes}
    jobs = plan_ablation(sources, config, seeds=seeds, **shape)
    ablation = open_ablation_study(study)
    plan = queue_ablation(ablation, jobs, **shape)
    objective = AblationObjective(
        config,
        data,
        checkpoint_dir=checkpoint_dir_for(artifact_dir, ablation.study_name),
        on_epoch=on_epoch,
    )
    return PreparedAblation(ablation, plan, objective, [trial.number for trial in sources])
