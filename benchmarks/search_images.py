"""Benchmark: search efficiency on real images (cifar10-mini), at an equal wall-clock budget.

Three searches of the same space (``studies/cifar10-mini-quick.toml``: 16x16 images, 4 epochs a
trial, median pruner), each a fresh process given the same budget, per seed:

* ``nin-search tpe``: ``nin-search optimize`` on that study with TPE from the first trial
  (``random_trials = 0``), its decode cache empty (the first decode counts);
* ``nin-search random``: the same with ``sampler = "random"``;
* ``plain optuna``: ``benchmarks/plain_optuna_imagefolder.py``, the script a user writes without
  nin-search (ImageFolder + DataLoader + TPE + median pruner).

A trial counts when it finished within the budget, measured from the process start. Reported:
trials finished, best validation accuracy, the seconds until the all-plain baseline's accuracy
was first beaten (the nin-search sides enqueue that baseline as trial 0), and the seconds each of
``nin-search tpe`` and ``plain optuna`` needed to reach the accuracy both reached.

    .venv/bin/python benchmarks/search_images.py [--quick] [--budget S] [--seeds N] \
        [--first-seed K] [--sides "nin-search tpe,plain optuna"]

Ends with ``RESULT search_images <mean best error of random / of TPE>`` and ``RESULT
vs_plain_optuna <geometric mean over seeds of plain seconds / nin-search seconds to the common
accuracy>`` (target >= 3), with the 95% t-interval of that geometric mean over seeds; each only
when its two sides ran.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import plain_optuna_imagefolder as plain_script
from _common import (
    CIFAR10_MINI,
    REPO,
    geometric_mean_interval,
    machine_line,
    paired_summary,
    print_result,
    print_table,
    same_validation_images,
)

from nin_search.config import load_study_config

SIDES = ("nin-search tpe", "nin-search random", "plain optuna")


@dataclass(frozen=True)
class Run:
    """One search: (seconds since the process started, accuracy) per trial finished within the
    budget (0 for a pruned one), and the all-plain baseline's accuracy (nin-search sides)."""

    finished: list[tuple[float, float]]
    plain_baseline: float | None
    complete_seconds: list[float]  # start to end of each trial trained for every epoch

    def best(self) -> float:
        return max((accuracy for _, accuracy in self.finished), default=0.0)

    def seconds_to(self, target: float) -> float:
        """When a trial first reached ``target`` (inf when none did)."""
        return min((at for at, accuracy in self.finished if accuracy >= target), default=math.inf)


def study_file(folder: Path, sampler: str) -> Path:
    path = folder / f"{sampler}.toml"
    quick = (REPO / "studies" / "cifar10-mini-quick.toml").read_text()
    quick = quick.replace('"../../shared/data/cifar10-mini"', f'"{CIFAR10_MINI}"')
    quick = quick.replace("random_trials = 24", "random_trials = 0")
    quick = quick.replace("n_trials = 30", "n_trials = 100000")
    quick = quick.replace("after_search = true", "after_search = false")
    quick = quick.replace('pruner = "median"', f'pruner = "median"\nsampler = "{sampler}"')
    path.write_text(quick)
    return path


def command(side: str, folder: Path, seed: int, budget: float) -> tuple[list[str], str, str]:
    slug = side.replace(" ", "-")
    storage = f"sqlite:///{folder / f'{slug}-{seed}.db'}"
    if side == "plain optuna":
        script = str(REPO / "benchmarks" / "plain_optuna_imagefolder.py")
        argv = [sys.executable, script, "--root", str(CIFAR10_MINI), "--seed", str(seed)]
        return [*argv, "--timeout", str(budget), "--storage", storage], storage, "plain-optuna"
    sampler = side.split()[-1]
    nin_search = str(Path(sys.executable).parent / "nin-search")
    argv = [nin_search, "optimize", str(study_file(folder, sampler)), "--seed", str(seed)]
    argv += ["--timeout", str(budget), "--storage", storage, "--device", "cpu"]
    return argv, storage, "cifar10-mini-quick"


def run_side(side: str, folder: Path, seed: int, budget: float) -> Run:
    argv, storage, study_name = command(side, folder, seed, budget)
    environment = {**os.environ, "NIN_SEARCH_CACHE": str(folder / f"cache-{side}-{seed}")}
    started = time.time()
    subprocess.run(argv, check=True, env=environment, capture_output=True, cwd=folder)
    study = optuna.load_study(study_name=study_name, storage=storage)
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    trials = study.get_trials(deepcopy=False, states=states)
    plain = [trial.value for trial in trials if trial.user_attrs.get("baseline") == "plain"]
    finished = sorted(
        (trial.datetime_complete.timestamp() - started, trial.value or 0.0)
        for trial in trials
        if trial.user_attrs.get("baseline") != "plain"  # the target, not a search result
    )
    complete = [trial for trial in trials if trial.state == optuna.trial.TrialState.COMPLETE]
    return Run(
        finished=[item for item in finished if item[0] <= budget],
        plain_baseline=plain[0] if plain and plain[0] is not None else None,
        complete_seconds=[trial.duration.total_seconds() for trial in complete],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 150 s per side")
    parser.add_argument("--budget", type=float, default=None, help="seconds per search")
    parser.add_argument("--seeds", type=int, default=None, help="how many seeds (default 3)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds K..K+N-1 (default 0)")
    parser.add_argument(
        "--sides", default=",".join(SIDES), help=f"comma-separated subset of {', '.join(SIDES)}"
    )
    args = parser.parse_args()
    sides = tuple(side for side in SIDES if side in args.sides.split(","))
    if "nin-search tpe" not in sides or set(args.sides.split(",")) - set(SIDES):
        parser.error(f"--sides: a comma-separated subset of {SIDES} with 'nin-search tpe'")
    budget = args.budget or (150.0 if args.quick else 600.0)
    seeds = range(args.first_seed, args.first_seed + (args.seeds or (1 if args.quick else 3)))
    print(machine_line())
    runs: dict[str, list[Run]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        if "plain optuna" in sides:
            config = load_study_config(study_file(folder, "tpe"))
            _, val = plain_script.make_datasets(str(CIFAR10_MINI))
            paths = [val.dataset.samples[index][0] for index in val.indices]
            shared = same_validation_images(paths, config.data)
            print(f"validation images: the same {shared} on both sides")
        for seed in seeds:
            order = sides if seed % 2 == 0 else tuple(reversed(sides))  # A B C, C B A, ...
            for side in order:
                runs[side].append(run_side(side, folder, seed, budget))
    for side in sides:
        seconds = [second for run in runs[side] for second in run.complete_seconds]
        if seconds:
            print(
                f"{side}: {len(seconds)} trials trained every epoch, median "
                f"{statistics.median(seconds):.1f} s each (start to end, all seeds)"
            )
    rows = []
    # The all-plain reference network's accuracy on that seed (nin-search's baseline trial).
    baseline = [run.plain_baseline or 0.0 for run in runs["nin-search tpe"]]
    for side in sides:
        beat = [
            run.seconds_to(target + 1e-9) for run, target in zip(runs[side], baseline, strict=True)
        ]
        rows.append(
            (
                side,
                f"{statistics.mean(len(run.finished) for run in runs[side]):.1f}",
                f"{statistics.mean(run.best() for run in runs[side]):.4f}",
                " / ".join(f"{seconds:.0f}" for seconds in beat),
            )
        )
    print_table(
        f"cifar10-mini search, {budget:.0f} s per side, seeds {list(seeds)}",
        ("side", "trials finished", "best val acc (mean)", "s to beat all-plain (per seed)"),
        rows,
    )
    errors = {side: statistics.mean(1 - run.best() for run in runs[side]) for side in sides}
    if "nin-search random" in sides:
        random_error = errors["nin-search random"]
        print_result("search_images", random_error / max(errors["nin-search tpe"], 1e-9))
    if "plain optuna" not in sides:
        return
    ratios, gaps = [], []
    for seed, nin, plain in zip(seeds, runs["nin-search tpe"], runs["plain optuna"], strict=True):
        target = min(nin.best(), plain.best())
        ratios.append(plain.seconds_to(target) / max(nin.seconds_to(target), 1e-9))
        gaps.append(100 * (nin.best() - plain.best()))
        print(
            f"seed {seed}, common accuracy {target:.4f}: nin-search {nin.seconds_to(target):.0f} s,"
            f" plain optuna {plain.seconds_to(target):.0f} s, ratio {ratios[-1]:.2f};"
            f" best {nin.best():.4f} vs {plain.best():.4f}"
        )
    mean, shown = geometric_mean_interval(ratios)
    print(f"vs_plain_optuna over seeds: {shown}")
    print(f"best val acc, nin-search - plain optuna: {paired_summary(gaps, 'seeds')}")
    print_result("vs_plain_optuna", mean)


if __name__ == "__main__":
    main()
