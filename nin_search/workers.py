"""Several worker processes on one study: how many, on which devices, started and waited for.

* ``run_worker`` is one worker process: it loads the data onto its device, opens the study and
  runs its share of the trials. ``nin-search optimize --workers N`` starts N of them
  (``nin-search ablate --workers N`` starts N of :func:`nin_search.ablation.run_ablation_worker`).
* :func:`run_workers` starts them, forwards SIGTERM, waits, and turns their exit codes into a
  :class:`~nin_search.recovery.RunOutcome`, failing (and re-queuing) the trials of a worker
  that died (:mod:`nin_search.recovery`).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import sqlalchemy.exc

from nin_search.errors import (
    EXIT_DATABASE_LOST,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    UserError,
)
from nin_search.interrupts import handle_sigint, handle_sigterm, held
from nin_search.outputs import process_is_alive
from nin_search.recovery import (
    RunOutcome,
    fail_dead_local_trials,
    interrupt_exit_code,
    interrupted_trials,
    requeue_interrupted,
)
from nin_search.storage_messages import describe_lost_connection
from nin_search.worker_server import worker_context

if TYPE_CHECKING:
    import torch

    from nin_search.config import StudyConfig
    from nin_search.data import SearchData

__all__ = [
    "WorkerPlan",
    "WorkerSpec",
    "adopt_environment",
    "exit_worker",
    "plan_workers",
    "run_worker",
    "run_workers",
    "split_quota",
    "start_worker",
    "stop_with_commander",
]


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
    # The starting command's process: the worker stops when it is gone (None: never).
    commander_pid: int | None = None
    # Whether the command ignores SIGINT (a background job of a script): then so does the worker.
    sigint_ignored: bool = False


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

    # Forked from the fork server, which ignores both (nin_search.worker_server_signals):
    # Ctrl-C and SIGTERM stop this worker's trial with a reason.
    handle_sigint(ignored=spec.sigint_ignored)
    handle_sigterm()
    stop_with_commander(spec.commander_pid)
    quiet_optuna()  # a fresh process: the parent's warning filters are not inherited
    if spec.cpu_workers is None:
        torch.set_num_threads(1)  # the work runs on an accelerator
    else:
        configure_cpu_threads(spec.cpu_workers)  # honours the CPU affinity
    config = StudyConfig.model_validate(spec.config)
    return config, load_search_data(config.data, device=resolve_device(spec.device))


def stop_with_commander(pid: int | None) -> None:
    """Sends this worker SIGTERM once process ``pid`` (the command that started it) has
    ended: a command killed by SIGKILL or the OOM killer cannot stop its workers, which would
    otherwise go on training, their trials RUNNING under a live process that no re-run may
    fail, and use the cores a re-run needs. The stopped trial is failed like any SIGTERM's,
    and the next run retries it.

    A thread waits on a pidfd (Linux 5.3+: woken the moment ``pid`` exits); elsewhere it
    checks every second.
    """
    if pid is None:
        return

    def watch() -> None:
        try:
            descriptor = os.pidfd_open(pid)
        except (AttributeError, OSError):  # not Linux, an old kernel, or already gone
            while process_is_alive(pid):
                time.sleep(1.0)
        else:
            try:
                select.select([descriptor], [], [])
            finally:
                os.close(descriptor)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="nin-search-commander-watch", daemon=True).start()


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

    with held():  # a signal must not land in SQLAlchemy's connect or dispose (interrupts)
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
        _signal_alive(processes, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward_sigterm)
    return processes


def _signal_alive(processes: list[Any], signum: int) -> None:
    for process in processes:
        if process.is_alive():
            with contextlib.suppress(ProcessLookupError):  # it ended since
                os.kill(process.pid, signum)


def _workers_outcome(
    study: optuna.Study,
    codes: list[int | None],
    *,
    interrupted: bool,
    terminated: bool,
    pids: list[int] | None = None,
    requeue: bool = True,
    stopped_note: str | None = None,
) -> RunOutcome:
    """Stopped (Ctrl-C, SIGTERM), a worker died (1: its trials failed, and queued again when
    ``requeue``), or done (0).

    A SIGTERM this process received stops the run whatever the workers' codes say: sent to the
    whole process group, it also ends multiprocessing's fork server, after which the workers'
    codes read 255.
    """
    stopped = (EXIT_INTERRUPTED, EXIT_TERMINATED, -signal.SIGTERM)
    if interrupted or terminated or any(code in stopped for code in codes):
        code = EXIT_TERMINATED if terminated or EXIT_TERMINATED in codes else EXIT_INTERRUPTED
        if stopped_note is not None:
            how = "terminated" if code == EXIT_TERMINATED else "interrupted"
            return RunOutcome(code, f"{how}: {stopped_note}")
        return RunOutcome(
            code,
            f"workers stopped: {interrupted_trials(study)}run the same command again to "
            "resume the study",
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
    if requeue:
        requeue_interrupted(study)
    if not dead:
        what = " between trials (none was running)"
    else:
        what = f"; its trial(s) {dead} were failed" + (" and queued again" if requeue else "")
    rest = "finish the study" if requeue else "train them and the rest"
    return RunOutcome(
        1,
        f"worker exit codes {codes}: a worker died{what}; run the same command again to {rest}",
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
    stopped_note: str | None = None,
    cpu_workers: int | None = None,
) -> RunOutcome:
    """Runs ``quota`` trials of ``study`` in ``workers`` processes and waits for them.

    Args:
        study: The study, already created.
        config: The study config as JSON types (``StudyConfig.model_dump(mode="json")``).
        storage_url: The study's storage.
        artifact_dir: The artifact store folder.
        quota: Trials still to run, shared between the workers.
        workers: The number of worker processes (none is started beyond ``quota``: each
            would only load the data).
        devices: Given to the workers in turn. CPU-only workers share the cores.
        on_poll: Called about every second while the workers run, and once at the end.
        entry: What each process runs (a module-level function: it is pickled by name):
            :func:`run_worker` (a search), or :func:`nin_search.ablation.run_ablation_worker`.
        requeue: Queue the trials of a worker that died again with the same parameters
            (:func:`requeue_interrupted`); False where the next run queues them itself (the
            ablation: its queue is the plan).
        stopped_note: What a run that Ctrl-C or SIGTERM stopped says to do next; None for
            the search's (which trials were stopped, and that a re-run retries them).
        cpu_workers: The number of processes that share the CPU cores (each gets its share
            of threads); None for ``workers``. An ablation with fewer runs left than its
            ``--workers`` starts fewer processes, but each keeps one ``--workers``' share, so
            that a run's numbers do not depend on how many were left.

    Returns:
        The outcome; Ctrl-C reaches the workers too, and is waited for.
    """
    if quota <= 0:
        return RunOutcome(0)  # nothing to run: no process is started
    cpu_only = all(device.startswith("cpu") for device in devices)
    specs = [
        WorkerSpec(
            config=config,
            storage_url=storage_url,
            study_name=study.study_name,
            device=devices[index % len(devices)],
            cpu_workers=(cpu_workers or workers) if cpu_only else None,
            quota=share,
            artifact_dir=str(artifact_dir),
            worker_index=index,
            environment=dict(os.environ),
            commander_pid=os.getpid(),
            sigint_ignored=signal.getsignal(signal.SIGINT) == signal.SIG_IGN,
        )
        # No more processes than trials: one with nothing to do would only load the data.
        for index, share in enumerate(split_quota(quota, min(workers, quota)))
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
            # A terminal's Ctrl-C reached the workers too; `kill -INT` only this process. Each
            # worker acts on the first SIGINT and ignores the other (handle_sigint).
            interrupted = True
            _signal_alive(processes, signal.SIGINT)
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
        stopped_note=stopped_note,
    )
