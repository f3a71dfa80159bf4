"""Several workers on one study, and recovery from workers that died or were stopped.

* ``run_worker`` is one worker process: it loads the data onto its device, opens the study and
  runs its share of the trials. ``nin-search optimize --workers N`` starts N of them
  (``nin-search ablate --workers N`` starts N of :func:`nin_search.ablation.run_ablation_worker`).
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
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import sqlalchemy.exc
from optuna.trial import FrozenTrial, TrialState

from nin_search.compat import optuna_fail_reason, optuna_retried_trial, storage_of, trial_id_of
from nin_search.config import MAX_RETRY
from nin_search.errors import (
    EXIT_DATABASE_LOST,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    UserError,
)
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
from nin_search.storage import describe_lost_connection
from nin_search.worker_server import worker_context

if TYPE_CHECKING:
    import torch

    from nin_search.config import StudyConfig
    from nin_search.data import SearchData

__all__ = [
    "RunOutcome",
    "Terminated",
    "WorkerPlan",
    "WorkerSpec",
    "adopt_environment",
    "exit_worker",
    "fail_dead_local_trials",
    "fail_stale_trials",
    "failure_summary",
    "handle_sigterm",
    "interrupt_exit_code",
    "interrupted_outcome",
    "plan_workers",
    "requeue_interrupted",
    "run_worker",
    "run_workers",
    "split_quota",
    "start_worker",
    "stopped_outcome",
]


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM."""


def handle_sigterm() -> None:
    """Turns SIGTERM into :class:`Terminated` in this process, once: a second SIGTERM (a
    worker gets one from ``kill -TERM -PGID``, systemd or Slurm, and one forwarded by its
    parent) is ignored, so that it cannot cut short the recording of the stopped trial."""

    def raise_terminated(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # on its way out already
        raise Terminated()

    signal.signal(signal.SIGTERM, raise_terminated)


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
    cpu_workers: int | None  # workers sharing this machine's cores; None: one thread each
    quota: int
    artifact_dir: str
    worker_index: int = 0
    # The starting command's environment: a worker forked from the fork server would otherwise
    # see the server's, from when it started.
    environment: dict[str, str] | None = None


@dataclass(frozen=True)
class WorkerPlan:
    """How many processes train, and on which devices."""

    workers: int
    devices: tuple[str, ...]  # given to the workers in turn
    training_device: torch.device  # the first device (this process's, with one worker)

    @property
    def load_device(self) -> torch.device | str:
        """Where this process puts the data: with several workers each loads its own copy,
        and this process only needs the data's shape."""
        return self.training_device if self.workers == 1 else "cpu"


def plan_workers(workers: int | None, devices: str | None, *, device: str) -> WorkerPlan:
    """Checks ``--workers`` and ``--devices`` and fills in their defaults.

    Args:
        workers: Worker processes (>= 1); None for one per usable CPU core when training on
            the CPU (faster than one process using every core: see benchmarks/RESULTS.md,
            workers vs threads), else one per device.
        devices: Comma-separated devices given to the workers in turn; None for ``device``.
        device: The study's training device.

    Raises:
        UserError: For a worker count below 1, an empty device entry or a device this machine
            does not have.
    """
    from nin_search.devices import resolve_device, usable_cpu_cores

    if workers is not None and workers < 1:
        raise UserError(f"--workers must be >= 1, but got {workers}")
    names = [name.strip() for name in devices.split(",")] if devices is not None else []
    if devices is not None and not all(names):
        raise UserError(
            f"--devices {devices!r} has an empty entry; pass device names between the commas, "
            "e.g. cuda:0,cuda:1 or cpu"
        )
    for name in names:
        resolve_device(name)
    training_device = resolve_device(names[0] if names else device)
    if workers is None:
        workers = usable_cpu_cores() if training_device.type == "cpu" else max(1, len(names))
    return WorkerPlan(workers, tuple(names) or (str(training_device),), training_device)


def adopt_environment(environment: dict[str, str] | None) -> None:
    """Makes this process's environment ``environment`` (None: leaves it as it is)."""
    if environment is not None and environment != os.environ:
        os.environ.clear()
        os.environ.update(environment)


def start_worker(spec: WorkerSpec) -> tuple[StudyConfig, SearchData]:
    """What a worker process does first: the starting command's environment, SIGTERM as an
    interrupt, its share of the CPU threads, then the study's data on its device.

    Returns:
        The study config and the data, on the worker's device.
    """
    adopt_environment(spec.environment)
    import torch

    from nin_search.config import StudyConfig
    from nin_search.data import load_search_data
    from nin_search.devices import configure_cpu_threads, resolve_device
    from nin_search.study import quiet_optuna

    handle_sigterm()
    quiet_optuna()  # a fresh process: the parent's warning filters are not inherited
    if spec.cpu_workers is None:
        torch.set_num_threads(1)  # the work runs on an accelerator
    else:
        configure_cpu_threads(spec.cpu_workers)  # honours the CPU affinity
    config = StudyConfig.model_validate(spec.config)
    return config, load_search_data(config.data, device=resolve_device(spec.device))


def exit_worker(work: Callable[[], None]) -> None:
    """Runs a worker process's whole ``work`` (:func:`start_worker` first); Ctrl-C, SIGTERM
    and a lost database server end the process with the exit code the starting command
    explains, without a traceback, whenever they come (a SIGTERM may reach a worker still
    importing or loading its data)."""
    try:
        work()
    except KeyboardInterrupt as interrupt:
        raise SystemExit(interrupt_exit_code(interrupt)) from None
    except Exception as error:  # the server went away: a code the command explains, no traceback
        if describe_lost_connection(error) is None:
            raise
        raise SystemExit(EXIT_DATABASE_LOST) from None


def run_worker(spec: WorkerSpec) -> None:
    """One search worker process: data on its device, then its share of the study's trials."""
    exit_worker(lambda: _search(spec))


def _search(spec: WorkerSpec) -> None:
    config, data = start_worker(spec)
    from nin_search.artifacts import KeepBestWeights, checkpoint_dir_for, make_artifact_store
    from nin_search.objective import Objective
    from nin_search.study import open_study, optimize

    study = open_study(
        config,
        storage_url=spec.storage_url,
        study_name=spec.study_name,
        worker_index=spec.worker_index,
    )
    artifact_dir = Path(spec.artifact_dir)
    make_artifact_store(artifact_dir)
    objective = Objective(
        config,
        data,
        artifact_dir=artifact_dir,
        checkpoint_dir=checkpoint_dir_for(artifact_dir, spec.study_name),
    )
    optimize(
        study,
        objective,
        n_trials=config.study.n_trials,
        quota=spec.quota,
        timeout=config.study.timeout,
        callbacks=[KeepBestWeights(artifact_dir, keep=config.study.keep_weights)],
    )


@dataclass(frozen=True)
class RunOutcome:
    """How a search run ended, for the command's exit code."""

    exit_code: int  # 0: finished; 1: a worker died; EXIT_INTERRUPTED; EXIT_TERMINATED
    message: str | None = None  # what to tell the user when the run stopped early


def _interrupted_trials(study: optuna.Study) -> str:
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
        f"{_interrupted_trials(study)}run the same command again to resume the study",
    )


def stopped_outcome(interrupt: KeyboardInterrupt, what_next: str) -> RunOutcome:
    """The outcome of a run that Ctrl-C or SIGTERM stopped, with what to do next."""
    code = interrupt_exit_code(interrupt)
    return RunOutcome(
        code, f"{'terminated' if code == EXIT_TERMINATED else 'interrupted'}: {what_next}"
    )


def _start_workers(
    specs: list[WorkerSpec], terminated: list[int], entry: Callable[[WorkerSpec], None]
) -> list[Any]:
    """One process per spec running ``entry`` (forked from the fork server, or spawned:
    ``worker_context``); SIGTERM to this process is forwarded to each, and noted in
    ``terminated``."""
    context = worker_context()
    processes = []
    for spec in specs:
        process = context.Process(
            target=entry, args=(spec,), name=f"nin-search-worker-{spec.worker_index}"
        )
        process.start()
        processes.append(process)

    def forward_sigterm(signum: int, frame: Any) -> None:
        terminated.append(signum)
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward_sigterm)
    return processes


def _workers_outcome(
    study: optuna.Study,
    codes: list[int | None],
    *,
    interrupted: bool,
    terminated: bool,
    pids: list[int] | None = None,
    requeue: bool = True,
) -> RunOutcome:
    """Stopped (Ctrl-C, SIGTERM), a worker died (1: its trials failed, and queued again when
    ``requeue``), or done (0).

    A SIGTERM this process received stops the run whatever the workers' codes say: sent to the
    whole process group, it also ends multiprocessing's fork server, after which the workers'
    codes read 255.
    """
    stopped = (EXIT_INTERRUPTED, EXIT_TERMINATED, -signal.SIGTERM)
    if interrupted or terminated or any(code in stopped for code in codes):
        what_next = (
            f"{_interrupted_trials(study)}run the same command again to resume the study"
            if requeue
            else "finished trials are kept; run the same command again to train only the rest"
        )
        return RunOutcome(
            EXIT_TERMINATED if terminated or EXIT_TERMINATED in codes else EXIT_INTERRUPTED,
            f"workers stopped: {what_next}",
        )
    if all(code == 0 for code in codes):
        return RunOutcome(0)
    exit_codes = dict(zip(pids, codes, strict=True)) if pids is not None else None
    if EXIT_DATABASE_LOST in codes:
        with contextlib.suppress(
            sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError
        ):
            fail_dead_local_trials(study, exit_codes)  # if the server is back; else the next run
            if requeue:
                requeue_interrupted(study)
        return RunOutcome(
            1,
            f"worker exit codes {codes}: {EXIT_DATABASE_LOST} is a worker that lost the "
            "connection to the database server; once it is back, run the same command again: "
            "it resumes the study, and the trials that were running are failed and queued again",
        )
    dead = fail_dead_local_trials(study, exit_codes)
    if not requeue:
        return RunOutcome(
            1,
            f"worker exit codes {codes}: a worker died; its trial(s) {dead} were failed; run "
            "the same command again to train them and the rest",
        )
    requeue_interrupted(study)
    return RunOutcome(
        1,
        f"worker exit codes {codes}: a worker died; its trial(s) {dead} were failed and "
        "queued again; run the same command again to finish the study",
    )


def run_workers(
    study: optuna.Study,
    config: dict[str, Any],
    *,
    storage_url: str,
    artifact_dir: Path,
    quota: int,
    workers: int,
    devices: list[str],
    on_poll: Callable[[optuna.Study], None] | None = None,
    entry: Callable[[WorkerSpec], None] = run_worker,
    requeue: bool = True,
) -> RunOutcome:
    """Runs ``quota`` trials of ``study`` in ``workers`` processes and waits for them.

    Args:
        study: The study, already created.
        config: The study config as JSON types (``StudyConfig.model_dump(mode="json")``).
        storage_url: The study's storage.
        artifact_dir: The artifact store folder.
        quota: Trials still to run, shared between the workers.
        workers: The number of worker processes.
        devices: Given to the workers in turn. CPU-only workers share the cores.
        on_poll: Called about every second while the workers run, and once at the end.
        entry: What each process runs (a module-level function: it is pickled by name):
            :func:`run_worker` (a search), or :func:`nin_search.ablation.run_ablation_worker`.
        requeue: Queue the trials of a worker that died again with the same parameters
            (:func:`requeue_interrupted`); False where the next run queues them itself (the
            ablation: its queue is the plan).

    Returns:
        The outcome; Ctrl-C reaches the workers too, and is waited for.
    """
    cpu_only = all(device.startswith("cpu") for device in devices)
    specs = [
        WorkerSpec(
            config=config,
            storage_url=storage_url,
            study_name=study.study_name,
            device=devices[index % len(devices)],
            cpu_workers=workers if cpu_only else None,
            quota=share,
            artifact_dir=str(artifact_dir),
            worker_index=index,
            environment=dict(os.environ),
        )
        for index, share in enumerate(split_quota(quota, workers))
    ]
    terminated: list[int] = []
    processes = _start_workers(specs, terminated, entry)
    interrupted = False
    while any(process.is_alive() for process in processes):
        try:
            if on_poll is not None:
                on_poll(study)
            time.sleep(1.0)
        except KeyboardInterrupt:
            interrupted = True  # Ctrl-C reached the workers too; wait for them
    if on_poll is not None:
        on_poll(study)
    for process in processes:
        process.join()
    codes = [process.exitcode for process in processes]
    return _workers_outcome(
        study,
        codes,
        interrupted=interrupted,
        terminated=bool(terminated),
        pids=[process.pid for process in processes],
        requeue=requeue,
    )
