"""Benchmark 5, storage: tiny trials per second written by 1 and 4 worker processes.

Each worker opens the study through ``nin_search.study.open_study`` (nin-search's storage
setup: SQLite timeout and WAL mode, heartbeats, stale-trial retry) and runs a trivial
objective (one ``suggest_float``) with the random sampler, so the storage is what is timed.
Workers start together (a barrier, after their imports); the clock runs from the barrier to
the last worker's exit. SQLite always; PostgreSQL when ``NIN_SEARCH_TEST_POSTGRES_URL`` is set.

    .venv/bin/python benchmarks/storage.py [--quick]

Ends with ``RESULT storage <SQLite trials/s with 4 workers / with 1 worker>``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
import uuid

import optuna
from _common import machine_line, print_result, print_table
from optuna.trial import TrialState

from nin_search.config import StudyConfig, StudySection
from nin_search.study import open_study

POSTGRES_ENV = "NIN_SEARCH_TEST_POSTGRES_URL"


def storage_config(name: str) -> StudyConfig:
    study: dict[str, object] = {"name": name}
    if "baselines" in StudySection.model_fields:
        study["baselines"] = False
    return StudyConfig.model_validate(
        {"study": study, "optuna": {"sampler": "random", "pruner": "none"}}
    )


def trivial(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 1.0) ** 2


def worker(url: str, name: str, n_trials: int, barrier) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(storage_config(name), storage_url=url, study_name=name)
    barrier.wait()
    study.optimize(trivial, n_trials=n_trials, gc_after_trial=False)


def measure(url: str, workers: int, trials_per_worker: int) -> tuple[int, float]:
    """Trials written and seconds, from the start barrier to the last worker's exit."""
    name = f"storage-{workers}-{uuid.uuid4().hex[:8]}"
    study = open_study(storage_config(name), storage_url=url, study_name=name)  # create it
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers + 1)
    processes = [
        context.Process(target=worker, args=(url, name, trials_per_worker, barrier))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    barrier.wait()
    started = time.perf_counter()
    for process in processes:
        process.join()
    seconds = time.perf_counter() - started
    if any(process.exitcode for process in processes):
        raise RuntimeError(f"a worker failed: exit codes {[p.exitcode for p in processes]}")
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not url.startswith("sqlite"):
        optuna.delete_study(study_name=name, storage=url)
    return len(complete), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials (< 1 min)")
    args = parser.parse_args()
    total = 80 if args.quick else 400  # trials per configuration
    rows, rate = [], {}
    with tempfile.TemporaryDirectory() as folder:
        backends = {"SQLite": lambda workers: f"sqlite:///{folder}/storage-{workers}.db"}
        if os.environ.get(POSTGRES_ENV):
            backends["PostgreSQL"] = lambda workers: os.environ[POSTGRES_ENV]
        for backend, url_for in backends.items():
            for workers in (1, 4):
                trials, seconds = measure(url_for(workers), workers, total // workers)
                rate[backend, workers] = trials / seconds
                ratio = rate[backend, workers] / rate[backend, 1]
                rows.append(
                    (backend, workers, trials, f"{seconds:.2f}", f"{trials / seconds:.1f}", ratio)
                )
    print(machine_line())
    print_table(
        "Storage: trivial trials through nin-search's storage setup (random sampler)",
        ["storage", "workers", "trials", "seconds", "trials/s", "vs 1 worker"],
        [(*row[:-1], f"{row[-1]:.2f}") for row in rows],
    )
    if not os.environ.get(POSTGRES_ENV):
        print(f"PostgreSQL: skipped ({POSTGRES_ENV} is not set)")
    print_result("storage", rate["SQLite", 4] / rate["SQLite", 1])


if __name__ == "__main__":
    main()
