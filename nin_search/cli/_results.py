"""`nin-search best`, `trials`, `report` and `dashboard`: look at an existing study."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from nin_search.cli._common import (
    ArtifactDirOption,
    ExistingStudyOption,
    JsonOption,
    ReadStorageOption,
    app,
    console,
    leaderboard_table,
    quiet_optuna,
    summary_table,
)
from nin_search.config import DASHBOARD_HOST, DASHBOARD_PORT, DEFAULT_STORAGE
from nin_search.errors import UserError


@app.command()
def best(
    storage: ReadStorageOption = DEFAULT_STORAGE,
    study_name: ExistingStudyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the best trial of an existing study."""
    quiet_optuna()
    from nin_search.study import load_searched_study
    from nin_search.summary import best_summary

    study = load_searched_study(storage, study_name)
    if as_json:
        from nin_search.storage_messages import study_options

        where = study_options(storage, study.study_name)
        console.print_json(json.dumps(best_summary(study, where=where)))
        return
    console.print(summary_table(study))


@app.command()
def trials(
    storage: ReadStorageOption = DEFAULT_STORAGE,
    study_name: ExistingStudyOption = None,
    top: Annotated[
        int | None,
        typer.Option(
            "--top", min=1, help="Show the first N trials [default: all].", show_default=False
        ),
    ] = None,
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            help="accuracy (highest first; pruned trials by their last reported epoch), or a "
            "cost, smallest first: params, macs or latency_ms.",
        ),
    ] = "accuracy",
    states: Annotated[
        str | None,
        typer.Option(
            "--state",
            help="Only trials in these states, comma-separated: complete, pruned, fail, "
            "running, waiting [default: all].",
            show_default=False,
        ),
    ] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV for spreadsheets.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List the trials of an existing study, most accurate first: the leaderboard."""
    if as_csv and as_json:
        raise UserError("pass either --csv or --json, not both")
    quiet_optuna()
    from nin_search.study import load_searched_study
    from nin_search.summary import trials_csv, trials_table

    study = load_searched_study(storage, study_name)
    rows = trials_table(
        study, top=top, sort=sort, states=None if states is None else states.split(",")
    )
    if as_json:
        console.print_json(json.dumps(rows))
    elif as_csv:
        console.out(trials_csv(rows), end="", highlight=False)
    else:
        from nin_search.trials import best_trials

        total = len(study.get_trials(deepcopy=False))
        front = None
        if len(study.directions) > 1:  # which trials are on the Pareto front
            front = frozenset(trial.number for trial in best_trials(study))
        console.print(
            leaderboard_table(study.study_name, rows, total=total, sort=sort, front=front)
        )


StudyNamesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--study-name",
        help="Study name; repeat it to pool several studies (datasets) into one consensus "
        "report [default: the storage's only searched study].",
        show_default=False,
    ),
]


def _print_lines(lines: list[str]) -> None:
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)


@app.command()
def report(
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path(
        "report.html"
    ),
    storage: ReadStorageOption = DEFAULT_STORAGE,
    study_names: StudyNamesOption = None,
    every: Annotated[
        bool,
        typer.Option("--all", help="Pool every searched study of the storage (one per dataset)."),
    ] = False,
) -> None:
    """Write a self-contained HTML report on when MLP conv beats plain conv, and print the
    answer. With several studies, pool their ablations into a consensus report."""
    quiet_optuna()
    from nin_search.report import report_studies

    _print_lines(report_studies(storage, output, names=study_names, every=every))


@app.command()
def dashboard(
    storage: ReadStorageOption = DEFAULT_STORAGE,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = DASHBOARD_HOST,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port.")] = DASHBOARD_PORT,
    artifact_dir: ArtifactDirOption = None,
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
    from nin_search.dashboard import open_dashboard, serve
    from nin_search.storage_messages import display_url

    dashboard = open_dashboard(
        storage, host=host, port=port, artifact_dir=artifact_dir, study_name=study_name
    )
    for name, numbers in dashboard.forgotten.items():
        if numbers:
            console.print(
                f"study {name!r}: dropped the artifact entries of trials {numbers}, whose weights "
                "files are gone",
                markup=False,
                highlight=False,
            )
    console.print(
        f"optuna-dashboard for {display_url(storage)} at {dashboard.url} (Ctrl-C to stop)",
        markup=False,
        highlight=False,
    )
    serve(dashboard.server)
