"""Decoded image -> network input, in PyTorch only: the preprocessing, defined once.

nin-search's data path (:mod:`nin_search.data`) runs these functions on every training and test
image, and ``nin-search export`` copies every function of this module, verbatim, into the
exported model file, so the same image gives the same input tensor, bit for bit, in both. That
is why this module imports only ``torch``, ``typing`` and ``warnings`` (no NumPy, no Pillow
import, nothing from nin_search), and why its functions take every fact as an argument: the
facts are :class:`nin_search.preprocessing.Preprocessing`, and the exported file holds them as
constants.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["image_to_tensor", "normalize", "resize_image", "to_model_input", "to_uint8"]


def image_to_tensor(image: Any, channels: int) -> torch.Tensor:
    """A decoded Pillow image -> uint8 ``channels x H x W`` (mode "L" for 1 channel, else "RGB").

    16-bit grey (Pillow modes "I;16*" and "I", as a 16-bit PNG opens) is scaled from 0..65535
    to 0..255 and rounded: Pillow's own conversion would clamp every value above 255 to white.
    A palette image with a transparent colour goes through RGBA, as Pillow asks (the same
    colours). A 32-bit float image (mode "F") raises ``ValueError``: it has no fixed white
    level, and Pillow would clamp a 0..1 image to black.
    """
    if image.mode == "F":
        raise ValueError(
            "a 32-bit float image (Pillow mode F) has no fixed white level; save it as an 8- or "
            "16-bit image"
        )
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        wide = image.convert("I")  # int32, whatever the file's byte order
        width, height = wide.size
        values = torch.frombuffer(bytearray(wide.tobytes()), dtype=torch.int32)
        grey = (values.to(torch.float64) * (255.0 / 65535.0)).round().clamp(0, 255)
        return grey.to(torch.uint8).view(1, height, width).expand(channels, -1, -1).contiguous()
    converted = image.convert("L" if channels == 1 else "RGB")
    width, height = converted.size
    pixels = torch.frombuffer(bytearray(converted.tobytes()), dtype=torch.uint8)
    return pixels.view(height, width, channels).permute(2, 0, 1).contiguous()


def to_uint8(pixels: torch.Tensor, input_max: float) -> torch.Tensor:
    """Pixels -> uint8 0..255: uint8 as it is; other values in ``[0, input_max]`` scaled by
    ``255 / input_max`` (in float64) and rounded half to even, then clamped."""
    if pixels.dtype == torch.uint8:
        return pixels
    scaled = pixels.to(torch.float64) * (255.0 / input_max)
    return scaled.round().clamp(0, 255).to(torch.uint8)


def resize_image(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``(N x) C x H x W`` -> ``(N x) C x size x size``; unchanged when already that size.

    Bilinear with antialiasing on float pixels, rounded back to uint8. The image is stretched
    to a square: the aspect ratio is not kept.
    """
    if images.shape[-2] == size and images.shape[-1] == size:
        return images
    batch = images if images.dim() == 4 else images[None]
    resized = F.interpolate(
        batch.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    resized = resized.round_().clamp_(0, 255).to(torch.uint8)
    return resized if images.dim() == 4 else resized[0]


def normalize(
    images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """uint8 ``N x C x H x W`` -> float32 ``(pixel / 255 - mean) / std``, per channel."""
    mean_tensor = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    std_tensor = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    return images.float().div_(255.0).sub_(mean_tensor).div_(std_tensor)


def to_model_input(
    image: Any,
    *,
    channels: int,
    image_size: int,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    input_max: float,
) -> torch.Tensor:
    """A decoded image (or a batch) -> the float32 ``N x C x image_size x image_size`` input.

    Pixels in a range that does not fit the convention (non-uint8 pixels above ``input_max``,
    which are clamped, or all within [0, 1] when white is ``input_max`` > 1, as ``to_tensor``
    gives; uint8 pixels all within ``[0, input_max]`` when that is below 255, as raw levels
    cast to uint8 give) are preprocessed as given, with a ``UserWarning`` that says what to
    pass instead.

    Args:
        image: A Pillow image (converted to grey or RGB to match ``channels``); or pixels as a
            tensor or NumPy array, ``H x W``, ``C x H x W`` or ``N x C x H x W``: uint8 0..255,
            or any other dtype in ``[0, input_max]``. Grey pixels (``H x W`` or one channel)
            are repeated to three channels for an RGB network, as Pillow converts them.
        channels: Channels the network takes.
        image_size: Side of the square input; other sizes are resized.
        mean: Per channel mean, in ``[0, 1]`` units.
        std: Per channel standard deviation, in ``[0, 1]`` units.
        input_max: The value of a white pixel in non-uint8 pixels.

    Raises:
        ValueError: For pixels of another shape or channel count.
    """
    if hasattr(image, "convert") and hasattr(image, "tobytes"):  # a Pillow image
        pixels = image_to_tensor(image, channels)
    else:  # a tensor as it is; anything else (a NumPy array, nested lists) copied
        given = image if torch.is_tensor(image) else torch.tensor(image)
        _warn_about_range(given, input_max)
        pixels = to_uint8(given, input_max)
    shape = tuple(pixels.shape)
    if pixels.dim() == 2:
        pixels = pixels[None]
    if pixels.dim() in (3, 4) and pixels.shape[-3] == 1 and channels == 3:
        pixels = pixels.expand(*pixels.shape[:-3], 3, *pixels.shape[-2:])  # grey -> RGB
    if pixels.dim() not in (3, 4) or pixels.shape[-3] != channels:
        raise ValueError(
            f"expected a Pillow image or pixels shaped H x W, C x H x W or N x C x H x W with "
            f"C = {channels}, but got shape {shape}"
        )
    batch = pixels if pixels.dim() == 4 else pixels[None]
    return normalize(resize_image(batch, image_size), mean, std)


def _warn_about_range(pixels: torch.Tensor, input_max: float) -> None:
    """Warns when the pixels' range suggests another white level than the one assumed."""
    if pixels.numel() == 0:
        return
    largest = float(pixels.max())
    if pixels.dtype == torch.uint8:
        if input_max < 255 and 0 < largest <= input_max:
            warnings.warn(
                f"uint8 pixels are read as 0..255, but these are all within 0..{input_max:g}, "
                "the raw levels of the training data: pass them as another dtype (e.g. "
                "torch.long) to read them as such",
                UserWarning,
                stacklevel=3,
            )
    elif largest > input_max:
        warnings.warn(
            f"pixels are read as 0..{input_max:g}, but these reach {largest:g} and are clamped "
            "to white: pass 8-bit pixels as torch.uint8, or input_max= the value of a white "
            "pixel",
            UserWarning,
            stacklevel=3,
        )
    elif input_max > 1 and 0 < largest <= 1:
        warnings.warn(
            f"float pixels are read as 0..{input_max:g}, but these are all within [0, 1] (as "
            "torchvision's to_tensor gives): pass input_max=1.0 to read them as such",
            UserWarning,
            stacklevel=3,
        )
