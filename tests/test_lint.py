import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

RUFF = Path(sys.executable).parent / "ruff"
DEPTRY = Path(sys.executable).parent / "deptry"


@pytest.mark.skipif(not RUFF.exists() and not shutil.which("ruff"), reason="ruff is not installed")
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_the_code_passes_ruff_with_the_project_settings(command):
    ruff = str(RUFF) if RUFF.exists() else shutil.which("ruff")
    result = subprocess.run(
        [ruff, *command, "nin_search", "tests", "benchmarks"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(
    not DEPTRY.exists() and not shutil.which("deptry"), reason="deptry is not installed"
)
def test_declared_dependencies_match_the_imports():
    # deptry: every imported package is declared in pyproject.toml, every declared one is used
    # (the exceptions and why are in [tool.deptry]).
    deptry = str(DEPTRY) if DEPTRY.exists() else shutil.which("deptry")
    result = subprocess.run([deptry, "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
