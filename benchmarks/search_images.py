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
        [--first-seed K] [--sides "nin-search tpe,plain optuna"] [--save runs.json]
    .venv/bin/python benchmarks/search_images.py --load runs-a.json runs-b.json

``--save`` writes every trial's finish time and accuracy, per side and seed, to a JSON file;
``--load`` prints the same summary from one or more such files (seeds pooled) without training.

Beside the measured ratio it prints what the race would give if nin-search's sampler were no
better than the plain script's: each side's trials as independent draws from one distribution,
finishing when they did (``same sampler``; once counting only the trials trained for every
epoch as draws, once every finished trial). The measured ratio over that one is what
nin-search's search adds beyond finishing trials sooner.

For TPE against random it also prints the paired difference of the seeds' best accuracies and
the geometric mean of random's ÷ TPE's seconds to beat the all-plain baseline (a side that never
beat it counts as the budget), each with its 95% interval over seeds.

Ends with ``RESULT search_images <mean best error of random / of TPE>`` and ``RESULT
vs_plain_optuna <geometric mean over seeds of plain seconds / nin-search seconds to the common
accuracy>`` (target >= 3), with the 95% t-interval of that geometric mean over seeds; each only
when its two sides ran.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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

from nin_search.study_files import load_study_config

SIDES = ("nin-search tpe", "nin-search random", "plain optuna")


@dataclass(frozen=True)
class Run:
    """One search: (seconds since the process started, accuracy) per trial finished within the
    budget (0 for a pruned one), and the all-plain baseline's accuracy (nin-search sides)."""

    finished: list[tuple[float, float]]
    plain_baseline: float | None
    complete_seconds: list[float]  # start to end of each trial trained for every epoch
    complete_at: list[float]  # seconds since the process started when each such trial ended

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
    complete = [
        trial
        for trial in trials
        if trial.state == optuna.trial.TrialState.COMPLETE
        and trial.user_attrs.get("baseline") != "plain"
    ]
    ends = sorted(trial.datetime_complete.timestamp() - started for trial in complete)
    return Run(
        finished=[item for item in finished if item[0] <= budget],
        plain_baseline=plain[0] if plain and plain[0] is not None else None,
        complete_seconds=[trial.duration.total_seconds() for trial in complete],
        complete_at=[end for end in ends if end <= budget],
    )


def race_ratio(nin: Run, plain: Run) -> tuple[float, float]:
    """The race's measure on one seed: the accuracy both reached, and plain seconds ÷
    nin-search seconds to reach it."""
    target = min(nin.best(), plain.best())
    return target, plain.seconds_to(target) / max(nin.seconds_to(target), 1e-9)


def same_sampler_ratio(
    nin_times: list[float], plain_times: list[float], rng: np.random.Generator, draws: int = 4000
) -> float:
    """The race's geometric-mean ratio if both sides drew their trials' accuracies from one
    distribution: a trial ending at each of the given times, i.i.d. uniform accuracies (only
    their order matters), the same measure as :func:`race_ratio`."""
    if not nin_times or not plain_times:
        return math.nan
    nin = rng.random((draws, len(nin_times)))
    plain = rng.random((draws, len(plain_times)))
    target = np.minimum(nin.max(axis=1), plain.max(axis=1))[:, None]
    nin_seconds = np.asarray(nin_times)[np.argmax(nin >= target, axis=1)]
    plain_seconds = np.asarray(plain_times)[np.argmax(plain >= target, axis=1)]
    return float(np.exp(np.mean(np.log(plain_seconds / nin_seconds))))


def save_runs(path: Path, budget: float, seeds: list[int], runs: dict[str, list[Run]]) -> None:
    """Every run's trials as JSON, written whole or not at all."""
    document = {
        "budget": budget,
        "seeds": seeds,
        "sides": {side: [dataclasses.asdict(run) for run in found] for side, found in runs.items()},
    }
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(document, indent=1))
    partial.replace(path)


def load_runs(paths: list[Path]) -> tuple[float, list[int], dict[str, list[Run]]]:
    """The runs of one or more :func:`save_runs` files, seeds pooled (same budget and sides)."""
    budget, seeds, runs = None, [], {}
    for path in paths:
        document = json.loads(path.read_text())
        if budget is not None and (
            document["budget"] != budget or set(document["sides"]) != set(runs)
        ):
            raise SystemExit(f"{path}: another budget or other sides than {paths[0]}")
        budget = document["budget"]
        seeds += document["seeds"]
        for side, found in document["sides"].items():
            runs.setdefault(side, []).extend(
                Run(**{**item, "finished": [tuple(pair) for pair in item["finished"]]})
                for item in found
            )
    return float(budget), seeds, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, 150 s per side")
    parser.add_argument("--budget", type=float, default=None, help="seconds per search")
    parser.add_argument("--seeds", type=int, default=None, help="how many seeds (default 3)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds K..K+N-1 (default 0)")
    parser.add_argument(
        "--sides", default=",".join(SIDES), help=f"comma-separated subset of {', '.join(SIDES)}"
    )
    parser.add_argument("--save", type=Path, default=None, help="write every trial to this JSON")
    parser.add_argument(
        "--load", type=Path, nargs="+", default=None, help="summarise saved runs, no training"
    )
    args = parser.parse_args()
    if args.load:
        budget, seeds, runs = load_runs(args.load)
        summarise(budget, seeds, runs)
        return
    sides = tuple(side for side in SIDES if side in args.sides.split(","))
    if "nin-search tpe" not in sides or set(args.sides.split(",")) - set(SIDES):
        parser.error(f"--sides: a comma-separated subset of {SIDES} with 'nin-search tpe'")
    if args.save is not None and not args.save.parent.is_dir():
        parser.error(f"--save: no folder {args.save.parent}")
    budget = args.budget or (150.0 if args.quick else 600.0)
    seeds = list(range(args.first_seed, args.first_seed + (args.seeds or (1 if args.quick else 3))))
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
    if args.save is not None:
        save_runs(args.save, budget, seeds, runs)
        print(f"trials saved to {args.save}")
    summarise(budget, seeds, runs)


def summarise(budget: float, seeds: list[int], runs: dict[str, list[Run]]) -> None:
    """The tables and RESULT lines of a set of runs."""
    sides = tuple(side for side in SIDES if side in runs)
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
    # Per side and seed, when a trial first beat it (inf when none did).
    beat_at = {
        side: [
            run.seconds_to(target + 1e-9) for run, target in zip(runs[side], baseline, strict=True)
        ]
        for side in sides
    }
    for side in sides:
        beat = beat_at[side]
        rows.append(
            (
                side,
                f"{statistics.mean(len(run.finished) for run in runs[side]):.1f}",
                f"{statistics.mean(len(run.complete_at) for run in runs[side]):.1f}",
                f"{statistics.mean(run.best() for run in runs[side]):.4f}",
                " / ".join(f"{seconds:.0f}" for seconds in beat),
            )
        )
    print_table(
        f"cifar10-mini search, {budget:.0f} s per side, seeds {seeds}",
        (
            "side",
            "trials finished",
            "trained every epoch",
            "best val acc (mean)",
            "s to beat all-plain (per seed)",
        ),
        rows,
    )
    errors = {side: statistics.mean(1 - run.best() for run in runs[side]) for side in sides}
    if "nin-search random" in sides:
        tpe, random = runs["nin-search tpe"], runs["nin-search random"]
        gaps = [100 * (a.best() - b.best()) for a, b in zip(tpe, random, strict=True)]
        print(f"best val acc, tpe - random: {paired_summary(gaps, 'seeds')}")
        # A side that never beat the all-plain baseline counts as the budget.
        slower = [
            min(b, budget) / min(a, budget)
            for a, b in zip(beat_at["nin-search tpe"], beat_at["nin-search random"], strict=True)
        ]
        print(f"s to beat all-plain, random / tpe: {geometric_mean_interval(slower)[1]}")
        random_error = errors["nin-search random"]
        print_result("search_images", random_error / max(errors["nin-search tpe"], 1e-9))
    if "plain optuna" not in sides:
        return
    ratios, gaps, completed, finished = [], [], [], []
    rng = np.random.default_rng(0)
    for seed, nin, plain in zip(seeds, runs["nin-search tpe"], runs["plain optuna"], strict=True):
        target, ratio = race_ratio(nin, plain)
        ratios.append(ratio)
        gaps.append(100 * (nin.best() - plain.best()))
        completed.append(same_sampler_ratio(nin.complete_at, plain.complete_at, rng))
        finished.append(
            same_sampler_ratio(
                [at for at, _ in nin.finished], [at for at, _ in plain.finished], rng
            )
        )
        print(
            f"seed {seed}, common accuracy {target:.4f}: nin-search {nin.seconds_to(target):.0f} s,"
            f" plain optuna {plain.seconds_to(target):.0f} s, ratio {ratio:.2f};"
            f" best {nin.best():.4f} vs {plain.best():.4f}; same sampler: {completed[-1]:.2f}"
            f" (trials trained every epoch as draws) to {finished[-1]:.2f} (every finished trial)"
        )
    mean, shown = geometric_mean_interval(ratios)
    print(f"vs_plain_optuna over seeds: {shown}")
    print(f"best val acc, nin-search - plain optuna: {paired_summary(gaps, 'seeds')}")
    low, high = sorted(
        math.exp(statistics.mean(np.log(values))) for values in (completed, finished)
    )
    print(
        f"if nin-search's sampler were no better than the plain script's, the trials finishing"
        f" when they did would give {low:.2f}x to {high:.2f}x (geometric mean over seeds); the"
        f" measured {mean:.2f}x is {mean / high:.2f}x to {mean / low:.2f}x that"
    )
    print_result("vs_plain_optuna", mean)


if __name__ == "__main__":
    main()
