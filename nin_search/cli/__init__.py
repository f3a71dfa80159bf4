"""The ``nin-search`` command line (typer + rich). The only package that prints."""

from __future__ import annotations

import sys

from nin_search.cli import _final, _optimize, _results  # noqa: F401  (register the commands)
from nin_search.cli._common import app, err_console
from nin_search.errors import UserError

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point: user errors become one line on stderr and exit code 2."""
    try:
        app()
    except UserError as error:
        err_console.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
