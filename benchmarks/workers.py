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
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import torch
from _common import epochs_trained, machine_line, print_result, print_table, timed

from nin_search.config import StudyConfig, default_config, load_study_config
from nin_search.data import load_search_data
from nin_search.search import load_data, open_search, plan_search, run_search
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed (~2 min)")
    parser.add_argument("--seeds", type=int, default=3, help="sampler seeds 0..N-1")
    parser.add_argument("--study", default=None, help="a study file (default: the digits study)")
    parser.add_argument("--n-trials", type=int, default=None, help="override study.n_trials")
    args = parser.parse_args()
    seeds = 1 if args.quick else args.seeds
    base = load_study_config(args.study) if args.study else default_config()
    cores = usable_cores()
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
