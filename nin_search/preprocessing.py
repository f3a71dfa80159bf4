"""What turns a decoded image into a network's input, as nin-search trained the network.

A trained network is only usable with the exact preprocessing of its training images (the way
torchvision's weights carry ``transforms()`` and timm's ``pretrained_cfg`` carries ``mean``,
``std``, ``input_size`` and ``interpolation``). :class:`Preprocessing` holds those facts;
:mod:`nin_search.data` creates it from the training images, the study records it, and the
exported model file, the safetensors metadata and the ONNX metadata all carry it. The steps
themselves, in PyTorch, are :mod:`nin_search.transforms`. No torch, no optuna here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from nin_search.errors import check_int

__all__ = ["RESIZE_METHOD", "UINT8_MAX", "Preprocessing"]

# The one resize nin-search uses, in words: torch.nn.functional.interpolate(mode="bilinear",
# antialias=True, align_corners=False) on the 0..255 pixels, rounded back to 0..255. The image
# is stretched to image_size x image_size (the aspect ratio is not kept), as in training.
RESIZE_METHOD = "bilinear-antialias"
UINT8_MAX = 255.0  # the value of a white pixel in a decoded 8-bit image


@dataclass(frozen=True)
class Preprocessing:
    """Decoded image -> network input, in four steps (:func:`transforms.to_model_input`).

    1. Pixels to 0..255 integers: an 8-bit image as it is; float pixels in ``[0, input_max]``
       are scaled by ``255 / input_max`` and rounded.
    2. Resized to ``image_size x image_size`` (``resize``), unless already that size.
    3. Divided by 255.
    4. Per channel, minus ``mean``, divided by ``std``.

    Args:
        channels: Channels of the input: 1 (grey) or 3 (RGB).
        image_size: Side of the square input, in pixels.
        mean: Per channel mean of the training images, in ``[0, 1]`` units (pixel / 255).
        std: Per channel standard deviation of the training images, same units.
        input_max: The value of a white pixel in the dataset's raw pixels (255 for image files
            and torchvision datasets; 16 for scikit-learn's digits, whose grey levels are 0..16).
        resize: How images of another size are resized: :data:`RESIZE_METHOD`.
    """

    channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_max: float = UINT8_MAX
    resize: str = RESIZE_METHOD

    def __post_init__(self) -> None:
        for name in ("channels", "image_size"):
            value = getattr(self, name)
            check_int(name, value, minimum=1)
        for name in ("mean", "std"):
            values = getattr(self, name)
            if isinstance(values, (str, bytes)) or not all(
                isinstance(value, (int, float)) and not isinstance(value, bool) for value in values
            ):
                raise ValueError(
                    f"{name} must be a sequence of numbers, but got {name}={values!r}."
                )
            values = tuple(float(value) for value in values)
            if len(values) != self.channels or not all(math.isfinite(v) for v in values):
                raise ValueError(
                    f"{name} must hold {self.channels} finite numbers (one per channel), "
                    f"but got {name}={list(values)!r}."
                )
            object.__setattr__(self, name, values)
        if min(self.std) <= 0:
            raise ValueError(f"std must be > 0, but got std={list(self.std)!r}.")
        input_max = self.input_max
        if (
            isinstance(input_max, bool)
            or not isinstance(input_max, (int, float))
            or not math.isfinite(input_max)
            or input_max <= 0
        ):
            raise ValueError(f"input_max must be a number > 0, but got input_max={input_max!r}.")
        object.__setattr__(self, "input_max", float(input_max))
        if self.resize != RESIZE_METHOD:
            raise ValueError(
                f"resize must be {RESIZE_METHOD!r} (the only one nin-search trains with), "
                f"but got resize={self.resize!r}."
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, for the study's user attrs and file metadata."""
        return {
            "channels": self.channels,
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "input_max": self.input_max,
            "resize": self.resize,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Preprocessing:
        """The inverse of :meth:`to_dict`.

        Raises:
            ValueError: If ``data`` is not a dict of valid values (the message quotes them).
        """
        if not isinstance(data, dict):
            raise ValueError(f"preprocessing must be a dict, but got {data!r}.")
        known = {"channels", "image_size", "mean", "std", "input_max", "resize"}
        missing = sorted({"channels", "image_size", "mean", "std"} - set(data))
        if missing:
            raise ValueError(f"preprocessing lacks {', '.join(missing)}: got {data!r}.")
        try:
            return cls(**{key: value for key, value in data.items() if key in known})
        except TypeError as error:
            raise ValueError(f"preprocessing {data!r}: {error}") from None

    def describe(self) -> str:
        """One line for people, e.g. ``"pixels 0..255 -> resized to 32 x 32 (bilinear, ..."``."""
        scale = (
            "pixels 0..255"
            if self.input_max == UINT8_MAX
            else f"pixels in [0, {self.input_max:g}] -> x 255/{self.input_max:g}, rounded to 0..255"
        )
        mean = ", ".join(f"{value:.4f}" for value in self.mean)
        std = ", ".join(f"{value:.4f}" for value in self.std)
        return (
            f"{scale} -> {self.image_size} x {self.image_size} (bilinear, antialiased) "
            f"-> / 255 -> minus mean ({mean}), divided by std ({std})"
        )
