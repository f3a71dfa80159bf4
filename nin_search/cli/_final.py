"""`nin-search export` and `train`: take a trial out of the study."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from nin_search.cli._common import (
    ArtifactsOption,
    ExistingStudyOption,
    ReadStorageOption,
    TrialOption,
    app,
    console,
    format_accuracy,
    progress_bar,
    quiet_optuna,
    study_data_info,
)
from nin_search.config import DEFAULT_STORAGE, MAX_SEED, StudyConfig
from nin_search.errors import UserError
from nin_search.outputs import check_outputs, write_atomic, write_text_atomic
from nin_search.study import accuracy_of


def _export_info(
    study: Any, trial: Any, *, val_accuracy: float | None, weights_file: str | None
) -> Any:
    """The header facts of an exported file, from the study's recorded data shape."""
    from nin_search.export import ExportInfo

    data_info = study_data_info(study)
    return ExportInfo(
        in_channels=data_info["in_channels"],
        num_classes=data_info["num_classes"],
        image_size=data_info["image_size"],
        study_name=study.study_name,
        trial_number=trial.number,
        val_accuracy=val_accuracy,
        params=trial.user_attrs.get("params"),
        macs=trial.user_attrs.get("macs"),
        class_names=tuple(data_info.get("classes", ())),
        weights_file=weights_file,
    )


@app.command()
def export(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The Python file to write.", show_default=False)
    ],
    storage: ReadStorageOption = DEFAULT_STORAGE,
    study_name: ExistingStudyOption = None,
    trial_number: TrialOption = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            help="Also write the trial's trained weights here (safetensors).",
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
    """Write a trial's architecture as one standalone PyTorch file (and its trained weights)."""
    quiet_optuna()
    from nin_search.export import export_source
    from nin_search.model import build_model
    from nin_search.spec import ArchSpec
    from nin_search.study import artifact_dir_for, download_weights, load_study, pick_trial
    from nin_search.weights import load_weights

    study = load_study(storage, study_name)
    configured = study.user_attrs.get("config", {}).get("optuna", {}).get("artifact_dir")
    artifact_dir = artifact_dir_for(storage, str(artifacts) if artifacts else configured)
    outputs = [("--output", output)] + ([("--weights", weights)] if weights else [])
    check_outputs(outputs, storage_url=storage, artifact_dir=artifact_dir)
    trial = pick_trial(study, trial_number)
    spec = ArchSpec.from_dict(trial.user_attrs["arch"])
    info = _export_info(
        study,
        trial,
        val_accuracy=accuracy_of(trial),
        weights_file=weights.name if weights else None,
    )
    try:
        source = export_source(spec, info, class_name=class_name)
    except ValueError as error:
        raise UserError(f"{error} Pick another --class-name.") from None
    if weights is not None:

        def stage(staged: Path) -> None:
            # Checked in the temporary file first: nothing refused is left at --weights.
            download_weights(study, trial, artifact_dir, staged)
            model = build_model(spec, in_channels=info.in_channels, num_classes=info.num_classes)
            try:
                model.load_state_dict(load_weights(staged), strict=True)
            except (UserError, RuntimeError) as error:
                problem = (
                    "are not a safetensors file"
                    if isinstance(error, UserError)
                    else ("do not match its architecture")
                )
                raise UserError(
                    f"the stored weights of trial {trial.number} {problem} (refused, never "
                    "loaded as code); retrain it with `nin-search train`"
                ) from None

        write_atomic(weights, stage)
    write_text_atomic(output, source)
    console.print(
        f"wrote {output} (trial #{trial.number}, {spec.summary()})", markup=False, highlight=False
    )
    if weights is not None:
        console.print(f"wrote {weights} (safetensors)", markup=False, highlight=False)


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
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            help="auto, cpu, cuda, cuda:N or mps [default: the study's].",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", min=0, max=MAX_SEED, help="Seed [default: the trial's].", show_default=False
        ),
    ] = None,
) -> None:
    """Retrain a trial's architecture from scratch on train+val; report test accuracy."""
    quiet_optuna()
    from optuna.trial import FixedTrial

    from nin_search.export import export_source
    from nin_search.retrain import retrain
    from nin_search.space import suggest_hyperparameters
    from nin_search.spec import ArchSpec
    from nin_search.study import artifact_dir_for, load_study, pick_trial
    from nin_search.train import resolve_device
    from nin_search.weights import save_weights

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
    info = _export_info(study, trial, val_accuracy=None, weights_file="weights.safetensors")
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
    output.mkdir(parents=True, exist_ok=True)
    state = result.model.state_dict()
    write_atomic(output / "weights.safetensors", lambda path: save_weights(state, path))
    write_text_atomic(output / "model.py", export_source(spec, info))
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
        "history": result.history_dicts(),
    }
    write_text_atomic(output / "history.json", json.dumps(summary, indent=2))
    console.print(
        f"trial #{trial.number} retrained for {epochs} epochs on {result.num_train} images: "
        f"test accuracy {format_accuracy(result.test_accuracy)} on {result.num_test} test images",
        markup=False,
        highlight=False,
    )
    console.print(
        f"wrote {output}/weights.safetensors, model.py, history.json", markup=False, highlight=False
    )
