import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

RUFF = Path(sys.executable).parent / "ruff"


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
