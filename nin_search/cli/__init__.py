"""The ``nin-search`` command line (typer + rich). The only package that prints."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

# Importing the modules registers their commands, in the order `--help` lists them.
from nin_search.cli import _init  # noqa: F401  # isort: skip
from nin_search.cli import _optimize  # noqa: F401  # isort: skip
from nin_search.cli import _ablate  # noqa: F401  # isort: skip
from nin_search.cli import _results  # noqa: F401  # isort: skip
from nin_search.cli import _export  # noqa: F401  # isort: skip
from nin_search.cli import _train  # noqa: F401  # isort: skip
from nin_search.cli import _predict  # noqa: F401  # isort: skip
from nin_search.cli._common import app, err_console, expand_aliases
from nin_search.errors import UserError

__all__ = ["app", "main"]


def _fail(message: str) -> NoReturn:
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(2)


def main() -> None:
    """Console-script entry point: user errors (bad input, bad options) become one line on
    stderr and exit code 2, never a traceback."""
    try:
        code = app(expand_aliases(sys.argv[1:]), standalone_mode=False)
    except UserError as error:
        _fail(str(error))
    except typer.TyperException as error:  # click's usage errors: bad option, bad value
        if type(error).__name__ == "NoArgsIsHelpError":
            app(["--help"], standalone_mode=True)
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        command = "" if message.startswith("No such command") else " ".join(sys.argv[1:2])
        _fail(f"{message} (see: nin-search {command} --help)".replace("  ", " "))
    except typer.Abort:
        sys.exit(130)
    except Exception as error:  # a database failure mid-command: one line, if it is one
        described = _database_failure(error)
        if described is None:
            raise
        _fail(described)
    sys.exit(code if isinstance(code, int) else 0)


def _database_failure(error: Exception) -> str | None:
    """The one-line message for a locked, read-only, corrupt or full database, else None."""
    modules = {type(item).__module__.split(".")[0] for item in (error, error.__cause__)}
    if not modules & {"optuna", "sqlalchemy", "sqlite3", "psycopg", "psycopg2"}:
        return None
    from nin_search.storage import describe_storage_error

    return describe_storage_error(error)
