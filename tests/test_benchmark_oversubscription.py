"""benchmarks/oversubscription.py runs every setup in child processes and prints its RESULT."""

import os
import re

import pytest

from .conftest import run_benchmark


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="the benchmark pins processes to cores: it needs sched_setaffinity and 2 cores",
)
def test_oversubscription_runs_every_setup_and_prints_a_positive_ratio():
    result = run_benchmark("oversubscription.py", "--seconds", "0.3", "--repeats", "1", timeout=300)
    for setup in ("alone, every core", "each pinned to its half", "one thread each, not pinned"):
        assert setup in result.stdout
    assert re.search(r"│\s+2\s+│\s+1\+1\s+│", result.stdout)  # pinned: one thread each
    ratio = re.search(r"^RESULT oversubscription (\S+)$", result.stdout, flags=re.MULTILINE)
    assert ratio and float(ratio.group(1)) > 0
