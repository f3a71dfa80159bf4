"""Benchmark: how long a search takes to start, workers forked from the fork server vs spawned.

The same command as ``search_images.py``'s race (``nin-search optimize`` on
``studies/cifar10-mini-quick.toml`` with TPE from the first trial, 2 workers on this 2-core CPU),
run for a short budget, with the workers forked from multiprocessing's fork server (the default,
which imports torch while the command loads the data) and spawned (``NIN_SEARCH_START_METHOD=
spawn``, how nin-search started them before). Each run is a fresh process; cold runs start with
an empty decode cache, warm runs with the cache the previous run wrote. The plain-Optuna script
runs too, as the reference a user compares with. Sides alternate per repeat.

Reported per side: the seconds from the process start until the first trial started, until the
first trial finished, and until the first sampled (not enqueued-baseline) trial finished, median
over the repeats.

    .venv/bin/python benchmarks/startup.py [--quick] [--repeats N] [--budget S]
    .venv/bin/python benchmarks/startup.py --against DIR [--repeats N]

Ends with ``RESULT startup <spawned / forked seconds to the first trial's start, cold cache>``.
``--against DIR`` instead races this checkout's library against the one in DIR (a ``git
worktree`` of an earlier commit, put first on ``PYTHONPATH``), both with the fork server and a
cold cache, alternating which goes first, and ends with ``RESULT startup_against <DIR's / this
checkout's seconds to the first sampled trial's end>``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import optuna
from _common import geometric_mean_interval, machine_line, print_result, print_table
from search_images import command

from nin_search.worker_server import START_METHOD_ENV

SIDES = {  # name: (search_images side, start method, cache warm)
    "nin-search, fork server, cold cache": ("nin-search tpe", "forkserver", False),
    "nin-search, spawned, cold cache": ("nin-search tpe", "spawn", False),
    "nin-search, fork server, warm cache": ("nin-search tpe", "forkserver", True),
    "nin-search, spawned, warm cache": ("nin-search tpe", "spawn", True),
    "plain optuna": ("plain optuna", "", False),
}


def run(
    name: str, folder: Path, repeat: int, budget: float, *, code: Path | None = None
) -> tuple[float, float, float]:
    """Seconds from the process start to the first trial's start, the first trial's end and
    the first sampled trial's end; ``code``: a checkout whose ``nin_search`` runs instead."""
    side, method, warm = SIDES[name]
    run_folder = folder / f"{repeat}-{name.replace(' ', '').replace(',', '-')}-{code is None}"
    run_folder.mkdir()
    argv, storage, study_name = command(side, run_folder, seed=repeat, budget=budget)
    cache = folder / f"cache-{repeat}-{method}"  # warm: the cold run of this method wrote it
    environment = {**os.environ, "NIN_SEARCH_CACHE": str(cache)}
    if code is not None:
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(code), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
    if method:
        environment[START_METHOD_ENV] = method
    if not warm:
        shutil.rmtree(cache, ignore_errors=True)
    started = time.time()
    subprocess.run(argv, check=True, env=environment, capture_output=True, cwd=run_folder)
    trials = optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)
    first_start = min(t.datetime_start.timestamp() for t in trials if t.datetime_start)
    first_end = min(
        (t.datetime_complete.timestamp() for t in trials if t.datetime_complete),
        default=float("inf"),
    )
    sampled_ends = [
        t.datetime_complete.timestamp()
        for t in trials
        if t.datetime_complete and not t.user_attrs.get("baseline")
    ]
    first_sampled_end = min(sampled_ends, default=float("inf"))
    return first_start - started, first_end - started, first_sampled_end - started


def _per_repeat(seconds: tuple[float, ...]) -> str:
    return " / ".join(f"{value:.1f}" for value in seconds)


def against(code: Path, repeats: int, budget: float) -> None:
    """This checkout's library against ``code``'s, fork server, cold cache."""
    name = "nin-search, fork server, cold cache"
    sides = {"this checkout": None, str(code): code}
    found: dict[str, list[tuple[float, float, float]]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        for repeat in range(repeats):
            order = list(sides) if repeat % 2 == 0 else list(reversed(sides))
            for side in order:
                found[side].append(run(name, folder, repeat, budget, code=sides[side]))
    rows = []
    for side, values in found.items():
        starts, firsts, sampled = zip(*values, strict=True)
        columns = (_per_repeat(starts), _per_repeat(firsts), _per_repeat(sampled))
        rows.append((side, *columns, f"{statistics.median(sampled):.1f}"))
    print_table(
        f"Seconds from the process start, {repeats} repeat(s), {budget:.0f} s budget, "
        "fork server, cold cache",
        (
            "library",
            "first trial starts",
            "first trial ends",
            "first sampled trial ends",
            "median",
        ),
        rows,
    )
    mine, theirs = found["this checkout"], found[str(code)]
    per_repeat = [t[2] / m[2] for m, t in zip(mine, theirs, strict=True)]
    ratio, shown = geometric_mean_interval(per_repeat, "repeats")
    print(f"{code} / this checkout, seconds to the first sampled trial's end: {shown}")
    print_result("startup_against", ratio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 repeat")
    parser.add_argument("--repeats", type=int, default=None, help="default 3")
    parser.add_argument("--budget", type=float, default=45.0, help="seconds per run")
    parser.add_argument(
        "--against", type=Path, default=None, help="a checkout of nin-search to race against"
    )
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    print(machine_line())
    if args.against is not None:
        against(args.against.resolve(), repeats, args.budget)
        return
    found: dict[str, list[tuple[float, float, float]]] = {name: [] for name in SIDES}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for repeat in range(repeats):
            # Cold runs first (a warm run reuses its method's cold cache); the method that goes
            # first alternates.
            methods = ("fork server", "spawned") if repeat % 2 == 0 else ("spawned", "fork server")
            order = [f"nin-search, {m}, {c} cache" for c in ("cold", "warm") for m in methods]
            order.append("plain optuna")
            for side in order:
                found[side].append(run(side, folder, repeat, args.budget))
    rows = []
    for side, values in found.items():
        starts, _, ends = zip(*values, strict=True)
        rows.append(
            (
                side,
                _per_repeat(starts),
                f"{statistics.median(starts):.1f}",
                f"{statistics.median(ends):.1f}",
            )
        )
    print_table(
        f"Seconds from the process start, {repeats} repeat(s), {args.budget:.0f} s budget",
        ("side", "first trial starts (per repeat)", "median", "first sampled trial ends (median)"),
        rows,
    )
    ratios = {}
    for cache in ("cold", "warm"):
        forked = found[f"nin-search, fork server, {cache} cache"]
        spawned = found[f"nin-search, spawned, {cache} cache"]
        per_repeat = [s[0] / f[0] for f, s in zip(forked, spawned, strict=True)]
        ratios[cache], shown = geometric_mean_interval(per_repeat, "repeats")
        print(f"{cache} cache, spawned / forked seconds to the first trial's start: {shown}")
    print_result("startup", ratios["cold"])


if __name__ == "__main__":
    main()
