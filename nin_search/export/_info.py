"""``ExportInfo``: what an exported file tells about its network, validated; class names."""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass

from nin_search.errors import check_int
from nin_search.preprocessing import Preprocessing
from nin_search.vocabulary import RUN_PRECISIONS

MAX_CLASS_NAME_LENGTH = 60  # characters; keeps `model = ClassName()` lines short
_DEFAULT_CLASS_NAME = "NinSearchNet"
# Letters and digits of any script (str patterns' \w), spaces and ``_.,:;=<>()%+-``: no quote,
# backslash, line break or control character that could end the docstring.
_UNSAFE_TEXT = re.compile(r"[^\w .,:;=<>()%+\-]+")


@dataclass(frozen=True)
class ExportInfo:
    """What the header of an exported file tells about the network and where it came from.

    Args:
        in_channels: Channels of the input images (the exported class's default).
        num_classes: Number of classes (the exported class's default).
        image_size: Side of the (square) training images, in pixels; sets the shape comments.
        study_name: The study's name. User text: shown only in a reduced, safe form.
        trial_number: The trial the architecture comes from.
        val_accuracy: Validation accuracy in [0, 1] (shown as a percentage).
        params: Number of trainable parameters.
        macs: Multiply-accumulates per image.
        class_names: One name per class, in label order (e.g. image folder names). User text:
            shown only in a reduced, safe form.
        weights_file: Name of the weights file in the loading example. User text: reduced to
            a safe file name.
        created: ISO date of the export (``YYYY-MM-DD``); today when None.
        preprocessing: What turns a decoded image into the input, as in training; with it
            the file carries the preprocessing constants and ``preprocess`` (its channels and
            image size must equal ``in_channels`` and ``image_size``).
        test_accuracy: Test accuracy in [0, 1] (after ``nin-search train``).
        module_name: The name the file is imported by in the usage example (``model`` for
            ``model.py``); a name that is not an identifier gives ``model``.
        val_note: Said after the validation accuracy, e.g. ``pruned after epoch 1 of 8``
            (shown in a reduced, safe form).
        seed: The seed the weights were trained with.
        precision: What they were trained (and the accuracies measured) in: ``fp32``,
            ``bf16`` or ``fp16``. The exported file runs float32.
        training: How these weights were trained when it is not the search's run, e.g.
            ``retrained on train + validation (1437 images), 24 epochs, cosine schedule``.
    """

    in_channels: int
    num_classes: int
    image_size: int
    study_name: str | None = None
    trial_number: int | None = None
    val_accuracy: float | None = None
    params: int | None = None
    macs: int | None = None
    class_names: tuple[str, ...] = ()
    weights_file: str | None = None
    created: str | None = None
    preprocessing: Preprocessing | None = None
    test_accuracy: float | None = None
    module_name: str | None = None
    val_note: str | None = None
    seed: int | None = None
    precision: str | None = None
    training: str | None = None

    def __post_init__(self) -> None:
        self._check_numbers()
        self._check_texts()
        self._check_class_names()
        if self.created is not None:
            parse_date(self.created)
        self._check_preprocessing()
        self._check_precision()

    def _check_numbers(self) -> None:
        check_int("in_channels", self.in_channels, minimum=1)
        check_int("num_classes", self.num_classes, minimum=2)
        check_int("image_size", self.image_size, minimum=1)
        for name in ("trial_number", "params", "macs", "seed"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=0)
        for name in ("val_accuracy", "test_accuracy"):
            accuracy = getattr(self, name)
            if accuracy is not None and (
                isinstance(accuracy, bool)
                or not isinstance(accuracy, (int, float))
                or not 0.0 <= accuracy <= 1.0
            ):
                raise ValueError(f"{name} must be in [0, 1], but got {name}={accuracy!r}.")

    def _check_precision(self) -> None:
        if self.precision is not None and self.precision not in RUN_PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(RUN_PRECISIONS)}, but got "
                f"precision={self.precision!r}."
            )

    def _check_texts(self) -> None:
        for name in ("study_name", "created", "module_name", "val_note", "training"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ValueError(
                    f"{name} must be a string, but got {name}={getattr(self, name)!r}."
                )
        if self.weights_file is not None:
            if not isinstance(self.weights_file, (str, os.PathLike)):
                raise ValueError(
                    f"weights_file must be a file name, but got weights_file={self.weights_file!r}."
                )
            object.__setattr__(self, "weights_file", os.fspath(self.weights_file))

    def _check_class_names(self) -> None:
        if isinstance(self.class_names, str) or not all(
            isinstance(name, str) for name in self.class_names
        ):
            raise ValueError(
                "class_names must be a sequence of strings, "
                f"but got class_names={self.class_names!r}."
            )
        object.__setattr__(self, "class_names", tuple(self.class_names))
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names must name all {self.num_classes} classes, "
                f"but got {len(self.class_names)}: class_names={list(self.class_names)!r}."
            )

    def _check_preprocessing(self) -> None:
        preprocessing = self.preprocessing
        if preprocessing is None:
            return
        if not isinstance(preprocessing, Preprocessing):
            raise ValueError(
                f"preprocessing must be a Preprocessing, but got preprocessing={preprocessing!r}."
            )
        shape = (preprocessing.channels, preprocessing.image_size)
        if shape != (self.in_channels, self.image_size):
            raise ValueError(
                f"preprocessing must give {self.in_channels} x {self.image_size} x "
                f"{self.image_size} inputs, but got preprocessing={preprocessing!r}."
            )


def parse_date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return datetime.datetime.fromisoformat(text).date()
    except ValueError:
        raise ValueError(
            f"created must be an ISO date like '2025-01-31', but got created={text!r}."
        ) from None


def safe_text(text: str, *, max_length: int) -> str:
    """``text`` with every run of characters other than letters, digits (any script), spaces
    and ``_.,:;=<>()%+-`` made one space."""
    cleaned = " ".join(_UNSAFE_TEXT.sub(" ", text).split())
    return cleaned[:max_length].rstrip()


def class_name_for(study_name: str | None) -> str:
    """A Python class name for a study: ``"digits"`` -> ``"DigitsNet"``.

    Words (runs of ASCII letters and digits) are capitalised and joined, and ``Net`` is appended
    unless the name already ends with it: ``"my study-2!"`` -> ``"MyStudy2Net"``. A name that
    would start with a digit gets a ``Study`` prefix; an empty one gives ``"NinSearchNet"``.

    Args:
        study_name: The study's name; any text, or None.

    Returns:
        A valid identifier of at most :data:`MAX_CLASS_NAME_LENGTH` characters, ending in ``Net``.
    """
    words = re.findall(r"[A-Za-z0-9]+", study_name or "")
    name = "".join(word[0].upper() + word[1:] for word in words)[: MAX_CLASS_NAME_LENGTH - 12]
    if not name:
        return _DEFAULT_CLASS_NAME
    if name[0].isdigit():
        name = f"Study{name}"
    return name if name.endswith("Net") else f"{name}Net"
