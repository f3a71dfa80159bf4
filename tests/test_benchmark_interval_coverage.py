"""benchmarks/interval_coverage.py: null simulations of the answer's intervals, side by side."""

import re

from .conftest import run_benchmark


def test_the_quick_null_simulation_prints_every_table_and_a_coverage_near_95_percent():
    result = run_benchmark("interval_coverage.py", "--quick")
    for title in ("Design space, no effect", "Power: a true +5-point effect", "Consensus"):
        assert title in result.stdout
    assert result.stdout.count("| a third diverged |") == 6
    coverage = re.search(r"^RESULT interval_coverage (\S+)$", result.stdout, flags=re.MULTILINE)
    # 200 draws a cell: 94% is 1.3 binomial sd below 95%; the bootstrap's worst was 81%.
    assert coverage and 0.92 <= float(coverage.group(1)) <= 1.0
