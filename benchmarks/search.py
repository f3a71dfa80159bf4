"""Benchmark 4, search: TPE vs random sampling at an equal trial budget, over several seeds.

nin-search's default digits study (median pruner, 8 epochs a trial) through its own API,
once per sampler and seed; reported: mean ± std over seeds of the best validation accuracy.

    .venv/bin/python benchmarks/search.py [--quick]

Ends with ``RESULT search <mean best error of random / mean best error of TPE>`` (> 1: TPE
found better architectures within the budget).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from _common import (
    digits_study_config,
    epochs_trained,
    machine_line,
    print_result,
    print_table,
    run_digits_study,
    summary,
    timed,
)

from nin_search.data import load_search_data
from nin_search.devices import configure_cpu_threads

SAMPLERS = ("tpe", "random")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="narrower widths, 16 trials (about 1 min)"
    )
    parser.add_argument("--trials", type=int, default=None, help="trials per study")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="share the cores as if this many trainers ran (torch threads = cores / workers); "
        "epochs and accuracy do not depend on it, and fewer threads survive a busy machine",
    )
    parser.add_argument("--seeds", type=int, default=3, help="sampler seeds 0..N-1")
    args = parser.parse_args()
    configure_cpu_threads(args.workers)
    n_trials = args.trials or (16 if args.quick else 30)
    seeds = range(args.seeds)
    best: dict[str, list[float]] = {sampler: [] for sampler in SAMPLERS}
    epochs: dict[str, list[int]] = {sampler: [] for sampler in SAMPLERS}
    seconds: dict[str, float] = dict.fromkeys(SAMPLERS, 0.0)
    with tempfile.TemporaryDirectory() as folder:
        data = None
        for seed in seeds:
            for sampler in SAMPLERS:
                config = digits_study_config(
                    name=f"search-{sampler}-{seed}",
                    seed=seed,
                    n_trials=n_trials,
                    sampler=sampler,
                    pruner="median",
                    small=args.quick,
                )
                data = data or load_search_data(config.data, device="cpu")
                elapsed, study = timed(
                    lambda config=config, data=data: run_digits_study(config, data, Path(folder))
                )
                best[sampler].append(study.best_value)
                epochs[sampler].append(epochs_trained(study))
                seconds[sampler] += elapsed
    print(machine_line())
    print_table(
        f"Search on digits: {n_trials} trials per study, seeds {list(seeds)}, median pruner, CPU",
        ["sampler", "best val acc (mean ± std)", "per seed", "epochs (mean)", "seconds"],
        [
            (
                sampler,
                summary(best[sampler]),
                " ".join(f"{value:.4f}" for value in best[sampler]),
                f"{statistics.mean(epochs[sampler]):.0f}",
                f"{seconds[sampler]:.1f}",
            )
            for sampler in SAMPLERS
        ],
    )
    error = {sampler: 1 - statistics.mean(best[sampler]) for sampler in SAMPLERS}
    ratio = error["random"] / max(error["tpe"], 1e-9)
    print(f"mean best error: TPE {error['tpe']:.4f}, random {error['random']:.4f}")
    print_result("search", ratio)


if __name__ == "__main__":
    main()
