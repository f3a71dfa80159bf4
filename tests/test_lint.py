import ast
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
        [ruff, *command, "nin_search", "tests", "benchmarks", "contrib"],
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


def _layer_order() -> list[str]:
    """The module order README "Layout" states (the indented block of arrows)."""
    text = (REPO / "README.md").read_text().split("## Layout", 1)[1]
    block = next(part for part in text.split("\n\n") if part.startswith("    "))
    return [name.strip() for name in block.replace("\n", " ").split("→")]


def _imported_modules(path: Path) -> set[str]:
    """Top-level nin_search modules this file imports, function-local imports included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] != "nin_search":
                continue
            found.update(parts[1:2] or [alias.name for alias in node.names])
        elif isinstance(node, ast.Import):
            found.update(
                alias.name.split(".")[1]
                for alias in node.names
                if alias.name.startswith("nin_search.")
            )
    return found - {"__version__"}


def test_every_module_imports_only_from_modules_to_its_left_in_the_readme_layout():
    order = _layer_order()
    assert len(order) == len(set(order)) > 30, order
    wrong = []
    for path in sorted((REPO / "nin_search").rglob("*.py")):
        module = path.relative_to(REPO / "nin_search").parts[0].removesuffix(".py")
        if module in ("__init__", "__main__", "py.typed", "studies"):
            continue
        if module not in order:
            wrong.append(f"{module} is missing from README Layout")
            continue
        for other in _imported_modules(path) - {module}:
            if other not in order or order.index(other) > order.index(module):
                wrong.append(f"{path.relative_to(REPO)} imports {other}")
    assert not wrong, wrong


def test_no_module_outside_cli_loads_torch_or_optuna_from_the_package_root():
    # `import nin_search` is lazy (PEP 562): the CLI's --help depends on it.
    code = "import sys, nin_search; print(sorted({'torch', 'optuna'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_the_network_and_its_training_load_neither_optuna_nor_a_database_driver():
    # spec, model, train and export run where the study does not: a deployed model, a notebook.
    modules = "spec, model, train, export, retrain, weights, data, transforms"
    code = (
        f"import sys; from nin_search import {modules}; "
        "print(sorted({'optuna', 'sqlalchemy', 'typer', 'rich', 'plotly'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
