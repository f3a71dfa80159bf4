"""Shared pieces of the benchmarks: paths, the reference architecture, machine info, tables.

Benchmarks are scripts, not tests: each prints a table and ends with one ``RESULT name value``
line. Run them from the repository root with the project's virtualenv.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import optuna
import torch
from rich.console import Console
from rich.table import Table

from nin_search.analysis import t_interval
from nin_search.config import DataConfig, StudyConfig, StudySection
from nin_search.data import SearchData, split_indices
from nin_search.datasets import read_dataset
from nin_search.objective import Objective
from nin_search.spec import ArchSpec, StageSpec
from nin_search.study import open_study, optimize

REPO = Path(__file__).resolve().parents[1]
CIFAR10_MINI = REPO.parent / "shared" / "data" / "cifar10-mini"
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # per channel, [0, 1] units (the usual constants)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

# A typical cifar10-mini trial: 3 stages of width 32-64 with BatchNorm.
CIFAR_ARCH = ArchSpec(
    stages=(
        StageSpec("mlp", kernel_size=3, width=32, mlp_widths=(32,), pool="max"),
        StageSpec("mlp", kernel_size=3, width=64, mlp_widths=(64,), pool="max"),
        StageSpec("plain", kernel_size=3, width=64),
    ),
    head="nin",
    dropout=0.2,
)

console = Console(width=120)
# Heartbeats and grouped TPE are "experimental" in Optuna: the warnings are noise here.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
optuna.logging.set_verbosity(optuna.logging.WARNING)
T = TypeVar("T")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_line() -> str:
    """One line: date, cores, CPU, torch, threads, load average (the runs share the machine)."""
    load = "/".join(f"{value:.1f}" for value in os.getloadavg())
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (
        f"{now} | nproc {os.cpu_count()} | {cpu_model()} | torch {torch.__version__} | "
        f"{torch.get_num_threads()} threads | load {load}"
    )


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    table = Table(title=title, title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    console.print(table)


def timed(function: Callable[[], T]) -> tuple[float, T]:
    """Wall seconds of one call (``time.perf_counter``) and what it returned."""
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def repeat_timed(function: Callable[[], T], times: int) -> list[tuple[float, T]]:
    return [timed(function) for _ in range(times)]


def summary(values: Sequence[float]) -> str:
    """``mean ± std`` (sample std; 0 for one value)."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f}"


def paired_summary(differences: Sequence[float], unit: str) -> str:
    """``+0.50 points, 95% CI +0.01..+0.99 (n=5 seeds)`` for paired differences."""
    interval = t_interval(differences)
    shown = "n/a" if interval is None else f"{interval[0]:+.2f}..{interval[1]:+.2f}"
    mean = statistics.mean(differences)
    return f"{mean:+.2f} points, 95% CI {shown} (n={len(differences)} {unit})"


def geometric_mean_interval(ratios: Sequence[float], unit: str = "seeds") -> tuple[float, str]:
    """The geometric mean of ``ratios`` and ``1.99x, 95% CI 0.08..46.70x (n=3 seeds)``: the
    t-interval of the mean log ratio, exp'd."""
    logs = [math.log(ratio) for ratio in ratios]
    mean = math.exp(statistics.mean(logs))
    interval = t_interval(logs)
    shown = "n/a"
    if interval is not None:
        shown = f"{math.exp(interval[0]):.2f}..{math.exp(interval[1]):.2f}x"
    return mean, f"{mean:.2f}x, 95% CI {shown} (n={len(ratios)} {unit})"


def print_result(name: str, value: float) -> None:
    print(f"RESULT {name} {value:.3g}", flush=True)


def digits_study_config(
    *, name: str, seed: int, n_trials: int, sampler: str, pruner: str, small: bool
) -> StudyConfig:
    """The default digits study (8 epochs a trial), with this sampler, pruner and seed.

    ``small`` narrows the widths (faster trials for ``--quick``); the baseline trials that
    ``open_study`` may enqueue are off, so every trial comes from the sampler, and the pruner
    may stop any trial (random ones included).
    """
    study: dict[str, object] = {"name": name, "seed": seed, "n_trials": n_trials}
    if "baselines" in StudySection.model_fields:
        study["baselines"] = False
    if "prune_random_trials" in StudySection.model_fields:
        study["prune_random_trials"] = True  # the pruner judges every trial, as RESULTS.md says
    space = {"widths": [8, 16], "mlp_widths": [8, 16]} if small else {}
    return StudyConfig.model_validate(
        {
            "study": study,
            "space": space,
            "train": {"device": "cpu"},
            "optuna": {"sampler": sampler, "pruner": pruner},
        }
    )


def run_digits_study(config: StudyConfig, data: SearchData, folder: Path) -> optuna.Study:
    """Runs ``config.study.n_trials`` trials through nin-search's own API (temp SQLite)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage_url = f"sqlite:///{folder / f'{config.study.name}.db'}"
    study = open_study(config, storage_url=storage_url, study_name=config.study.name)
    optimize(study, Objective(config, data), n_trials=config.study.n_trials)
    return study


def epochs_trained(study: optuna.Study) -> int:
    """Epochs trained by all trials: each trial reports once per epoch."""
    return sum(len(trial.intermediate_values) for trial in study.get_trials(deepcopy=False))


def same_validation_images(plain_validation: Sequence[str], data: DataConfig) -> int:
    """How many validation images nin-search and the plain script share; raises unless all.

    ``plain_validation``: the plain script's validation image paths. nin-search's come from its
    own split of the same folder (``data.val_fraction``, ``data.split_seed``).
    """
    tensors = read_dataset(data, split="train")
    _, val_index = split_indices(
        tensors.labels, val_fraction=data.val_fraction, seed=data.split_seed
    )
    nin_search = {tensors.real_paths[index] for index in val_index.tolist()}
    plain = {os.path.realpath(path) for path in plain_validation}
    if nin_search != plain:
        raise RuntimeError(
            f"the two sides validate on different images ({len(nin_search & plain)} shared of "
            f"{len(nin_search)} and {len(plain)}); their accuracies would not be comparable"
        )
    return len(plain)
