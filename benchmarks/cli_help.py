"""`nin-search --help` vs `optuna --help`, and reading a study with each command line.

Both console scripts of this virtualenv run in fresh processes, interleaved (A B B A ...) so that
a busy machine slows both alike; the median of each side is compared. `nin-search --help` imports
neither PyTorch nor Optuna (tests/test_cli_help.py checks that), so it should start about as fast
as Optuna's own command line. `nin-search best` and `nin-search trials` read a study without
PyTorch (tests/test_cli_help.py again), so they are compared with `optuna best-trial` and
`optuna trials` on the same study: a tiny digits study this script searches first (2 trials,
about 20 s), or yours with ``--storage URL --study-name NAME``.

    .venv/bin/python benchmarks/cli_help.py [--repeats 10] [--storage URL --study-name NAME]

Prints ``RESULT cli_help nin_search_s=... optuna_s=... ratio=...`` (target: ratio <= 1.5), then
``RESULT cli_best ...`` and ``RESULT cli_trials ...`` in the same form.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
NIN_SEARCH = str(BIN / "nin-search")
OPTUNA = str(BIN / "optuna")

TINY_STUDY = """
[study]
name = "cli-bench"
seed = 0
n_trials = 2

[space]
num_stages = [1]
widths = [8]
mlp_widths = [8]

[train]
epochs = 1
device = "cpu"
"""


def run_once(command: list[str]) -> float:
    """Seconds for one run of ``command`` in a fresh process (its output discarded)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def compare(label: str, commands: dict[str, list[str]], repeats: int) -> None:
    """Runs both commands ``repeats`` times, interleaved, and prints their medians and ratio."""
    for command in commands.values():
        run_once(command)  # warm-up: the file system cache
    times: dict[str, list[float]] = {name: [] for name in commands}
    names = list(commands)
    for index in range(repeats):
        for name in names if index % 2 == 0 else reversed(names):
            times[name].append(run_once(commands[name]))
    print(
        f"{label}: load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, "
        f"{repeats} runs each"
    )
    for name, values in times.items():
        print(
            f"{' '.join(commands[name][:2]).replace(str(BIN) + '/', ''):>24}: median "
            f"{statistics.median(values):.3f} s, min {min(values):.3f} s, max {max(values):.3f} s"
        )
    ours, theirs = (statistics.median(times[name]) for name in names)
    print(f"RESULT {label} nin_search_s={ours:.3f} optuna_s={theirs:.3f} ratio={ours / theirs:.2f}")


def tiny_study(folder: Path) -> tuple[str, str]:
    """Searches a 2-trial digits study in ``folder``; returns its storage URL and name."""
    (folder / "study.toml").write_text(TINY_STUDY)
    storage = f"sqlite:///{folder / 'cli-bench.db'}"
    command = [NIN_SEARCH, "optimize", "study.toml", "--storage", storage, "--no-progress", "-q"]
    subprocess.run(command, check=True, cwd=folder, stdout=subprocess.DEVNULL)
    return storage, "cli-bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="Runs of each side.")
    parser.add_argument("--quick", action="store_true", help="3 runs of each side, not 10")
    parser.add_argument("--storage", help="A study to read [default: a tiny one searched here].")
    parser.add_argument("--study-name", help="Its name (with --storage).")
    args = parser.parse_args()
    if bool(args.storage) != bool(args.study_name):
        parser.error("--storage and --study-name go together")
    if args.quick:
        args.repeats = 3
    compare(
        "cli_help",
        {"nin_search": [NIN_SEARCH, "--help"], "optuna": [OPTUNA, "--help"]},
        args.repeats,
    )
    with tempfile.TemporaryDirectory() as folder:
        if args.storage:
            storage, name = args.storage, args.study_name
        else:
            storage, name = tiny_study(Path(folder))
        study = ["--storage", storage, "--study-name", name]
        for label, ours, theirs in (
            ("cli_best", "best", "best-trial"),
            ("cli_trials", "trials", "trials"),
        ):
            commands = {
                "nin_search": [NIN_SEARCH, ours, *study],
                "optuna": [OPTUNA, theirs, *study],
            }
            compare(label, commands, args.repeats)


if __name__ == "__main__":
    main()
