"""`nin-search init`: write a fully commented study file to edit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nin_search.cli._common import app, console
from nin_search.vocabulary import DATASETS


@app.command()
def init(
    output: Annotated[Path, typer.Option("--output", "-o", help="The study file to write.")] = Path(
        "study.toml"
    ),
    dataset: Annotated[
        str, typer.Option("--dataset", help=f"One of: {', '.join(DATASETS)}.")
    ] = "digits",
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            help="The data folder (imagefolder: the folder holding train/<class>/*).",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="Study name [default: the file's name].", show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a fully commented study file (every key, the default study's values) to edit."""
    from nin_search.outputs import written_in_place
    from nin_search.study_template import write_study_file

    write_study_file(output, dataset=dataset, root=root, name=name, force=force)
    if written_in_place(output):  # -o /dev/stdout: the reader gets the file alone
        return
    console.print(
        f"wrote {output}; edit it, then run: nin-search optimize {output}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
