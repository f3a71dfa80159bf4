"""Classify image files with a trained network, through the preprocessing its export carries.

Every source of a network becomes an *exported module*, the file ``nin-search export`` writes:
a ``model.py`` given by the user (imported), or one generated in memory from a weights file's
metadata or from a study's trial. Prediction then always decodes the image with Pillow and runs
the module's own ``preprocess`` and ``CLASSES``, so ``nin-search predict`` is also the test of
what an export hands out. Nothing here prints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import types
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nin_search.errors import UserError
from nin_search.export import ExportInfo, export_source, info_from_metadata
from nin_search.image_files import composed, decoding, find_images, scan_image_folder
from nin_search.outputs import check_input_file, check_input_folder
from nin_search.retrained import RETRAINED_MODEL, RETRAINED_WEIGHTS
from nin_search.spec import ArchSpec
from nin_search.weights import load_weights, read_metadata

__all__ = [
    "Classifier",
    "Evaluation",
    "Prediction",
    "PredictionRun",
    "classify",
    "evaluate_folder",
    "load_classifier",
    "predict_images",
]

BATCH_SIZE = 256  # images per forward pass
MAX_CONFUSIONS = 10  # (true, predicted) pairs an evaluation lists
MODEL_FIX = "pass a `nin-search train` output folder or the model.py `nin-search export` wrote"


@dataclass(frozen=True)
class Classifier:
    """A network with the preprocessing and class names of its exported module."""

    model: nn.Module
    preprocess: Callable[..., torch.Tensor]
    classes: tuple[str, ...]
    source: str  # where it comes from, for people

    def probabilities(self, paths: list[Path]) -> torch.Tensor:
        """Class probabilities, ``len(paths) x len(classes)``, in the order of ``paths``.

        Raises:
            UserError: For a file that is not a decodable image.
        """
        rows = []
        for start in range(0, len(paths), BATCH_SIZE):
            batch = torch.cat([self._input(path) for path in paths[start : start + BATCH_SIZE]])
            with torch.inference_mode():
                rows.append(self.model(batch).float().softmax(dim=1))
        return torch.cat(rows) if rows else torch.empty(0, len(self.classes))

    def _input(self, path: Path) -> torch.Tensor:
        from PIL import Image

        remedy = "pass image files (JPEG, PNG, ...) or folders of them"
        with decoding(path, too_large="shrink it", undecodable=remedy), Image.open(path) as image:
            return self.preprocess(image)


def _run_module(source: str, name: str) -> types.ModuleType:
    """A module object from generated source (nin-search's own, from validated facts)."""
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def _import_file(path: Path) -> types.ModuleType:
    check_input_file("model file", path, "pass the model.py `nin-search export` wrote")
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(f"nin_search_model_{digest}", path)
    if spec is None or spec.loader is None:
        raise UserError(f"{path} is not a Python file; pass the model.py `nin-search export` wrote")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's file: any error is theirs to fix
        raise UserError(
            f"cannot import {path} ({error.__class__.__name__}: {str(error)[:200]}); pass the "
            "model.py `nin-search export` wrote"
        ) from None
    return module


def _classifier(
    module: types.ModuleType, state: dict[str, torch.Tensor], source: str
) -> Classifier:
    """The module's model class with ``state`` loaded, and its preprocess and CLASSES."""
    classes = [
        value
        for name in getattr(module, "__all__", [])
        if isinstance(value := getattr(module, name, None), type) and issubclass(value, nn.Module)
    ]
    preprocess = getattr(module, "preprocess", None)
    names = getattr(module, "CLASSES", None)
    if len(classes) != 1 or not callable(preprocess) or not isinstance(names, tuple):
        raise UserError(
            f"{source} is not a model file of this nin-search (it needs one model class, "
            "preprocess and CLASSES); export it again with `nin-search export -o model.py`"
        )
    model = classes[0]()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        raise UserError(
            f"the weights do not fit the network of {source} (another architecture or "
            "shape); pass the weights exported with it"
        ) from None
    return Classifier(model.eval(), preprocess, tuple(str(name) for name in names), source)


def _as_tuple(value: Any) -> Any:
    """A list as a tuple (metadata's JSON gives lists, the model file tuples); else as is."""
    return tuple(value) if isinstance(value, list) else value


def _check_weights_fit_module(weights: Path, module: types.ModuleType, source: str) -> None:
    """Weights whose metadata names other classes or another preprocessing than the model
    file's constants are refused: the same tensors would be read with other inputs or labels
    (a search's model.py with a retrained model's weights, whose statistics differ)."""
    try:
        _, info = info_from_metadata(read_metadata(weights), weights_file=weights.name)
    except ValueError:
        return  # weights without nin-search's metadata say nothing to compare
    differences = []
    names = getattr(module, "CLASSES", None)
    if info.class_names and isinstance(names, tuple) and tuple(map(str, names)) != info.class_names:
        differences.append(f"classes {list(info.class_names)} vs {list(names)}")
    facts = info.preprocessing
    for field in dataclasses.fields(facts) if facts is not None else ():
        # Each fact is the model file's constant of the same name in capitals (MEAN, RESIZE).
        recorded = _as_tuple(getattr(facts, field.name))
        value = _as_tuple(getattr(module, field.name.upper(), None))
        if value is not None and value != recorded:
            differences.append(f"{field.name.upper()} {recorded} vs {value}")
    if differences:
        raise UserError(
            f"{weights} was written with another network file than {source} (the weights' "
            f"metadata vs the file: {'; '.join(differences)}); pass the model.py written with "
            f"these weights, or --weights {weights} alone, which says what network it is"
        )


def _from_metadata(weights: Path) -> Classifier:
    metadata = read_metadata(weights)
    try:
        spec, info = info_from_metadata(metadata, weights_file=weights.name)
    except ValueError as error:
        raise UserError(
            f"{weights} does not say what network it is ({error}); pass the model file with "
            "it (--model model.py), or write it with `nin-search export --weights` or `train`"
        ) from None
    if info.preprocessing is None:
        raise UserError(f"{weights} records no preprocessing; export it again with this nin-search")
    return classifier_from_spec(spec, info, load_weights(weights), source=str(weights))


def classifier_from_spec(
    spec: ArchSpec, info: ExportInfo, state: dict[str, torch.Tensor], *, source: str
) -> Classifier:
    """The classifier of an exported module generated in memory from ``spec`` and ``info``."""
    module = _run_module(export_source(spec, info), "nin_search_exported")
    return _classifier(module, state, source)


def _from_trial(
    storage_url: str, study_name: str | None, trial_number: int | None, artifacts: Path | None
) -> Classifier:
    from nin_search.artifacts import study_artifact_dir
    from nin_search.deploy import load_trial_model, study_preprocessing, trial_export_info
    from nin_search.records import ARCH
    from nin_search.study import load_searched_study
    from nin_search.trials import pick_trial, validation_accuracy

    study = load_searched_study(storage_url, study_name)
    trial = pick_trial(study, trial_number)
    spec = ArchSpec.from_dict(trial.user_attrs[ARCH])
    info = trial_export_info(
        study,
        trial,
        preprocessing=study_preprocessing(study),
        val_accuracy=validation_accuracy(trial)[0],
    )
    artifact_dir = study_artifact_dir(study, storage_url, artifacts)
    model = load_trial_model(study, trial, spec, info, artifact_dir)
    source = f"trial #{trial.number} of study {study.study_name!r}"
    return classifier_from_spec(spec, info, model.state_dict(), source=source)


def load_classifier(
    *,
    model: Path | None = None,
    weights: Path | None = None,
    storage_url: str | None = None,
    study_name: str | None = None,
    trial_number: int | None = None,
    artifacts: Path | None = None,
) -> Classifier:
    """The network of one source, with its exported preprocessing and class names.

    Args:
        model: A ``train`` output folder (``model.py`` + ``weights.safetensors``), or an
            exported ``model.py`` (then ``weights`` is needed).
        weights: Safetensors weights: with ``model``, its weights; alone, a file written by
            ``export --weights`` or ``train``, whose metadata says what network it is.
        storage_url: With neither: the study's storage; its trial's stored weights are used.
        study_name: The study; None for the storage's only study.
        trial_number: The trial; None for the best.
        artifacts: The artifact store folder; by default the study's.

    Raises:
        UserError: For missing or unusable files, studies or trials.
    """
    if (model is not None or weights is not None) and (
        study_name is not None or trial_number is not None
    ):
        raise UserError(
            "pass either a network file (--model/--weights) or a study's trial "
            "(--study-name/--trial), not both"
        )
    if model is not None and model.is_dir():
        weights = weights or model / RETRAINED_WEIGHTS
        model = model / RETRAINED_MODEL
    if model is not None:
        check_input_file("--model", model, MODEL_FIX)
        if weights is None:
            raise UserError(
                f"--model {model} needs --weights FILE (the safetensors file exported with it)"
            )
        state = load_weights(weights)
        module = _import_file(model)
        _check_weights_fit_module(weights, module, str(model))
        return _classifier(module, state, str(model))
    if weights is not None:
        return _from_metadata(weights)
    if storage_url is None:
        raise UserError("no network: pass --model, --weights, or a study's --storage")
    return _from_trial(storage_url, study_name, trial_number, artifacts)


@dataclass(frozen=True)
class Prediction:
    path: Path
    top: tuple[tuple[str, float], ...]  # (class name, probability), most probable first


TOP_K = 3  # classes shown per image (`predict --top-k`)


def classify(classifier: Classifier, paths: list[Path], *, top_k: int = TOP_K) -> list[Prediction]:
    """The ``top_k`` most probable classes of each image."""
    probabilities = classifier.probabilities(paths)
    k = min(top_k, len(classifier.classes))
    values, indices = probabilities.topk(k, dim=1)
    return [
        Prediction(
            path,
            tuple(
                (classifier.classes[index], value)
                for value, index in zip(row_values.tolist(), row_indices.tolist(), strict=True)
            ),
        )
        for path, row_values, row_indices in zip(paths, values, indices, strict=True)
    ]


@dataclass(frozen=True)
class Evaluation:
    """Accuracy on an ImageFolder-layout folder, per class and the most common confusions."""

    folder: Path
    correct: int
    total: int
    per_class: tuple[tuple[str, int, int], ...]  # (class, correct, images), folder order
    confusions: tuple[tuple[str, str, int], ...]  # (true, predicted, count), most first

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "accuracy": self.accuracy,
            "correct": self.correct,
            "total": self.total,
            "per_class": [
                {"class": name, "correct": correct, "total": total}
                for name, correct, total in self.per_class
            ],
            "confusions": [
                {"true": true, "predicted": predicted, "count": count}
                for true, predicted, count in self.confusions
            ],
        }


def evaluate_folder(classifier: Classifier, folder: Path) -> Evaluation:
    """Classifies every image of an ImageFolder-layout folder (``folder/<class>/*``).

    The folder is read as training reads its image folders
    (:func:`nin_search.image_files.scan_image_folder`: hidden files and folders skipped, links
    followed safely), so on the split ``train`` scored it gives ``train``'s count. Class
    folders are matched to the network's classes by name; the folder may hold a subset.

    Raises:
        UserError: For a missing folder, no images, or a class folder the network does not know.
    """
    check_input_folder("--eval", folder, "pass a folder of class folders")
    try:
        dataset = scan_image_folder(folder)
    except UserError as error:
        raise UserError(f"--eval {error}") from None
    # Folder names are read in composed Unicode (NFC); a network trained before may hold NFD.
    known = composed(classifier.classes)
    unknown = [name for name in dataset.classes if name not in known]
    if unknown:
        raise UserError(
            f"--eval {folder}: class folder(s) {unknown} are not classes of the network "
            f"({', '.join(classifier.classes)}); name the folders after its classes"
        )
    paths = [Path(path) for path, _ in dataset.samples]
    truth = [dataset.classes[label] for _, label in dataset.samples]
    predicted_index = classifier.probabilities(paths).argmax(dim=1).tolist()
    predicted = [known[index] for index in predicted_index]
    pairs = Counter(zip(truth, predicted, strict=True))
    per_class = tuple((name, pairs[(name, name)], truth.count(name)) for name in dataset.classes)
    confusions = sorted(
        ((true, guess, count) for (true, guess), count in pairs.items() if true != guess),
        key=lambda item: (-item[2], item[0], item[1]),
    )
    correct = sum(pairs[(name, name)] for name in dataset.classes)
    return Evaluation(folder, correct, len(paths), per_class, tuple(confusions[:MAX_CONFUSIONS]))


@dataclass(frozen=True)
class PredictionRun:
    """What ``nin-search predict`` found: per image, and on a labelled folder."""

    source: str  # the network, in words
    predictions: tuple[Prediction, ...]
    evaluation: Evaluation | None

    def to_dict(self) -> dict[str, Any]:
        """``nin-search predict --json``."""
        result: dict[str, Any] = {
            "model": self.source,
            "predictions": [
                {
                    "path": str(prediction.path),
                    "top": [{"class": name, "probability": p} for name, p in prediction.top],
                }
                for prediction in self.predictions
            ],
        }
        if self.evaluation is not None:
            result["eval"] = self.evaluation.to_dict()
        return result


def predict_images(
    images: list[Path],
    *,
    evaluate: Path | None = None,
    top_k: int = TOP_K,
    model: Path | None = None,
    weights: Path | None = None,
    storage_url: str | None = None,
    study_name: str | None = None,
    trial_number: int | None = None,
    artifacts: Path | None = None,
) -> PredictionRun:
    """Classifies image files (or folders of them) and/or scores a labelled folder.

    Args:
        images: Image files, or folders searched recursively.
        evaluate: A labelled folder in ImageFolder layout, or None.
        top_k: Classes kept per image.
        model, weights, storage_url, study_name, trial_number, artifacts: Which network, as
            for :func:`load_classifier`.

    Raises:
        UserError: For nothing to classify, or anything :func:`load_classifier`,
            :func:`find_images` or :func:`evaluate_folder` refuses.
    """
    if not images and evaluate is None:
        raise UserError("nothing to classify: pass image files or folders, or --eval DIR")
    paths = find_images(images)
    classifier = load_classifier(
        model=model,
        weights=weights,
        storage_url=storage_url,
        study_name=study_name,
        trial_number=trial_number,
        artifacts=artifacts,
    )
    predictions = classify(classifier, paths, top_k=top_k) if paths else []
    evaluation = evaluate_folder(classifier, evaluate) if evaluate is not None else None
    return PredictionRun(classifier.source, tuple(predictions), evaluation)
