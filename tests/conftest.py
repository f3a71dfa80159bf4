"""Shared fixtures: tiny study files and a runner for the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CIFAR10_MINI = SHARED_DATA / "cifar10-mini"
# The PostgreSQL database the server tests use; .ci/run starts a server and sets it.
POSTGRES_URL_VARIABLE = "NIN_SEARCH_TEST_POSTGRES_URL"


def postgres_url() -> str:
    """The test server's URL; skips the calling test, with the reason, where none is set."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.skip(
            f"{POSTGRES_URL_VARIABLE} is not set: .ci/run starts a PostgreSQL server and sets it"
        )
    return url


# A digits study small enough for tests: 2 epochs, small widths (well under a second a trial).
TINY_DIGITS = """
[study]
name = "tiny"
seed = 1
n_trials = 3

[space]
num_stages = [1, 2]
widths = [8, 16]
mlp_widths = [8, 16]

[train]
epochs = 2
batch_size = [64]
device = "cpu"
"""


def write_study(folder: Path, text: str = TINY_DIGITS, name: str = "study.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


# `optimize` runs one worker per CPU core by default; the tests run one (in this process, so
# that monkeypatches reach the trials, and reproducible to the digit) unless they ask for more.
os.environ.setdefault("NIN_SEARCH_WORKERS", "1")


@pytest.fixture
def tiny_study(tmp_path: Path) -> Path:
    return write_study(tmp_path)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    # Tests never write to the user's ~/.cache.
    cache = tmp_path_factory.getbasetemp() / "nin-search-cache"
    monkeypatch.setenv("NIN_SEARCH_CACHE", str(cache))


def run_cli(*args: str, cwd: Path, columns: int | None = 120) -> subprocess.CompletedProcess:
    """Runs ``python -m nin_search ARGS`` in a fresh process, as a user would; ``columns=None``
    as in ``... | less`` (a shell does not export COLUMNS)."""
    env = {key: value for key, value in os.environ.items() if key not in ("COLUMNS", "LINES")}
    env["PYTHONWARNINGS"] = "error::FutureWarning"
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return subprocess.run(
        [sys.executable, "-m", "nin_search", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_benchmark(script: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Runs ``benchmarks/SCRIPT ARGS`` from the repository root in a fresh process; fails the
    test with its stderr when it fails."""
    result = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result


PRUNED_DIGITS = TINY_DIGITS.replace("n_trials = 3", "n_trials = 2") + (
    "\n[optuna]\npruner = 'threshold'\npruner_options = { lower = 1.01 }\n"
)


@pytest.fixture(scope="session")
def studies(tmp_path_factory) -> Path:
    """A folder with good.db (+ good-artifacts) and pruned.db, written by the real CLI."""
    folder = tmp_path_factory.mktemp("bad-input-studies")
    good = write_study(folder, TINY_DIGITS, "tiny.toml")
    pruned = write_study(folder, PRUNED_DIGITS, "pruned.toml")

    def optimize(study_file: Path, database: str) -> subprocess.CompletedProcess:
        storage_url = f"sqlite:///{database}"
        return run_cli("optimize", str(study_file), "--storage", storage_url, cwd=folder)

    with ThreadPoolExecutor(max_workers=2) as pool:  # the two processes at once
        runs = [pool.submit(optimize, good, "good.db"), pool.submit(optimize, pruned, "pruned.db")]
    for run in runs:
        assert run.result().returncode == 0, run.result().stderr
    return folder
