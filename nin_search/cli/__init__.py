"""The ``nin-search`` command line (typer + rich). The only package that prints."""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer

# Importing the modules registers their commands, in the order `--help` lists them.
from nin_search.cli import _init  # noqa: F401  # isort: skip
from nin_search.cli import _optimize  # noqa: F401  # isort: skip
from nin_search.cli import _ablate  # noqa: F401  # isort: skip
from nin_search.cli import _results  # noqa: F401  # isort: skip
from nin_search.cli import _export  # noqa: F401  # isort: skip
from nin_search.cli import _train  # noqa: F401  # isort: skip
from nin_search.cli import _predict  # noqa: F401  # isort: skip
from nin_search.cli._common import app, console, err_console, expand_aliases
from nin_search.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, UserError

__all__ = ["app", "main"]


def _show_version(value: bool) -> None:
    if value:
        from nin_search import __version__

        console.print(f"nin-search {__version__}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Search when MLP conv (Network-in-Network) layers beat plain conv layers, on your data.

    Start with `nin-search optimize` (the embedded digits study, about 1.5 minutes on 2 CPU
    cores), then `nin-search report` or `nin-search trials`; `nin-search init` writes a study
    file for your own images. Every command takes -h.
    """


# Shown at the end of each command's help ("\b": click keeps the lines as they are).
EXAMPLES = {
    "init": [
        "nin-search init --dataset imagefolder --root ~/data/flowers -o flowers.toml",
        "nin-search init --dataset cifar10 -o cifar10.toml",
    ],
    "optimize": [
        "nin-search optimize                      # the embedded digits study",
        "nin-search optimize flowers.toml --n-trials 50 --workers 2",
        "nin-search optimize cifar10-mini --no-progress --log-file trials.jsonl",
    ],
    "ablate": [
        "nin-search ablate --storage sqlite:///nin_search.db --study-name digits --seeds 5",
        "nin-search ablate flowers.toml --top 3",
    ],
    "best": [
        "nin-search best",
        "nin-search best --storage sqlite:///nin_search.db --study-name digits --json",
    ],
    "trials": [
        "nin-search trials --top 10",
        "nin-search trials --sort params --state complete --csv > trials.csv",
    ],
    "report": [
        "nin-search report -o report.html",
        "nin-search report --storage sqlite:///runs.db --all -o consensus.html",
    ],
    "dashboard": [
        "nin-search dashboard --storage sqlite:///nin_search.db --study-name digits",
    ],
    "export": [
        "nin-search export -o digits_net.py --weights digits_net.safetensors",
        "nin-search export --trial 12 -o net.py --onnx net.onnx",
    ],
    "train": [
        "nin-search train -o final/",
        "nin-search train --trial 12 --epochs 60 --seed 1 -o final-12/",
        "nin-search train -o final/ --onnx final.onnx",
    ],
    "predict": [
        "nin-search predict --model final/ photo1.jpg photo2.png",
        "nin-search predict --eval ~/data/flowers/test --json",
    ],
}

for _command in app.registered_commands:
    _name = _command.name or (_command.callback.__name__ if _command.callback else "")
    _doc = _command.help or (_command.callback.__doc__ if _command.callback else None) or ""
    # The command list shows each command's whole first paragraph (click would cut it at ~45
    # characters).
    _command.short_help = _command.short_help or " ".join(_doc.strip().split("\n\n")[0].split())
    if _name in EXAMPLES:
        _command.epilog = "\b\nExamples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[_name])


def _fail(message: str, code: int = EXIT_USER_ERROR) -> NoReturn:
    err_console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


def main() -> None:
    """Console-script entry point: user errors (bad input, bad options) become one line on
    stderr and exit code 2, never a traceback."""
    try:
        code = app(expand_aliases(sys.argv[1:]), prog_name="nin-search", standalone_mode=False)
    except UserError as error:
        _fail(str(error))
    except typer.TyperException as error:  # click's usage errors: bad option, bad value
        if type(error).__name__ == "NoArgsIsHelpError":
            app(["--help"], prog_name="nin-search", standalone_mode=True)
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        _fail(f"{message} (see: {_help_command(sys.argv[1:])})")
    except typer.Abort:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as error:  # a database failure mid-command: one line, if it is one
        described = _database_failure(error)
        if described is None:
            raise
        _fail(*described)
    sys.exit(code if isinstance(code, int) else 0)


def _help_command(arguments: list[str]) -> str:
    """``nin-search COMMAND --help`` for the command given, else ``nin-search --help``."""
    names = {
        info.name or info.callback.__name__ for info in app.registered_commands if info.callback
    }
    command = next((argument for argument in arguments if not argument.startswith("-")), None)
    return f"nin-search {command} --help" if command in names else "nin-search --help"


def _database_failure(error: Exception) -> tuple[str, int] | None:
    """The one-line message and exit code for a locked, read-only, corrupt or full database
    (2: the user fixes it), or a server that went away mid-command (1, as a search whose
    workers lost it: a re-run resumes), else None."""
    chain = (error, error.__cause__, error.__context__)
    modules = {type(item).__module__.split(".")[0] for item in chain}
    if not modules & {"optuna", "sqlalchemy", "sqlite3", "psycopg", "psycopg2"}:
        return None
    from nin_search.storage_messages import describe_lost_connection, describe_storage_error

    described = describe_storage_error(error)
    if described is not None:
        return described, EXIT_USER_ERROR
    lost = describe_lost_connection(error)
    return None if lost is None else (lost, 1)
