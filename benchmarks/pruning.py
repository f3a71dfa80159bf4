"""Benchmark 3, pruning: nin-search's default digits study with and without pruning, 3 seeds.

Each side is the default digits study (``nin-search optimize`` with no study file: 30 trials of
up to 8 epochs, both baseline trials, 20 random trials then TPE) with only the pruning changed:
no pruner; the default study as it ships; and the other pruners, judging random trials too.
Every side runs the same sampler seeds through nin-search's own API (``open_study`` on a
temporary SQLite file, ``Objective``, ``optimize``); pruned trials count as trials. Reported per
side, as the mean over seeds: epochs trained, best validation accuracy, wall time.

    .venv/bin/python benchmarks/pruning.py [--quick] [--seeds N]

Ends with ``RESULT pruning <mean epochs without pruning / mean epochs of the default study>``
when the default's mean best accuracy is within 0.5 points of no pruning (0 when it is not).
Target: >= 3 (a third of the epochs).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from _common import epochs_trained, machine_line, print_result, print_table, run_digits_study, timed
from optuna.trial import TrialState

from nin_search.config import StudyConfig, default_config
from nin_search.data import load_search_data
from nin_search.devices import configure_cpu_threads

ACCURACY_TOLERANCE = 0.005  # 0.5 points
DEFAULT = "default study"


def sides() -> dict[str, StudyConfig]:
    """Side name -> the default study with that pruning."""
    base = default_config()

    def variant(pruner: str, *, prune_random_trials: bool, **options: float) -> StudyConfig:
        study = base.study.model_copy(update={"prune_random_trials": prune_random_trials})
        update = {"pruner": pruner, "pruner_options": options}
        optuna_section = base.optuna.model_copy(update=update)
        return base.model_copy(update={"study": study, "optuna": optuna_section})

    def percentile(value: float, startup: int = 2) -> StudyConfig:
        """The percentile pruner from the first epoch on, random trials judged."""
        return variant(
            "percentile",
            prune_random_trials=True,
            percentile=value,
            n_warmup_steps=0,
            n_startup_trials=startup,
        )

    return {
        "none": variant("none", prune_random_trials=False),
        DEFAULT: base,
        # The default until 2026-11-28: median, 5 startup trials, 2 warm-up epochs.
        "median (random trials in full)": variant("median", prune_random_trials=False),
        "median": variant("median", prune_random_trials=True),
        "hyperband": variant("hyperband", prune_random_trials=True),
        "successive-halving": variant("successive-halving", prune_random_trials=True),
        "successive-halving (reduction 4)": variant(
            "successive-halving", prune_random_trials=True, reduction_factor=4
        ),
        "hyperband (reduction 4)": variant(
            "hyperband", prune_random_trials=True, reduction_factor=4
        ),
        "median (no warm-up)": variant(
            "median", prune_random_trials=True, n_warmup_steps=0, n_startup_trials=2
        ),
        "percentile 25 (random trials in full)": variant(
            "percentile", prune_random_trials=False, percentile=25.0
        ),
        # The default from 2026-11-28 to 2026-12-03 (percentile 10 since).
        "percentile 25 (no warm-up)": percentile(25.0),
        "percentile 10 (no warm-up)": percentile(10.0),  # = the default since 2026-12-03
        "percentile 20 (no warm-up)": percentile(20.0),
        "successive-halving (reduction 8)": variant(
            "successive-halving", prune_random_trials=True, reduction_factor=8
        ),
        "percentile 25 (5 startup trials)": percentile(25.0, startup=5),
    }


def with_seed(config: StudyConfig, seed: int, name: str, small: bool) -> StudyConfig:
    study = config.study.model_copy(update={"seed": seed, "name": name})
    train = config.train.model_copy(update={"device": "cpu"})
    space = config.space
    if small:  # --quick: narrower widths, faster trials; the same pruning decisions to make
        space = space.model_copy(update={"widths": [8, 16], "mlp_widths": [8, 16]})
    return config.model_copy(update={"study": study, "train": train, "space": space})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="narrower widths (~3 min)")
    parser.add_argument("--seeds", type=int, default=3, help="sampler seeds 0..N-1")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="share the cores as if this many trainers ran (torch threads = cores / workers); "
        "epochs and accuracy do not depend on it, and fewer threads survive a busy machine",
    )
    parser.add_argument(
        "--only", default=None, help="comma-separated sides besides none and the default study"
    )
    args = parser.parse_args()
    configure_cpu_threads(args.workers)
    configs = sides()
    if args.only:
        keep = {"none", DEFAULT, *args.only.split(",")}
        configs = {name: config for name, config in configs.items() if name in keep}
    default = configs[DEFAULT]
    epochs: dict[str, list[int]] = {name: [] for name in configs}
    best: dict[str, list[float]] = {name: [] for name in configs}
    pruned: dict[str, list[int]] = {name: [] for name in configs}
    seconds: dict[str, float] = dict.fromkeys(configs, 0.0)
    data = load_search_data(default.data, device="cpu")
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):
            for index, (name, config) in enumerate(configs.items()):
                study_name = f"pruning-{index}-{seed}"
                config = with_seed(config, seed, study_name, args.quick)
                elapsed, study = timed(
                    lambda config=config: run_digits_study(config, data, Path(folder))
                )
                trials = study.get_trials(deepcopy=False)
                epochs[name].append(epochs_trained(study))
                best[name].append(study.best_value)
                pruned[name].append(sum(trial.state == TrialState.PRUNED for trial in trials))
                seconds[name] += elapsed
    none_epochs, none_best = statistics.mean(epochs["none"]), statistics.mean(best["none"])
    rows = []
    for name in configs:
        mean_epochs, mean_best = statistics.mean(epochs[name]), statistics.mean(best[name])
        rows.append(
            [
                name,
                f"{statistics.mean(pruned[name]):.1f}",
                f"{mean_epochs:.0f}",
                f"{none_epochs / mean_epochs:.2f}x",
                f"{mean_best:.4f}",
                " ".join(f"{value:.4f}" for value in best[name]),
                f"{100 * (mean_best - none_best):+.2f}",
                f"{seconds[name] / args.seeds:.1f}",
            ]
        )
    print(machine_line())
    print(
        f"default study: pruner {default.optuna.pruner!r}, "
        f"prune_random_trials = {default.study.prune_random_trials}"
    )
    print_table(
        f"Pruning on the default digits study: {default.study.n_trials} trials of up to "
        f"{default.train.epochs} epochs, seeds 0..{args.seeds - 1}, means over seeds, CPU",
        [
            "side",
            "pruned",
            "epochs",
            "saving",
            "best val acc",
            "per seed",
            "Δ points",
            "seconds",
        ],
        rows,
    )
    default_best = statistics.mean(best[DEFAULT])
    within = default_best >= none_best - ACCURACY_TOLERANCE - 1e-12
    saving = none_epochs / statistics.mean(epochs[DEFAULT])
    print(
        f"default study: {saving:.2f}x fewer epochs, best accuracy "
        f"{100 * (default_best - none_best):+.2f} points vs no pruning "
        f"({'within' if within else 'NOT within'} 0.5 points)"
    )
    print_result("pruning", saving if within else 0.0)


if __name__ == "__main__":
    main()
