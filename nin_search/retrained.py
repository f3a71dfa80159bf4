"""``nin-search train``: a trial retrained from scratch on train + validation, scored once on
the test split, written as a folder someone deploys (weights, ``model.py``, ``history.json``,
optionally ONNX), with the same facts as an export (:mod:`nin_search.deploy`). Nothing here
prints.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from optuna.trial import FixedTrial, FrozenTrial
from torch import nn

from nin_search.artifacts import artifact_dir_for
from nin_search.config import RETRAIN_EPOCHS_PER_SEARCH_EPOCH, SCHEDULE, StudyConfig
from nin_search.datasets import check_test_split
from nin_search.deploy import Written, trial_export_info
from nin_search.devices import resolve_device
from nin_search.errors import UserError
from nin_search.export import ExportInfo, export_metadata, export_source
from nin_search.outputs import check_folder, check_outputs, write_text_atomic
from nin_search.records import ARCH, SEED, TrialRecord
from nin_search.retrain import RetrainEpoch, RetrainResult, retrain
from nin_search.space import suggest_hyperparameters
from nin_search.spec import ArchSpec, Hyperparameters
from nin_search.study import load_searched_study
from nin_search.summary import retrain_history
from nin_search.trials import pick_trial, recorded_study_config
from nin_search.vocabulary import SCHEDULES
from nin_search.weights import save_weights

__all__ = [
    "RETRAINED_HISTORY",
    "RETRAINED_MODEL",
    "RETRAINED_WEIGHTS",
    "RETRAIN_FILES",
    "RetrainPlan",
    "prepare_retrain",
    "retrain_trial",
    "save_retrained",
]


# What ``nin-search train`` writes into its output folder.
RETRAINED_WEIGHTS = "weights.safetensors"
RETRAINED_MODEL = "model.py"
RETRAINED_HISTORY = "history.json"
RETRAIN_FILES = (RETRAINED_WEIGHTS, RETRAINED_MODEL, RETRAINED_HISTORY)


def save_retrained(
    folder: Path,
    model: nn.Module,
    spec: ArchSpec,
    info: ExportInfo,
    summary: dict[str, Any],
) -> list[Written]:
    """Writes a retrained network: weights (with metadata), model.py and history.json.

    Args:
        folder: The output folder (created if needed).
        model: The trained network.
        spec: Its architecture.
        info: The export facts (with the retraining's preprocessing and test accuracy).
        summary: What history.json records (JSON types).
    """
    folder.mkdir(parents=True, exist_ok=True)
    module_name = RETRAINED_MODEL.removesuffix(".py")
    info = dataclasses.replace(info, weights_file=RETRAINED_WEIGHTS, module_name=module_name)
    written = [
        Written(folder / RETRAINED_WEIGHTS, "safetensors, with metadata"),
        Written(folder / RETRAINED_MODEL, "the model class, its preprocessing and class names"),
        Written(folder / RETRAINED_HISTORY, "train accuracy per epoch, test accuracy once"),
    ]
    save_weights(model.state_dict(), written[0].path, metadata=export_metadata(spec, info))
    write_text_atomic(written[1].path, export_source(spec, info))
    write_text_atomic(written[2].path, json.dumps(summary, indent=2))
    return written


@dataclass(frozen=True)
class RetrainPlan:
    """A trial to retrain from scratch, every input checked (see :func:`prepare_retrain`)."""

    study_name: str
    trial: FrozenTrial
    config: StudyConfig
    spec: ArchSpec
    hyperparameters: Hyperparameters
    info: ExportInfo
    output: Path
    epochs: int
    schedule: str
    seed: int
    device: torch.device
    onnx: Path | None = None  # also the retrained network as ONNX


def prepare_retrain(
    storage_url: str,
    study_name: str | None,
    trial_number: int | None,
    *,
    output: Path,
    epochs: int | None = None,
    schedule: str = SCHEDULE,
    device: str | None = None,
    seed: int | None = None,
    onnx: Path | None = None,
    force: bool = False,
) -> RetrainPlan:
    """Checks everything ``nin-search train`` needs before the long retraining starts.

    Args:
        storage_url: The study's storage.
        study_name: The study; None for the storage's only study.
        trial_number: The trial; None for the best.
        output: The folder for weights, model.py and history.json.
        epochs: Epochs; None for 3x the study's epochs per trial.
        schedule: ``"cosine"`` or ``"step"``.
        device: The training device; None for the study's.
        seed: The seed; None for the trial's.
        onnx: Also write the retrained network as ONNX here (needs the onnx extra).
        force: Replace the files of an earlier ``train`` in ``output`` (else refused, before
            the retraining).

    Raises:
        UserError: For a bad schedule or output, an unknown study or trial, a study not
            written by ``nin-search optimize``, an unusable device, or a missing onnx extra.
    """
    if schedule not in SCHEDULES:
        raise UserError(f"--schedule must be one of {', '.join(SCHEDULES)}, but got {schedule!r}")
    check_folder("--output", output)  # created by the command, in a folder that exists
    if onnx is not None:
        from nin_search.onnx_export import check_onnx_available

        check_onnx_available()
    study = load_searched_study(storage_url, study_name)
    trial = pick_trial(study, trial_number)
    violation = TrialRecord.from_trial(trial).constraint_violation
    if violation:
        raise UserError(
            f"trial {trial.number} broke the study's cost limits ({violation}), which the "
            "model is meant to meet; train a trial within them (see `nin-search best`)"
        )
    config = recorded_study_config(study, command="train")
    check_test_split(config.data)  # scored on at the end: missing, it fails now, not then
    # Checked before the long retraining: a study without data attrs fails now, not after.
    info = trial_export_info(study, trial, preprocessing=None, val_accuracy=None)
    check_outputs(
        [("--output", output / name) for name in RETRAIN_FILES]
        + ([] if onnx is None else [("--onnx", onnx)]),
        storage_url=storage_url,
        artifact_dir=artifact_dir_for(storage_url, config.optuna.artifact_dir),
        created_folders=[output],
        replace=force,
    )
    return RetrainPlan(
        study_name=study.study_name,
        trial=trial,
        config=config,
        spec=ArchSpec.from_dict(trial.user_attrs[ARCH]),
        hyperparameters=suggest_hyperparameters(FixedTrial(trial.params), config.train),
        info=info,
        output=output,
        epochs=epochs or RETRAIN_EPOCHS_PER_SEARCH_EPOCH * config.train.epochs,
        schedule=schedule,
        seed=trial.user_attrs.get(SEED, 0) if seed is None else seed,
        device=resolve_device(device or config.train.device),
        onnx=onnx,
    )


def retrain_trial(
    plan: RetrainPlan,
    *,
    on_epoch: Callable[[RetrainEpoch], None] | None = None,
    on_start: Callable[[], None] | None = None,
) -> tuple[RetrainResult, list[Written]]:
    """Retrains ``plan``'s trial on train+val, scores it on test and writes the output folder.

    Returns:
        The retraining's result and the files written (weights, model.py, history.json, and
        the ONNX file when the plan has one).
    """
    result = retrain(
        plan.config,
        plan.spec,
        plan.hyperparameters,
        epochs=plan.epochs,
        seed=plan.seed,
        device=plan.device,
        schedule=plan.schedule,
        on_epoch=on_epoch,
        on_start=on_start,
        classes=plan.info.class_names or None,
    )
    # The retrained network's own facts: statistics of train + validation, its test accuracy.
    info = dataclasses.replace(
        plan.info,
        preprocessing=result.preprocessing,
        class_names=result.classes,
        test_accuracy=result.test_accuracy,
        seed=plan.seed,
        precision=result.precision,
        training=(
            f"retrained from scratch on train + validation ({result.num_train} images), "
            f"{plan.epochs} epoch{'s' if plan.epochs != 1 else ''}, {plan.schedule} schedule; "
            f"the test split ({result.num_test} images) scored once, after the last epoch, in fp32"
        ),
    )
    history = retrain_history(
        plan.study_name,
        plan.trial,
        result,
        spec=plan.spec,
        hyperparameters=plan.hyperparameters,
        epochs=plan.epochs,
        schedule=plan.schedule,
        seed=plan.seed,
    )
    written = save_retrained(plan.output, result.model, plan.spec, info, history)
    if plan.onnx is not None:
        from nin_search.onnx_export import export_onnx

        export_onnx(
            result.model,
            plan.onnx,
            in_channels=info.in_channels,
            image_size=info.image_size,
            metadata=export_metadata(plan.spec, info),  # as the weights file's
        )
        written.append(Written(plan.onnx, "ONNX, dynamic batch, the same metadata"))
    return result, written
