"""Benchmark 3, pruning: the same digits study with the median and Hyperband pruners vs none.

Every study has the same TPE sampler seed, trial budget and search space (nin-search's default
digits study, 8 epochs a trial) and runs through nin-search's own API (``StudyConfig``,
``open_study`` on a temporary SQLite file, ``Objective``, ``optimize``). Pruned trials count as
trials. Reported: total epochs trained, best validation accuracy, wall time.

    .venv/bin/python benchmarks/pruning.py [--quick]

Ends with ``RESULT pruning <epochs without pruning / epochs with the best pruner>``, the best
pruner being the one with the fewest epochs among those whose best accuracy is within 0.5
points of no pruning (0 when none is). Target: >= 3 (a third of the epochs).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import (
    digits_study_config,
    epochs_trained,
    machine_line,
    print_result,
    print_table,
    run_digits_study,
    timed,
)
from optuna.trial import TrialState

from nin_search.data import load_search_data
from nin_search.devices import configure_cpu_threads

PRUNERS = ("none", "median", "hyperband", "successive-halving")
ACCURACY_TOLERANCE = 0.005  # 0.5 points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="narrower widths, 20 trials (< 1 min)")
    parser.add_argument("--trials", type=int, default=None, help="trials per study")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="share the cores as if this many trainers ran (torch threads = cores / workers); "
        "epochs and accuracy do not depend on it, and fewer threads survive a busy machine",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampler seed")
    args = parser.parse_args()
    configure_cpu_threads(args.workers)
    n_trials = args.trials or (20 if args.quick else 30)
    rows, epochs, best = [], {}, {}
    with tempfile.TemporaryDirectory() as folder:
        data = None
        for pruner in PRUNERS:
            config = digits_study_config(
                name=f"pruning-{pruner}",
                seed=args.seed,
                n_trials=n_trials,
                sampler="tpe",
                pruner=pruner,
                small=args.quick,
            )
            data = data or load_search_data(config.data, device="cpu")
            seconds, study = timed(
                lambda config=config, data=data: run_digits_study(config, data, Path(folder))
            )
            trials = study.get_trials(deepcopy=False)
            epochs[pruner], best[pruner] = epochs_trained(study), study.best_value
            pruned = sum(trial.state == TrialState.PRUNED for trial in trials)
            rows.append(
                [pruner, len(trials), pruned, epochs[pruner], f"{best[pruner]:.4f}", seconds]
            )
    for row in rows:
        pruner = row[0]
        row.insert(4, f"{epochs[pruner] / epochs['none']:.2f}")
        row.insert(6, f"{100 * (best[pruner] - best['none']):+.2f}")
        row[-1] = f"{row[-1]:.1f}"
    print(machine_line())
    print_table(
        f"Pruning on digits: TPE seed {args.seed}, {n_trials} trials of up to 8 epochs, CPU",
        [
            "pruner",
            "trials",
            "pruned",
            "epochs trained",
            "vs none",
            "best val acc",
            "Δ points",
            "seconds",
        ],
        rows,
    )
    within = [
        pruner
        for pruner in PRUNERS[1:]
        if best[pruner] >= best["none"] - ACCURACY_TOLERANCE - 1e-12
    ]
    saving = max((epochs["none"] / epochs[pruner] for pruner in within), default=0.0)
    print(
        "pruners within 0.5 points of no pruning: "
        + (", ".join(within) if within else "none")
        + f"; best epoch saving {saving:.2f}x"
    )
    print_result("pruning", saving)


if __name__ == "__main__":
    main()
