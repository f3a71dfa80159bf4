"""A trial of a study -> the files someone deploys, each carrying what it needs to be used.

``nin-search export`` writes a trial's network as one standalone PyTorch file (with its
preprocessing constants, ``preprocess`` and class names), its stored weights as safetensors with
a metadata header, and as ONNX (``nin-search train`` writes the same for a retrained network:
:mod:`nin_search.retrained`). The facts come from the study: the data attrs ``optimize``
recorded when it created the study (input shape, class names and the :class:`Preprocessing` of
the training part), and the trial's architecture, accuracy and cost. Nothing here prints.

PyTorch is imported only to load or write weights: ``export -o model.py`` writes source code.
"""

from __future__ import annotations

import keyword
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nin_search.artifacts import download_weights, study_artifact_dir
from nin_search.errors import UserError
from nin_search.export import ExportInfo, export_metadata, export_source
from nin_search.outputs import (
    check_outputs,
    write_text_atomic,
    written_in_place,
)
from nin_search.preprocessing import Preprocessing
from nin_search.records import (
    ARCH,
    DATA,
    MACS,
    PARAMS,
    PREPROCESSING,
    TrialRecord,
)
from nin_search.spec import ArchSpec
from nin_search.study import load_searched_study
from nin_search.trials import (
    epochs_reached,
    pick_trial,
    recorded_config,
    validation_accuracy,
)

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "Written",
    "export_trial",
    "load_trial_model",
    "study_data_info",
    "study_preprocessing",
    "trial_export_info",
]


@dataclass(frozen=True)
class Written:
    """A file written for the user, and what it is (for the CLI's report)."""

    path: Path
    what: str


def study_data_info(study: optuna.Study) -> dict[str, Any]:
    """The data attrs ``optimize`` recorded: in_channels, num_classes, image_size, classes.

    Raises:
        UserError: For a study not created by ``nin-search optimize``.
    """
    info = study.user_attrs.get(DATA)
    if not info:
        raise UserError(
            f"study {study.study_name!r} was not created by nin-search (no data attrs); "
            "export, train and predict work on studies written by `nin-search optimize`"
        )
    return info


def study_preprocessing(study: optuna.Study) -> Preprocessing:
    """The preprocessing of the study's training images, as recorded when it was created.

    Raises:
        UserError: For a study created by a nin-search that did not record it.
    """
    recorded = study_data_info(study).get(PREPROCESSING)
    if recorded is None:
        raise UserError(
            f"study {study.study_name!r} was created by an older nin-search that did not record "
            "its preprocessing (mean/std of the training images), without which an exported "
            "model gives wrong answers; retrain the trial with `nin-search train` (it records "
            "its own), or search again in a new study"
        )
    try:
        return Preprocessing.from_dict(recorded)
    except ValueError as error:
        raise UserError(f"study {study.study_name!r}: unusable data attrs ({error})") from None


# Modules the exported file, or a script that uses it, imports: a file of one of these names
# would be imported in their place.
_SHADOWED_MODULES = frozenset({"torch", "torchvision", "safetensors", "PIL", "numpy", "onnx"})


def _check_module_file_name(path: Path) -> None:
    """``export -o NAME.py``: the file is imported (``from NAME import ...``), so its name must
    be a module name that hides no module it or its users import (``/dev/stdout`` or a pipe,
    read rather than imported, may be any)."""
    if written_in_place(path):
        return
    name = path.stem
    if path.suffix != ".py":
        raise UserError(f"-o {str(path)!r} is not a .py file; pass e.g. -o model.py")
    if not (name.isascii() and name.isidentifier()) or keyword.iskeyword(name):
        fixed = re.sub(r"\W", "_", name) if name else "model"
        fixed = fixed if fixed.isidentifier() and not keyword.iskeyword(fixed) else "model"
        raise UserError(
            f"-o {str(path)!r}: the file is imported as a Python module, so its name must be "
            f"one (ASCII letters, digits and _, not a keyword); pass e.g. -o {fixed}.py"
        )
    if name in _SHADOWED_MODULES or name in sys.stdlib_module_names:
        raise UserError(
            f"-o {str(path)!r} would hide the module {name!r} from every script beside it; "
            f"pass another name, e.g. -o {name}_model.py"
        )


def _accuracy_note(study: optuna.Study, trial: FrozenTrial) -> str | None:
    """``pruned after epoch 1 of 8`` for a trial that did not train every epoch (its
    validation accuracy is an early one), ``never trained: ...`` for one over a cost limit,
    ``the trial failed: ...`` or ``... still running``, else None."""
    record = TrialRecord.from_trial(trial)
    if not record.feasible:
        return f"never trained: {record.constraint_violation}"
    if trial.state == TrialState.FAIL:
        return f"the trial failed: {record.fail_reason or 'no reason recorded'}"
    if trial.state == TrialState.RUNNING:
        return "the trial is still running"
    if trial.state != TrialState.PRUNED:
        return None
    note = f"pruned after epoch {epochs_reached(trial)}"
    epochs = (recorded_config(study) or {}).get("train", {}).get("epochs")
    return note + (f" of {epochs}" if isinstance(epochs, int) else "")


def trial_export_info(
    study: optuna.Study,
    trial: FrozenTrial,
    *,
    preprocessing: Preprocessing | None,
    val_accuracy: float | None,
    test_accuracy: float | None = None,
    classes: tuple[str, ...] | None = None,
    weights_file: str | None = None,
    module_name: str | None = None,
    val_note: str | None = None,
) -> ExportInfo:
    """The facts of an exported file, from the study's data attrs and the trial (its seed
    and precision as it recorded them)."""
    record = TrialRecord.from_trial(trial)
    data_info = study_data_info(study)
    return ExportInfo(
        in_channels=data_info["in_channels"],
        num_classes=data_info["num_classes"],
        image_size=data_info["image_size"],
        study_name=study.study_name,
        trial_number=trial.number,
        val_accuracy=val_accuracy,
        test_accuracy=test_accuracy,
        params=trial.user_attrs.get(PARAMS),
        macs=trial.user_attrs.get(MACS),
        class_names=tuple(data_info.get("classes", ()) if classes is None else classes),
        weights_file=weights_file,
        preprocessing=preprocessing,
        module_name=module_name,
        val_note=val_note,
        seed=record.seed if record.feasible else None,  # over a limit: never trained
        precision=record.precision if record.feasible else None,
    )


def load_trial_model(
    study: optuna.Study, trial: FrozenTrial, spec: ArchSpec, info: ExportInfo, artifact_dir: Path
) -> nn.Module:
    """The trial's network with its stored weights, checked against its architecture.

    Raises:
        UserError: When the weights are gone, are not safetensors, or do not fit.
    """
    from nin_search.model import build_model
    from nin_search.weights import load_weights

    model = build_model(spec, in_channels=info.in_channels, num_classes=info.num_classes)
    with tempfile.TemporaryDirectory() as folder:
        staged = Path(folder) / "weights.safetensors"
        download_weights(study, trial, artifact_dir, staged)
        try:
            model.load_state_dict(load_weights(staged), strict=True)
        except (UserError, RuntimeError) as error:
            problem = (
                "are not a safetensors file"
                if isinstance(error, UserError)
                else "do not match its architecture"
            )
            raise UserError(
                f"the stored weights of trial {trial.number} {problem} (refused, never loaded "
                "as code); retrain it with `nin-search train`"
            ) from None
    return model.eval()


def export_trial(
    storage_url: str,
    study_name: str | None,
    trial_number: int | None,
    *,
    output: Path | None = None,
    weights: Path | None = None,
    onnx: Path | None = None,
    class_name: str | None = None,
    artifacts: Path | None = None,
    force: bool = False,
) -> tuple[FrozenTrial, ArchSpec, list[Written]]:
    """Writes a trial (default: the best) as a PyTorch file, safetensors weights and/or ONNX.

    Every input is checked before anything is written, and each file is written atomically:
    a refused export leaves no file behind.

    Args:
        storage_url: The study's storage.
        study_name: The study; None for the storage's only study.
        trial_number: The trial; None for the best.
        output: The standalone PyTorch file (model class, preprocessing, class names).
        weights: The trial's stored weights, with metadata (safetensors).
        onnx: The network with its weights as ONNX (needs the onnx extra).
        class_name: The model class name; by default from the study name.
        artifacts: The artifact store folder; by default the study's.
        force: Replace files that exist (else they are refused, before anything is written).

    Returns:
        The trial, its architecture and the files written.

    Raises:
        UserError: For anything the user can fix (nothing to write, missing folders, unknown
            study or trial, old study, deleted or foreign weights, missing onnx extra).
    """
    if output is None and weights is None and onnx is None:
        raise UserError(
            "nothing to export: pass -o model.py, --weights model.safetensors and/or "
            "--onnx model.onnx"
        )
    if onnx is not None:
        from nin_search.onnx_export import check_onnx_available

        check_onnx_available()
    study = load_searched_study(storage_url, study_name)
    outputs = [("--output", output), ("--weights", weights), ("--onnx", onnx)]
    check_outputs(
        [(option, path) for option, path in outputs if path is not None],
        storage_url=storage_url,
        artifact_dir=study_artifact_dir(study, storage_url, artifacts),
        replace=force,
    )
    if output is not None:
        _check_module_file_name(output)
    trial = pick_trial(study, trial_number)
    spec = ArchSpec.from_dict(trial.user_attrs[ARCH])
    info = trial_export_info(
        study,
        trial,
        preprocessing=study_preprocessing(study),
        val_accuracy=validation_accuracy(trial)[0],
        weights_file=weights.name if weights else None,
        module_name=output.stem if output and not written_in_place(output) else None,
        val_note=_accuracy_note(study, trial),
    )
    try:
        source = export_source(spec, info, class_name=class_name)
    except ValueError as error:
        raise UserError(f"{error} Pick another --class-name.") from None
    model = None
    if weights is not None or onnx is not None:
        artifact_dir = study_artifact_dir(study, storage_url, artifacts)
        model = load_trial_model(study, trial, spec, info, artifact_dir)
    metadata = export_metadata(spec, info)
    written = []
    if model is not None and weights is not None:
        from nin_search.weights import save_weights

        save_weights(model.state_dict(), weights, metadata=metadata)
        written.append(Written(weights, "safetensors, with the preprocessing in its metadata"))
    if model is not None and onnx is not None:
        from nin_search.onnx_export import export_onnx

        export_onnx(
            model,
            onnx,
            in_channels=info.in_channels,
            image_size=info.image_size,
            metadata=metadata,
        )
        written.append(Written(onnx, "ONNX, dynamic batch, preprocessing in its metadata"))
    if output is not None:
        write_text_atomic(output, source)
        written.insert(0, Written(output, f"trial #{trial.number}, {spec.summary()}"))
    return trial, spec, written
