"""`nin-search best`, `report` and `dashboard`: look at an existing study."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from nin_search.cli._common import (
    ArtifactsOption,
    ExistingStudyOption,
    ReadStorageOption,
    app,
    best_json,
    console,
    quiet_optuna,
    summary_table,
)
from nin_search.config import DEFAULT_STORAGE
from nin_search.errors import UserError


@app.command()
def best(
    storage: ReadStorageOption = DEFAULT_STORAGE,
    study_name: ExistingStudyOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show the best trial of an existing study."""
    quiet_optuna()
    from nin_search.study import load_study

    study = load_study(storage, study_name)
    if as_json:
        console.print_json(json.dumps(best_json(study)))
        return
    console.print(summary_table(study))


@app.command()
def report(
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    storage: ReadStorageOption = DEFAULT_STORAGE,
    study_name: ExistingStudyOption = None,
) -> None:
    """Write a self-contained HTML report on where MLP conv helped, and print the verdict."""
    quiet_optuna()
    from nin_search.report import verdict_lines, write_report
    from nin_search.study import load_study

    if not output.parent.is_dir():
        raise UserError(f"folder {str(output.parent)!r} for --output does not exist; create it")
    study = load_study(storage, study_name)
    verdicts = write_report(study, output)
    console.print(
        f"Per-stage verdict for study {study.study_name!r} (MLP conv vs plain conv):",
        markup=False,
        highlight=False,
    )
    for line in verdict_lines(verdicts):
        console.print(f"  {line}", markup=False, highlight=False)
    console.print(f"wrote {output} (opens offline)", markup=False, highlight=False)


@app.command()
def dashboard(
    storage: ReadStorageOption = DEFAULT_STORAGE,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port.")] = 8080,
    artifacts: ArtifactsOption = None,
    study_name: Annotated[
        str | None,
        typer.Option(
            "--study-name",
            help="Open this study's page [default: the list of every study].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Start optuna-dashboard on the storage, with the trained weights as artifacts."""
    quiet_optuna()
    from nin_search.dashboard import (
        forget_missing_artifacts,
        make_http_server,
        refresh_study_note,
    )
    from nin_search.storage import display_url
    from nin_search.study import load_studies, load_study

    studies = [load_study(storage, study_name)] if study_name else load_studies(storage)
    server = make_http_server(storage, host=host, port=port, artifact_dir=artifacts)
    for study in studies:
        refresh_study_note(study)
    forgotten = forget_missing_artifacts(storage, studies, artifact_dir=artifacts)
    for name, numbers in forgotten.items():
        if numbers:
            console.print(
                f"study {name!r}: dropped the artifact entries of trials {numbers}, whose weights "
                "files are gone",
                markup=False,
                highlight=False,
            )
    url = f"http://{host}:{server.server_port}/dashboard/"
    if study_name:
        url += f"studies/{studies[0]._study_id}"
    console.print(
        f"optuna-dashboard for {display_url(storage)} at {url} (Ctrl-C to stop)",
        markup=False,
        highlight=False,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.server_close()
