"""`--help` is light: the typer app and what it imports load neither PyTorch nor Optuna."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

COMMANDS = ["", "init", "optimize", "ablate", "best", "trials", "report", "dashboard", "export"]
COMMANDS += ["train"]
COMMANDS += ["predict"]

# Runs `nin-search [COMMAND] --help` in this interpreter, then names the heavy modules loaded.
SCRIPT = """
import sys
from nin_search.cli import main
sys.argv = ["nin-search", *sys.argv[1:], "--help"]
try:
    main()
except SystemExit as exited:
    assert not exited.code, exited.code
heavy = sorted(name for name in ("torch", "optuna", "sqlalchemy") if name in sys.modules)
print("HEAVY", ",".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("command", COMMANDS)
def test_help_imports_neither_torch_nor_optuna(command, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, *command.split()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    assert "HEAVY \n" in result.stderr, result.stderr


def test_every_command_is_checked():
    from nin_search.cli import app

    names = {command.name or command.callback.__name__ for command in app.registered_commands}
    assert names == set(COMMANDS) - {""}


@pytest.mark.parametrize("command", ["optimize", "ablate", "dashboard", "export", "predict"])
def test_the_artifact_folder_is_spelled_like_its_config_key(command, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "nin_search", command, "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert "--artifact-dir" in result.stdout
    assert "--artifacts" not in result.stdout  # the old spelling works, unlisted


def test_the_old_artifacts_spelling_is_a_hidden_alias():
    from nin_search.cli._common import expand_aliases

    assert expand_aliases(["export", "--artifacts", "a", "--artifacts=b", "--", "--artifacts"]) == [
        "export",
        "--artifact-dir",
        "a",
        "--artifact-dir=b",
        "--",
        "--artifacts",
    ]


# Runs a reading command on an existing study, then names the modules it loaded.
LOADED = """
import sys
from nin_search.cli import main
sys.argv = ["nin-search", *sys.argv[1:]]
try:
    main()
except SystemExit as exited:
    assert not exited.code, exited.code
loaded = [name for name in ("torch", "scipy") if name in sys.modules]
print("LOADED", ",".join(loaded), file=sys.stderr)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "loaded"),
    [
        ("best", ""),
        ("trials", ""),
        ("best --json", "scipy"),
        ("report -o r.html", "scipy"),
        ("export -o m.py", ""),  # writes source code
        ("export -o m.py --weights m.safetensors", "torch"),  # loads the weights
    ],
)
def test_commands_that_read_a_study_load_no_pytorch(command, loaded, studies, tmp_path):
    # best and trials start about as fast as Optuna's own `optuna best-trial` and `optuna
    # trials` (benchmarks/cli_help.py); PyTorch alone takes 2-3 s to import.
    storage = f"sqlite:///{studies / 'good.db'}"
    result = subprocess.run(
        [sys.executable, "-c", LOADED, *command.split(), "--storage", storage],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"LOADED {loaded}\n" in result.stderr, result.stderr
