"""Ctrl-C and SIGTERM at random moments of a 2-worker search: does every stop end cleanly?

Each run starts ``nin-search optimize --workers 2`` on a tiny digits study in a process group
of its own, sends SIGINT or SIGTERM (to the command alone or to its whole group) after a
random 4-14 s, and checks what a user relies on: exit 130/143 within 90 s, no traceback, no
trial left RUNNING, and no process of the group left 10 s later. Not a speed benchmark:
a check of nin_search.interrupts, run against any checkout with ``--src``.

    .venv/bin/python benchmarks/signal_stress.py --runs 14 --seed 2
    .venv/bin/python benchmarks/signal_stress.py --runs 14 --seed 2 --src /path/to/old/checkout

Prints one line per run and ``RESULT signal_stress_bad <bad>/<runs>``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STUDY = """
[study]
name = "tiny"
n_trials = 400

[space]
num_stages = [1, 2]
widths = [16, 32]
mlp_widths = [16, 32]

[train]
epochs = 3
batch_size = [64]
device = "cpu"
"""


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def one_run(folder: Path, src: Path, signum: int, group: bool, delay: float) -> list[str]:
    """What went wrong in one stopped run (empty: nothing)."""
    folder.mkdir(parents=True)
    (folder / "study.toml").write_text(STUDY)
    env = {**os.environ, "PYTHONPATH": str(src), "COLUMNS": "120"}
    command = [sys.executable, "-m", "nin_search", "optimize", "study.toml", "--workers", "2"]
    process = subprocess.Popen(
        [*command, "--no-progress"],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        process_group=0,
        preexec_fn=_default_sigint,
    )
    time.sleep(delay)
    (os.killpg if group else os.kill)(process.pid, signum)
    try:
        _, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return ["hung past 90 s"]
    problems = []
    if process.returncode not in (130, 143):
        problems.append(f"exit {process.returncode}")
    if "Traceback" in stderr:
        problems.append("traceback")
    database = folder / "nin_search.db"
    if database.exists():
        connection = sqlite3.connect(database)
        running = connection.execute("SELECT number FROM trials WHERE state = 'RUNNING'")
        numbers = [row[0] for row in running]
        connection.close()
        if numbers:
            problems.append(f"trials {numbers} left RUNNING")
    for _ in range(20):
        left = subprocess.run(
            ["pgrep", "-g", str(process.pid)], capture_output=True, text=True
        ).stdout.split()
        if not left:
            break
        time.sleep(0.5)
    else:
        os.killpg(process.pid, signal.SIGKILL)
        problems.append(f"processes {left} left")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=14)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--src", type=Path, default=REPO, help="the checkout to run")
    args = parser.parse_args()
    draw = random.Random(args.seed)
    bad = 0
    with tempfile.TemporaryDirectory(prefix="signal-stress-") as folder:
        for index in range(args.runs):
            signum = draw.choice([signal.SIGTERM, signal.SIGINT])
            group = draw.choice([True, False])
            delay = draw.uniform(4, 14)
            problems = one_run(Path(folder) / str(index), args.src, signum, group, delay)
            bad += bool(problems)
            to = "group" if group else "command"
            name = signal.Signals(signum).name
            print(f"run {index}: {name} to the {to} at {delay:.1f} s: {problems or 'clean'}")
    print(f"RESULT signal_stress_bad {bad}/{args.runs}")


if __name__ == "__main__":
    main()
