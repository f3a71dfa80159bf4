"""`nin-search --help` vs `optuna --help`: the start-up time of the two command lines.

Both console scripts of this virtualenv run in fresh processes, interleaved (A B B A ...) so that
a busy machine slows both alike; the median of each side is compared. `nin-search --help` imports
neither PyTorch nor Optuna (tests/test_cli_help.py checks that), so it should start about as fast
as Optuna's own command line.

    .venv/bin/python benchmarks/cli_help.py [--repeats 10]

Ends with ``RESULT cli_help nin_search_s=... optuna_s=... ratio=...`` (target: ratio <= 1.5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
COMMANDS = {
    "nin_search": [str(BIN / "nin-search"), "--help"],
    "optuna": [str(BIN / "optuna"), "--help"],
}


def run_once(command: list[str]) -> float:
    """Seconds for one run of ``command`` in a fresh process (its output discarded)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="Runs of each side.")
    args = parser.parse_args()
    for command in COMMANDS.values():
        run_once(command)  # warm-up: the file system cache
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    names = list(COMMANDS)
    for index in range(args.repeats):
        for name in names if index % 2 == 0 else reversed(names):
            times[name].append(run_once(COMMANDS[name]))
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs, {args.repeats} runs each")
    for name, values in times.items():
        print(
            f"{name:>10}: median {statistics.median(values):.3f} s, "
            f"min {min(values):.3f} s, max {max(values):.3f} s"
        )
    ours, theirs = (statistics.median(times[name]) for name in names)
    print(
        f"RESULT cli_help nin_search_s={ours:.3f} optuna_s={theirs:.3f} ratio={ours / theirs:.2f}"
    )


if __name__ == "__main__":
    main()
