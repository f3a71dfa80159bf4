"""Datasets -> normalised tensors resident on the training device (the airbench design).

Images are decoded once per process into uint8 ``N x C x H x W`` tensors
(:mod:`nin_search.datasets`), split into train/validation (stratified, fixed seed),
moved to the device and normalised once with statistics of the training part only. Batches
are index slices of a device-side permutation; augmentation is batched on the device.
Decoding, resizing and normalisation are the functions of :mod:`nin_search.transforms`, which
the exported model file carries verbatim, so a new image gets exactly the training treatment.

The search reads :func:`load_search_data` only: the test split is read by
:func:`load_final_data`, which only ``nin-search train`` (:mod:`nin_search.retrain`) calls.
Batching and augmentation are in :mod:`nin_search.batches`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nin_search.config import IMBALANCE_RATIO, AugmentConfig, DataConfig
from nin_search.datasets import ImageTensors, input_max_of, read_dataset
from nin_search.errors import UserError
from nin_search.image_files import class_labels
from nin_search.preprocessing import UINT8_MAX, Preprocessing
from nin_search.records import PREPROCESSING
from nin_search.transforms import normalize

__all__ = [
    "DeviceData",
    "SearchData",
    "load_final_data",
    "load_search_data",
    "split_indices",
    "to_device",
]


@dataclass(frozen=True)
class DeviceData:
    """One split on the training device: normalised float images and labels."""

    images: Tensor  # N x C x H x W, float32, normalised, channels_last
    labels: Tensor  # N, int64

    def __len__(self) -> int:
        return self.labels.shape[0]

    @classmethod
    def from_tensors(
        cls, images: Any, labels: Any, *, device: torch.device | str = "cpu"
    ) -> DeviceData:
        """A split from your own tensors (or numpy arrays), for :func:`nin_search.train.train`.

        Args:
            images: Float images ``N x C x H x W``, already scaled as the network should see
                them (e.g. normalised to mean 0, std 1 per channel).
            labels: Class indices ``0 .. num_classes - 1``, one per image.
            device: Where training runs; the data is copied there once.

        Raises:
            ValueError: For images that are not a non-empty 4-D float array, or labels that
                do not match them.
        """
        images, labels = torch.as_tensor(images), torch.as_tensor(labels)
        if images.ndim != 4 or not images.is_floating_point():
            raise ValueError(
                "images must be a float N x C x H x W array, but got "
                f"shape={tuple(images.shape)} dtype={images.dtype}."
            )
        if images.shape[0] == 0:
            raise ValueError("images holds no image: pass at least one.")
        if labels.shape != images.shape[:1] or labels.is_floating_point():
            raise ValueError(
                f"labels must be {images.shape[0]} integer class indices, but got "
                f"shape={tuple(labels.shape)} dtype={labels.dtype}."
            )
        images = images.to(device=device, dtype=torch.float32)
        return cls(images.contiguous(memory_format=torch.channels_last), labels.to(device).long())


@dataclass(frozen=True)
class SearchData:
    """What a trial trains and validates on; the test split is not here on purpose."""

    train: DeviceData
    val: DeviceData
    classes: tuple[str, ...]
    mean: tuple[float, ...]  # per channel, of the training part, in [0, 1] units
    std: tuple[float, ...]
    augment: AugmentConfig
    input_max: float = UINT8_MAX  # a white pixel in the dataset's raw pixels (digits: 16)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def preprocessing(self) -> Preprocessing:
        """What turns a decoded image into this data's network input (see :mod:`transforms`)."""
        return Preprocessing(
            channels=self.in_channels,
            image_size=self.image_size,
            mean=self.mean,
            std=self.std,
            input_max=self.input_max,
        )

    @property
    def in_channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.images.shape[-1]

    def imbalance(self) -> tuple[str, float] | None:
        """The most frequent class among the validation images and its share of them (what a
        network that always answers it scores), when that share is far from even
        (``IMBALANCE_RATIO``); else None."""
        counts = torch.bincount(self.val.labels.cpu(), minlength=self.num_classes)
        largest = int(counts.argmax())
        share = float(counts[largest]) / max(1, int(counts.sum()))
        even = 1.0 / self.num_classes
        if share < min(IMBALANCE_RATIO * even, (1.0 + even) / 2.0):
            return None
        return self.classes[largest], share

    def info(self) -> dict[str, Any]:
        """What a study records about its data (``records.DATA``): the shape and preprocessing
        that ``export`` and ``train`` need without a study file, and the image counts by which
        a resumed study tells that its data changed."""
        return {
            "in_channels": self.in_channels,
            "num_classes": self.num_classes,
            "image_size": self.image_size,
            "classes": list(self.classes),
            PREPROCESSING: self.preprocessing.to_dict(),  # what export writes into the model file
            "num_train": len(self.train),
            "num_val": len(self.val),
        }


def split_indices(
    labels: Tensor, *, val_fraction: float, seed: int, classes: tuple[str, ...] = ()
) -> tuple[Tensor, Tensor]:
    """Stratified train/validation indices with a fixed seed.

    Raises:
        UserError: When the split is impossible: a class with one image, or fewer validation
            (or training) images than classes. The message names the class or the
            ``data.val_fraction`` that works.
    """
    from sklearn.model_selection import train_test_split

    _check_stratifiable(labels, val_fraction, classes)
    indices = np.arange(labels.shape[0])
    try:
        train_index, val_index = train_test_split(
            indices, test_size=val_fraction, stratify=labels.numpy(), random_state=seed
        )
    except ValueError as error:
        raise UserError(
            f"cannot carve a stratified validation split ({error}); "
            "add images to the smallest class or change data.val_fraction"
        ) from None
    return torch.from_numpy(np.sort(train_index)), torch.from_numpy(np.sort(val_index))


def _check_stratifiable(labels: Tensor, val_fraction: float, classes: tuple[str, ...]) -> None:
    """sklearn's conditions for a stratified split, said in the data's own terms."""
    counts = torch.bincount(labels).tolist()
    present = [label for label, count in enumerate(counts) if count > 0]
    if not present:
        return
    smallest = min(present, key=counts.__getitem__)
    if counts[smallest] < 2:
        name = classes[smallest] if smallest < len(classes) else str(smallest)
        raise UserError(
            f"class {name!r} has {counts[smallest]} training image: a validation split "
            "needs at least 2 images of every class (one to train on, one to validate); add "
            "images to it, or remove its folder"
        )
    total = sum(counts)
    num_val = math.ceil(val_fraction * total)  # sklearn's rounding of a fractional test_size
    if num_val < len(present):
        needed = math.ceil(1000 * len(present) / total) / 1000
        raise UserError(
            f"data.val_fraction = {val_fraction} gives {num_val} validation images for "
            f"{len(present)} classes, and a stratified split needs one of each: raise "
            f"data.val_fraction to {needed} or more (or add images)"
        )
    if total - num_val < len(present):
        allowed = math.floor(1000 * (total - len(present)) / total) / 1000
        raise UserError(
            f"data.val_fraction = {val_fraction} leaves {total - num_val} training images for "
            f"{len(present)} classes; lower data.val_fraction to {allowed} or less"
        )


def _channel_stats(images: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    pixels = images.double().div_(255.0).transpose(0, 1).reshape(images.shape[1], -1)
    mean = pixels.mean(dim=1)
    std = pixels.std(dim=1).clamp_min(1e-3)
    return tuple(mean.tolist()), tuple(std.tolist())


def to_device(
    images: Tensor, labels: Tensor, mean: tuple[float, ...], std: tuple[float, ...], device
) -> DeviceData:
    """uint8 images -> normalised float32 on ``device`` (one copy, one normalisation)."""
    normalised = normalize(images.to(device, non_blocking=True), mean, std)
    return DeviceData(normalised.contiguous(memory_format=torch.channels_last), labels.to(device))


def load_search_data(config: DataConfig, *, device: torch.device | str) -> SearchData:
    """Train and validation splits on ``device``; the test split is never read here."""
    tensors = read_dataset(config, split="train")
    train_index, val_index = split_indices(
        tensors.labels,
        val_fraction=config.val_fraction,
        seed=config.split_seed,
        classes=tensors.classes,
    )
    mean, std = _channel_stats(tensors.images[train_index])
    return SearchData(
        train=to_device(
            tensors.images[train_index], tensors.labels[train_index], mean, std, device
        ),
        val=to_device(tensors.images[val_index], tensors.labels[val_index], mean, std, device),
        classes=tensors.classes,
        mean=mean,
        std=std,
        augment=config.augment,
        input_max=input_max_of(config.dataset),
    )


def load_final_data(
    config: DataConfig, *, device: torch.device | str
) -> tuple[DeviceData, DeviceData, dict]:
    """All training images (train + validation) and the test split, for ``nin-search train``.

    Normalisation statistics come from the training images only.

    Returns:
        ``(train, test, info)`` with info's ``in_channels``, ``num_classes``, ``classes`` and
        ``preprocessing`` (a :class:`Preprocessing` with these statistics).
    """
    tensors = read_dataset(config, split="train")
    test = _as_training_classes(read_dataset(config, split="test"), tensors)
    mean, std = _channel_stats(tensors.images)
    info = {
        "in_channels": tensors.images.shape[1],
        "num_classes": len(tensors.classes),
        "classes": tensors.classes,
        "preprocessing": Preprocessing(
            channels=tensors.images.shape[1],
            image_size=tensors.images.shape[-1],
            mean=mean,
            std=std,
            input_max=input_max_of(config.dataset),
        ),
    }
    return (
        to_device(tensors.images, tensors.labels, mean, std, device),
        to_device(test.images, test.labels, mean, std, device),
        info,
    )


def _as_training_classes(test: ImageTensors, train: ImageTensors) -> ImageTensors:
    """The test split labelled with the training classes' indices (matched by name), after
    checking that no test image is a training image (through a link)."""
    shared = set(test.real_paths) & set(train.real_paths)
    if shared:
        raise UserError(
            f"{len(shared)} test image(s) are also training images (e.g. {min(shared)!r}, "
            "reached through a link); a test score on them would be inflated: keep test/ and "
            "train/ apart"
        )
    if test.classes == train.classes:
        return test
    labels = class_labels(test.labels.tolist(), test.classes, train.classes, split="test")
    return ImageTensors(
        test.images, torch.tensor(labels, dtype=torch.int64), train.classes, test.real_paths
    )
