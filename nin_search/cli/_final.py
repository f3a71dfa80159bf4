"""`nin-search export` and `train`: take a trial out of the study."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from nin_search.cli._common import (
    ArtifactsOption,
    ExistingStudyOption,
    ReadStorageOption,
    StudyDeviceOption,
    TrialOption,
    app,
    console,
    format_accuracy,
    progress_bar,
    quiet_optuna,
)
from nin_search.config import DEFAULT_STORAGE, MAX_SEED, StudyConfig
from nin_search.errors import UserError
from nin_search.outputs import check_outputs
from nin_search.trials import accuracy_of


def _print_written(written: list[Any]) -> None:
    for item in written:
        console.print(
            f"wrote {item.path} ({item.what})", markup=False, highlight=False, soft_wrap=True
        )


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
    artifacts: ArtifactsOption = None,
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
        artifacts=artifacts,
    )
    _print_written(written)


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
        str, typer.Option("--schedule", help="Learning-rate schedule: cosine or step.")
    ] = "cosine",
    device: StudyDeviceOption = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", min=0, max=MAX_SEED, help="Seed [default: the trial's].", show_default=False
        ),
    ] = None,
) -> None:
    """Retrain a trial's architecture from scratch on train+val; report test accuracy."""
    quiet_optuna()
    import dataclasses

    from optuna.trial import FixedTrial

    from nin_search.artifacts import artifact_dir_for
    from nin_search.deploy import save_retrained, trial_export_info
    from nin_search.devices import resolve_device
    from nin_search.retrain import retrain
    from nin_search.space import suggest_hyperparameters
    from nin_search.spec import ArchSpec
    from nin_search.study import load_study
    from nin_search.trials import pick_trial

    if schedule not in ("cosine", "step"):
        raise UserError(f"--schedule must be cosine or step, but got {schedule!r}")
    if output.exists() and not output.is_dir():
        raise UserError(f"--output {str(output)!r} is a file; pass a folder")
    study = load_study(storage, study_name)
    trial = pick_trial(study, trial_number)
    if "config" not in study.user_attrs:
        raise UserError(f"study {study.study_name!r} was not created by nin-search optimize")
    config = StudyConfig.model_validate(study.user_attrs["config"])
    # Checked before the long retraining: a study without data attrs fails now, not after.
    info = trial_export_info(study, trial, preprocessing=None, val_accuracy=None)
    files = ("weights.safetensors", "model.py", "history.json")
    check_outputs(
        [("--output", output / name) for name in files],
        storage_url=storage,
        artifact_dir=artifact_dir_for(storage, config.optuna.artifact_dir),
        create_folders=True,
    )
    spec = ArchSpec.from_dict(trial.user_attrs["arch"])
    hparams = suggest_hyperparameters(FixedTrial(trial.params), config.train)
    epochs = epochs or 3 * config.train.epochs
    seed = trial.user_attrs.get("seed", 0) if seed is None else seed
    training_device = resolve_device(device or config.train.device)
    progress = progress_bar()
    task = progress.add_task(f"trial #{trial.number}", total=epochs, info="")

    def on_epoch(epoch: Any) -> None:
        progress.update(
            task,
            completed=epoch.epoch,
            info=f"train {format_accuracy(epoch.train_accuracy)} | "
            f"test {format_accuracy(epoch.test_accuracy)}",
        )

    with progress:
        result = retrain(
            config,
            spec,
            hparams,
            epochs=epochs,
            seed=seed,
            device=training_device,
            schedule=schedule,
            on_epoch=on_epoch,
            classes=info.class_names or None,
        )
    # The retrained network's own facts: statistics of train + validation, its test accuracy.
    info = dataclasses.replace(
        info,
        preprocessing=result.preprocessing,
        class_names=result.classes,
        test_accuracy=result.test_accuracy,
    )
    summary = {
        "study": study.study_name,
        "trial": trial.number,
        "baseline": trial.user_attrs.get("baseline"),
        "arch": spec.to_dict(),
        "arch_summary": spec.summary(),
        "hyperparameters": hparams.to_dict(),
        "epochs": epochs,
        "schedule": schedule,
        "seed": seed,
        "num_train": result.num_train,
        "num_test": result.num_test,
        "search_val_accuracy": accuracy_of(trial),
        "test_accuracy": result.test_accuracy,
        "test_correct": result.test_correct,
        "classes": list(result.classes),
        "preprocessing": result.preprocessing.to_dict(),
        "history": result.history_dicts(),
    }
    written = save_retrained(output, result.model, spec, info, summary)
    console.print(
        f"trial #{trial.number} retrained for {epochs} epochs on {result.num_train} images: "
        f"test accuracy {format_accuracy(result.test_accuracy)} on {result.num_test} test images "
        f"({result.test_correct} correct)",
        markup=False,
        highlight=False,
    )
    _print_written(written)
