"""The facts of an export as strings, for the metadata of a safetensors or ONNX file."""

from __future__ import annotations

import datetime
import json

from nin_search import __version__
from nin_search.export._info import ExportInfo, parse_date
from nin_search.preprocessing import Preprocessing
from nin_search.spec import ArchSpec, SpecError

# The metadata keys of a safetensors or ONNX file, all strings (JSON where a value is not).
METADATA_KEYS = (
    "producer",
    "exported",
    "study",
    "trial",
    "val_accuracy",
    "test_accuracy",
    "params",
    "macs",
    "arch",
    "arch_summary",
    "in_channels",
    "num_classes",
    "image_size",
    "classes",
    "preprocessing",
    "seed",
    "precision",
    "training",
)


def export_metadata(spec: ArchSpec, info: ExportInfo) -> dict[str, str]:
    """What a weights (or ONNX) file needs to say about itself, as strings.

    Args:
        spec: The architecture.
        info: The facts of the export (preprocessing, classes, trial, accuracies, cost).

    Returns:
        The keys of :data:`METADATA_KEYS` that are known: ``producer``, ``exported`` (ISO
        date), ``arch`` (the spec as JSON), ``arch_summary``, shape and counts as decimal
        strings, ``classes`` and ``preprocessing`` as JSON, accuracies as decimal fractions,
        ``seed`` and ``precision`` (``fp32``, ``bf16``, ``fp16``) of the training.
    """
    created = parse_date(info.created) if info.created else datetime.date.today()
    metadata = {
        "producer": f"nin-search {__version__}",
        "exported": created.isoformat(),
        "arch": json.dumps(spec.to_dict(), sort_keys=True),
        "arch_summary": spec.summary(),
        "in_channels": str(int(info.in_channels)),
        "num_classes": str(int(info.num_classes)),
        "image_size": str(int(info.image_size)),
    }
    optional = {
        "study": info.study_name,
        "trial": info.trial_number,
        "val_accuracy": info.val_accuracy,
        "test_accuracy": info.test_accuracy,
        "params": info.params,
        "macs": info.macs,
        "seed": info.seed,
        "precision": info.precision,
        "training": info.training,
    }
    metadata.update({key: str(value) for key, value in optional.items() if value is not None})
    if info.class_names:
        metadata["classes"] = json.dumps(list(info.class_names), ensure_ascii=False)
    if info.preprocessing is not None:
        metadata["preprocessing"] = json.dumps(info.preprocessing.to_dict())
    return metadata


def info_from_metadata(
    metadata: dict[str, str], *, weights_file: str | None = None
) -> tuple[ArchSpec, ExportInfo]:
    """The architecture and export facts that :func:`export_metadata` wrote.

    Raises:
        ValueError: When a fact is missing or does not parse (the message names it).
    """
    missing = [
        key for key in ("arch", "in_channels", "num_classes", "image_size") if key not in metadata
    ]
    if missing:
        raise ValueError(f"no nin-search metadata ({', '.join(missing)} missing)")
    try:
        spec = ArchSpec.from_dict(json.loads(metadata["arch"]))
        preprocessing = metadata.get("preprocessing")
        numbers = {
            key: int(metadata[key])
            for key in (
                "in_channels",
                "num_classes",
                "image_size",
                "trial",
                "params",
                "macs",
                "seed",
            )
            if key in metadata
        }
        accuracies = {
            key: float(metadata[key])
            for key in ("val_accuracy", "test_accuracy")
            if key in metadata
        }
        info = ExportInfo(
            in_channels=numbers["in_channels"],
            num_classes=numbers["num_classes"],
            image_size=numbers["image_size"],
            study_name=metadata.get("study"),
            trial_number=numbers.get("trial"),
            params=numbers.get("params"),
            macs=numbers.get("macs"),
            seed=numbers.get("seed"),
            precision=metadata.get("precision"),
            training=metadata.get("training"),
            class_names=tuple(json.loads(metadata.get("classes", "[]"))),
            weights_file=weights_file,
            created=metadata.get("exported"),
            preprocessing=(
                None
                if preprocessing is None
                else Preprocessing.from_dict(json.loads(preprocessing))
            ),
            **accuracies,
        )
    except (ValueError, TypeError, SpecError) as error:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"unreadable nin-search metadata: {error}") from None
    return spec, info
