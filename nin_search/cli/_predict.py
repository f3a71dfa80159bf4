"""`nin-search predict`: classify image files, or score a labelled folder, with a network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from nin_search.cli._common import (
    ArtifactDirOption,
    ExistingStudyOption,
    JsonOption,
    ReadStorageOption,
    TrialOption,
    app,
    console,
    format_accuracy,
    quiet_optuna,
)
from nin_search.config import DEFAULT_STORAGE


@app.command()
def predict(
    images: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Image files, or folders of them (searched recursively).", show_default=False
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="A `train` output folder, or a model.py written by `export` (with --weights). "
            "It is imported: pass only files you trust.",
            show_default=False,
        ),
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            help="Safetensors weights: of --model, or alone a file written by `export "
            "--weights` or `train` (its metadata says what network it is).",
            show_default=False,
        ),
    ] = None,
    evaluate: Annotated[
        Path | None,
        typer.Option(
            "--eval",
            help="A labelled folder in ImageFolder layout (DIR/<class>/*): print accuracy, per "
            "class, and the most common confusions.",
            show_default=False,
        ),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Classes shown per image.")] = 3,
    as_json: JsonOption = False,
    storage: ReadStorageOption = DEFAULT_STORAGE,
    study_name: ExistingStudyOption = None,
    trial_number: TrialOption = None,
    artifact_dir: ArtifactDirOption = None,
) -> None:
    """Classify image files with a trained network (a trial's stored weights by default),
    through the exact preprocessing the exported model carries."""
    quiet_optuna()
    from nin_search.predict import predict_images

    run = predict_images(
        list(images or []),
        evaluate=evaluate,
        top_k=top_k,
        model=model,
        weights=weights,
        storage_url=storage,
        study_name=study_name,
        trial_number=trial_number,
        artifacts=artifact_dir,
    )
    if as_json:
        console.print_json(json.dumps(run.to_dict()))
        return
    for prediction in run.predictions:
        top = ", ".join(f"{name} {100 * p:.1f}%" for name, p in prediction.top)
        console.print(f"{prediction.path}: {top}", markup=False, highlight=False, soft_wrap=True)
    if run.evaluation is not None:
        _print_evaluation(run.evaluation, run.source)


def _print_evaluation(evaluation: Any, source: str) -> None:
    console.print(
        f"accuracy {format_accuracy(evaluation.accuracy)} ({evaluation.correct}/"
        f"{evaluation.total}) on {evaluation.folder} with {source}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    table = Table(title="per class", title_justify="left")
    for column in ("class", "accuracy", "correct", "images"):
        table.add_column(column)
    for name, correct, total in evaluation.per_class:
        table.add_row(name, format_accuracy(correct / total), str(correct), str(total))
    console.print(table)
    if evaluation.confusions:
        confused = ", ".join(f"{t} -> {p} {n}" for t, p, n in evaluation.confusions)
        console.print(
            f"most confused (true -> predicted): {confused}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
