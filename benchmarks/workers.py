"""Benchmark 9, workers vs threads on the CPU: 1 worker using every core vs 1 worker per core.

Each side runs the same study (the default digits study unless ``--study`` names another), with
the same sampler seeds, through the code ``nin-search optimize --workers N`` runs:
``plan_search``, ``load_data``, ``open_search``, ``run_search`` on a temporary SQLite file.

- ``1 worker x C threads``: trials in this process, torch using all C cores (``--workers 1``);
- ``C workers x 1 thread``: C spawned worker processes sharing the study, one thread each
  (``--workers C``; each process imports torch and loads the data itself, as it does for users).

The clock runs from loading the data to the last trial (what the user waits for); image
folders are decoded once before either side runs, so both read the same warm decode cache.
Reported per side, as means over seeds: finished trials per hour, epochs per hour (pruned
trials train fewer epochs, so this is the fairer throughput), best validation accuracy.

    .venv/bin/python benchmarks/workers.py [--quick] [--seeds N] [--study FILE]

Ends with ``RESULT workers <epochs per hour of C workers / of 1 worker>``: above 1, one worker
per core is faster. ``--workers`` defaults to the faster side (see benchmarks/RESULTS.md).

``--ablation`` measures the same choice for ``nin-search ablate``: per seed, one search in this
process, then the paired ablation of its winner (the study's ``ablation.seeds``) on a copy of
its database by each side, through the code ``ablate --workers N`` runs (``setup_ablation``,
``load_ablation_data``, ``prepare_ablation``, ``run_queued_ablation``); the clock runs from
loading the data to the last run. Every run is one fixed network and seed, so both sides train
the same runs; they differ only in the threads each run has. Ends with
``RESULT ablation_workers <seconds of 1 worker / of C workers>``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
from contextlib import closing
from pathlib import Path

import torch
from _common import epochs_trained, machine_line, print_result, print_table, timed

from nin_search.ablation import (
    load_ablation_data,
    prepare_ablation,
    run_queued_ablation,
    setup_ablation,
)
from nin_search.config import StudyConfig, default_config
from nin_search.data import load_search_data
from nin_search.search import load_data, open_search, plan_search, run_search
from nin_search.study_files import load_study_config
from nin_search.trials import finished_trials


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def study_config(base: StudyConfig, *, seed: int, name: str, n_trials: int | None) -> StudyConfig:
    update: dict[str, object] = {"seed": seed, "name": name}
    if n_trials is not None:
        update["n_trials"] = n_trials
    study = base.study.model_copy(update=update)
    train = base.train.model_copy(update={"device": "cpu"})
    return base.model_copy(update={"study": study, "train": train})


def run_side(config: StudyConfig, folder: Path, workers: int) -> tuple[float, dict[str, float]]:
    """Seconds from loading the data to the last trial, and what the study reached."""
    name = config.study.name
    plan = plan_search(
        config,
        storage_url=f"sqlite:///{folder / f'{name}.db'}",
        study_name=name,
        artifact_dir=folder / f"{name}-artifacts",
        workers=workers,
    )

    def search() -> object:
        data = load_data(plan)
        opened = open_search(plan, data)
        outcome = run_search(plan, opened.study, data)
        if outcome.exit_code:
            raise SystemExit(f"{name}: {outcome.message}")
        return opened.study

    elapsed, study = timed(search)
    return elapsed, {
        "trials": len(finished_trials(study)),
        "epochs": epochs_trained(study),
        "best": study.best_value,
    }


def run_ablation_side(searched: Path, name: str, workers: int) -> tuple[float, dict[str, float]]:
    """Seconds to ablate the winner of the study ``name`` in a copy of ``searched`` with
    ``workers`` processes, and the runs' mean validation accuracy."""
    database = searched.with_name(f"{searched.stem}-ablated-by-{workers}.db")
    # SQLite's backup copies what the search's open connection still holds in its WAL file.
    with closing(sqlite3.connect(searched)) as source, closing(sqlite3.connect(database)) as copy:
        source.backup(copy)

    def ablate() -> object:
        setup = setup_ablation(f"sqlite:///{database}", name, workers=workers)
        data = load_ablation_data(setup)
        prepared = prepare_ablation(
            setup.study, setup.config, data=data, artifact_dir=setup.artifact_dir
        )
        outcome = run_queued_ablation(setup, prepared)
        if outcome.exit_code:
            raise SystemExit(f"{name}: {outcome.message}")
        return prepared.study

    elapsed, ablation = timed(ablate)
    values = [trial.value for trial in ablation.get_trials(deepcopy=False)]
    if None in values:
        raise SystemExit(f"{name}: an ablation run did not complete")
    return elapsed, {"runs": len(values), "mean": statistics.mean(values)}


def ablation_main(args: argparse.Namespace, base: StudyConfig, seeds: int, cores: int) -> None:
    sides = {f"1 worker x {cores} threads": 1, f"{cores} workers x 1 thread": cores}
    results: dict[str, list[tuple[float, dict[str, float]]]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(seeds):
            torch.set_num_threads(cores)
            config = study_config(base, seed=seed, name=f"ablated-{seed}", n_trials=args.n_trials)
            run_side(config, Path(folder), 1)  # the search both sides ablate
            searched = Path(folder) / f"ablated-{seed}.db"
            order = list(sides.items()) if seed % 2 == 0 else list(sides.items())[::-1]
            for side, workers in order:
                torch.set_num_threads(cores)  # the in-process side uses every core
                results[side].append(run_ablation_side(searched, f"ablated-{seed}", workers))
    rows, seconds = [], {}
    for side, runs in results.items():
        seconds[side] = statistics.mean(elapsed for elapsed, _ in runs)
        rows.append(
            [
                side,
                f"{seconds[side]:.1f}",
                f"{statistics.mean(r['runs'] for _, r in runs):.0f}",
                f"{statistics.mean(r['runs'] * 3600 / elapsed for elapsed, r in runs):,.0f}",
                " ".join(f"{elapsed:.1f}" for elapsed, _ in runs),
                " ".join(f"{r['mean']:.4f}" for _, r in runs),
            ]
        )
    print(machine_line())
    print_table(
        f"Ablation, workers vs threads: study {base.study.name!r}, the winners of seeds "
        f"0..{seeds - 1}, {base.ablation.seeds} seeds a variant, means over seeds",
        ["side", "seconds", "runs", "runs/hour", "seconds per seed", "mean run val acc"],
        rows,
    )
    one, many = seconds.values()
    print_result("ablation_workers", one / many)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed (~2 min)")
    parser.add_argument("--seeds", type=int, default=3, help="sampler seeds 0..N-1")
    parser.add_argument("--study", default=None, help="a study file (default: the digits study)")
    parser.add_argument("--n-trials", type=int, default=None, help="override study.n_trials")
    parser.add_argument(
        "--ablation", action="store_true", help="time `ablate` instead of `optimize`"
    )
    args = parser.parse_args()
    seeds = 1 if args.quick else args.seeds
    base = load_study_config(args.study) if args.study else default_config()
    cores = usable_cores()
    if args.ablation:
        load_search_data(base.data, device="cpu")  # fills the decode cache: no side pays for it
        ablation_main(args, base, seeds, cores)
        return
    sides = {f"1 worker x {cores} threads": 1, f"{cores} workers x 1 thread": cores}
    results: dict[str, list[tuple[float, dict[str, float]]]] = {side: [] for side in sides}
    load_search_data(base.data, device="cpu")  # fills the decode cache: no side pays for it
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(seeds):
            # Alternate which side goes first: a shared machine's load drifts.
            order = list(sides.items()) if seed % 2 == 0 else list(sides.items())[::-1]
            for side, workers in order:
                torch.set_num_threads(cores)  # the in-process side uses every core
                config = study_config(
                    base, seed=seed, name=f"workers-{workers}-{seed}", n_trials=args.n_trials
                )
                results[side].append(run_side(config, Path(folder), workers))
    rows, per_hour = [], {}
    for side, runs in results.items():
        hours = [elapsed / 3600 for elapsed, _ in runs]
        trials_rate = statistics.mean(
            r["trials"] / h for h, (_, r) in zip(hours, runs, strict=True)
        )
        epochs_rate = statistics.mean(
            r["epochs"] / h for h, (_, r) in zip(hours, runs, strict=True)
        )
        per_hour[side] = epochs_rate
        best = [r["best"] for _, r in runs]
        rows.append(
            [
                side,
                f"{statistics.mean(elapsed for elapsed, _ in runs):.1f}",
                f"{statistics.mean(r['trials'] for _, r in runs):.0f}",
                f"{trials_rate:,.0f}",
                f"{epochs_rate:,.0f}",
                f"{statistics.mean(best):.4f}",
                " ".join(f"{value:.4f}" for value in best),
            ]
        )
    print(machine_line())
    print_table(
        f"Workers vs threads: study {base.study.name!r}, seeds 0..{seeds - 1}, means over seeds",
        ["side", "seconds", "trials", "trials/hour", "epochs/hour", "best val acc", "per seed"],
        rows,
    )
    one, many = per_hour.values()
    print_result("workers", many / one)


if __name__ == "__main__":
    main()
