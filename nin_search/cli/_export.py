"""`nin-search export`: write a trial as files someone deploys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nin_search.cli._common import (
    ArtifactDirOption,
    ExistingStudyOption,
    ReadStorageOption,
    TrialOption,
    app,
    print_written,
    quiet_optuna,
)
from nin_search.config import DEFAULT_STORAGE


@app.command()
def export(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The Python file to write: the model class, its preprocessing and class names.",
            show_default=False,
        ),
    ] = None,
    storage: ReadStorageOption = DEFAULT_STORAGE,
    study_name: ExistingStudyOption = None,
    trial_number: TrialOption = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            help="Also write the trial's trained weights here (safetensors, with metadata).",
            show_default=False,
        ),
    ] = None,
    onnx: Annotated[
        Path | None,
        typer.Option(
            "--onnx",
            help="Also write the trained network as ONNX (pip install 'nin-search[onnx]').",
            show_default=False,
        ),
    ] = None,
    class_name: Annotated[
        str | None,
        typer.Option(
            "--class-name",
            help="Model class name [default: from the study name].",
            show_default=False,
        ),
    ] = None,
    artifact_dir: ArtifactDirOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace output files that exist.")
    ] = False,
) -> None:
    """Write a trial as one standalone PyTorch file (with its preprocessing and class names),
    its trained weights and/or ONNX."""
    quiet_optuna()
    from nin_search.deploy import export_trial

    _, _, written = export_trial(
        storage,
        study_name,
        trial_number,
        output=output,
        weights=weights,
        onnx=onnx,
        class_name=class_name,
        artifacts=artifact_dir,
        force=force,
    )
    print_written(written)
