"""`nin-search train`: retrain a trial from scratch on train+val and score it on test."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nin_search.cli._common import (
    ExistingStudyOption,
    ReadStorageOption,
    StudyDeviceOption,
    TrialOption,
    app,
    console,
    format_accuracy,
    print_written,
    progress_bar,
    quiet_optuna,
)
from nin_search.config import DEFAULT_STORAGE, MAX_SEED, SCHEDULE
from nin_search.vocabulary import SCHEDULES


@app.command(name="train")
def train_command(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for weights, model.py and history.json.")
    ] = Path("final"),
    storage: ReadStorageOption = DEFAULT_STORAGE,
    study_name: ExistingStudyOption = None,
    trial_number: TrialOption = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            min=1,
            help="Epochs [default: 3x the study's epochs per trial].",
            show_default=False,
        ),
    ] = None,
    schedule: Annotated[
        str, typer.Option("--schedule", help=f"Learning-rate schedule: {' or '.join(SCHEDULES)}.")
    ] = SCHEDULE,
    device: StudyDeviceOption = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", min=0, max=MAX_SEED, help="Seed [default: the trial's].", show_default=False
        ),
    ] = None,
    onnx: Annotated[
        Path | None,
        typer.Option(
            "--onnx",
            help="Also write the retrained network as ONNX, e.g. final.onnx (needs "
            "pip install 'nin-search[onnx]').",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the files of an earlier train in --output.")
    ] = False,
) -> None:
    """Retrain a trial's architecture from scratch on train+val; report test accuracy."""
    quiet_optuna()
    from nin_search.retrained import prepare_retrain, retrain_trial

    plan = prepare_retrain(
        storage,
        study_name,
        trial_number,
        output=output,
        epochs=epochs,
        schedule=schedule,
        device=device,
        seed=seed,
        onnx=onnx,
        force=force,
    )
    progress = progress_bar()
    task = progress.add_task(f"trial #{plan.trial.number}", total=plan.epochs, info="")

    def on_epoch(epoch: Any) -> None:
        progress.update(
            task,
            completed=epoch.epoch,
            info=f"train {format_accuracy(epoch.train_accuracy)}",  # test: scored once, after
        )

    try:  # the bar starts once the data is loaded and checked: an error before prints alone
        result, written = retrain_trial(plan, on_epoch=on_epoch, on_start=progress.start)
    finally:
        progress.stop()
    console.print(
        f"trial #{plan.trial.number} retrained for {plan.epochs} "
        f"epoch{'s' if plan.epochs != 1 else ''} on {result.num_train} images: test accuracy "
        f"{format_accuracy(result.test_accuracy)} on {result.num_test} test images "
        f"({result.test_correct} correct)",
        markup=False,
        highlight=False,
    )
    print_written(written)
