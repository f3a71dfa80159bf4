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
    from nin_search.outputs import check_outputs, write_atomic
    from nin_search.report import verdict_lines, write_report
    from nin_search.study import artifact_dir_for, load_study

    study = load_study(storage, study_name)
    configured = study.user_attrs.get("config", {}).get("optuna", {}).get("artifact_dir")
    check_outputs(
        [("--output", output)],
        storage_url=storage,
        artifact_dir=artifact_dir_for(storage, configured),
    )
    verdicts = write_atomic(output, lambda path: write_report(study, path))
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
    from nin_search.dashboard import make_http_server, refresh_study_note
    from nin_search.storage import display_url
    from nin_search.study import load_studies, load_study

    # Not read-only: the dashboard writes study notes (and whatever its users do there).
    studies = (
        [load_study(storage, study_name, read_only=False)]
        if study_name
        else load_studies(storage, read_only=False)
    )
    server = make_http_server(storage, host=host, port=port, artifact_dir=artifacts)
    for study in studies:
        refresh_study_note(study)
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
