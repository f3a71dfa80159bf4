"""Datasets -> normalised tensors resident on the training device (the airbench design).

Images are decoded once per process into uint8 ``N x C x H x W`` tensors (image folders once per
folder content, through a cache file), split into train/validation (stratified, fixed seed),
moved to the device and normalised once with statistics of the training part only. Batches
are index slices of a device-side permutation; augmentation is batched on the device.
Decoding, resizing and normalisation are the functions of :mod:`nin_search.transforms`, which
the exported model file carries verbatim, so a new image gets exactly the training treatment.

The search reads :func:`load_search_data` only: the test split is read by
:func:`load_final_data`, which only ``nin-search train`` (:mod:`nin_search.retrain`) calls.
Batching and augmentation are in :mod:`nin_search.batches`.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nin_search.config import (
    IMBALANCE_RATIO,
    AugmentConfig,
    DataConfig,
    cache_dir,
    torchvision_root,
)
from nin_search.errors import UserError
from nin_search.image_files import class_labels, decode_failure, scan_image_folder
from nin_search.preprocessing import UINT8_MAX, Preprocessing
from nin_search.records import PREPROCESSING
from nin_search.transforms import image_to_tensor, normalize, resize_image, to_uint8

__all__ = [
    "DeviceData",
    "ImageTensors",
    "SearchData",
    "check_test_split",
    "input_max_of",
    "load_final_data",
    "load_search_data",
    "read_dataset",
]

TORCHVISION_DATASETS = {
    "cifar10": "CIFAR10",
    "cifar100": "CIFAR100",
    "mnist": "MNIST",
    "fashion-mnist": "FashionMNIST",
    "svhn": "SVHN",
}


@dataclass(frozen=True)
class ImageTensors:
    """Decoded images on the host: uint8 ``N x C x H x W`` and int64 labels."""

    images: Tensor
    labels: Tensor
    classes: tuple[str, ...]
    real_paths: tuple[str, ...] = ()  # image folders: each image's real path (links resolved)


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


DIGITS_TEST_FRACTION = 0.2  # a fixed, stratified test split of load_digits' 1,797 images
DIGITS_TEST_SEED = 0
DIGITS_INPUT_MAX = 16.0  # load_digits' grey levels are 0..16


def input_max_of(dataset: str) -> float:
    """The value of a white pixel in a dataset's raw pixels: 16 for digits, else 255."""
    return DIGITS_INPUT_MAX if dataset == "digits" else UINT8_MAX


def _read_digits(split: str) -> ImageTensors:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # 8x8 grey levels 0..16 -> 0..255, as the exported preprocessing does it.
    images = to_uint8(torch.from_numpy(digits.images), DIGITS_INPUT_MAX).numpy()[:, None]
    train_index, test_index = train_test_split(
        np.arange(len(images)),
        test_size=DIGITS_TEST_FRACTION,
        stratify=digits.target,
        random_state=DIGITS_TEST_SEED,
    )
    index = np.sort(test_index if split == "test" else train_index)
    return ImageTensors(
        torch.from_numpy(images[index]),
        torch.from_numpy(digits.target[index].astype(np.int64)),
        tuple(str(name) for name in digits.target_names),
    )


def _folder_fingerprint(samples: list[tuple[str, int]], root: Path, size: int) -> str:
    # v3: 16-bit grey scaled to 0..255, not clamped (v2: resized by transforms.resize_image)
    digest = hashlib.sha256(f"v3|{size}".encode())
    for path, label in samples:
        stat = os.stat(path)
        relative = os.path.relpath(path, root)
        digest.update(f"{relative}|{label}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _decode_images(samples: list[tuple[str, int]], size: int) -> Tensor:
    """RGB uint8 ``N x 3 x size x size``; other sizes resized as the exported model does."""
    from PIL import Image, UnidentifiedImageError

    images = torch.empty((len(samples), 3, size, size), dtype=torch.uint8)
    for index, (path, _) in enumerate(samples):
        try:
            with Image.open(path) as image:
                images[index] = resize_image(image_to_tensor(image, 3), size)
        except Image.DecompressionBombError as error:
            raise UserError(
                f"image {path!r} is too large to decode safely ({error}); shrink it or remove it"
            ) from None
        except (UnidentifiedImageError, OSError, ValueError) as error:
            raise UserError(
                f"cannot decode image {path!r} ({decode_failure(error, path)}); "
                "remove or replace the file"
            ) from None
    return images


def _missing_split(folder: Path) -> UserError:
    """What to do about a missing ``train/`` or ``test/`` folder under ``data.root``."""
    root = folder.parent
    if folder.name == "test" and (root / "train").is_dir():
        held = " (a val/ folder is not read: the validation split is carved from train/)"
        return UserError(
            f"image folder {str(folder)!r} not found: `nin-search train` scores the retrained "
            f"network on test/<class>/* under data.root; add a test/ folder of images the "
            f"search never saw{held if (root / 'val').is_dir() else ''}"
        )
    if folder.name == "train" and root.name in ("train", "test") and root.parent.is_dir():
        return UserError(  # data.root points at train/ itself
            f"image folder {str(folder)!r} not found: data.root is the folder that holds "
            f"train/, so set it to {str(root.parent)!r}"
        )
    return UserError(
        f"image folder {str(folder)!r} not found; set data.root to a folder holding "
        "train/<class>/*.jpg (and, for `nin-search train`, test/<class>/*.jpg)"
    )


def check_test_split(config: DataConfig) -> None:
    """Raises :class:`UserError` when an image folder dataset has no ``test/`` folder, which
    ``nin-search train`` scores on (checked before anything runs; other datasets have one)."""
    if config.dataset != "imagefolder":
        return
    folder = Path(config.root or "").expanduser() / "test"
    if not folder.is_dir():
        raise _missing_split(folder)


def _read_image_folder(folder: Path, size: int, *, min_classes: int = 2) -> ImageTensors:
    if not folder.is_dir():
        raise _missing_split(folder)
    dataset = scan_image_folder(folder)  # links followed safely, each image once
    if len(dataset.classes) < min_classes:
        raise UserError(
            f"{folder}: found {len(dataset.classes)} class folder(s) {list(dataset.classes)}; "
            "a classifier needs at least 2 (one sub-folder per class)"
        )
    samples = list(dataset.samples)
    fingerprint = _folder_fingerprint(samples, folder, size)
    cache_file = cache_dir() / f"imagefolder-{fingerprint}.pt"
    if cache_file.is_file():
        try:
            cached = torch.load(cache_file, weights_only=True)
            return ImageTensors(
                cached["images"], cached["labels"], dataset.classes, dataset.real_paths
            )
        except Exception:
            cache_file.unlink(missing_ok=True)
    images = _decode_images(samples, size)
    labels = torch.tensor([label for _, label in samples], dtype=torch.int64)
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_suffix(f".tmp{os.getpid()}")
        torch.save({"images": images, "labels": labels}, temporary)
        temporary.replace(cache_file)
    except OSError:
        pass  # a read-only cache only costs speed
    return ImageTensors(images, labels, dataset.classes, dataset.real_paths)


def _folders(root: Path) -> set[Path]:
    """``root`` and every folder under it (none when it is missing)."""
    if not root.is_dir():
        return set()
    return {root, *(path for path in root.rglob("*") if path.is_dir())}


def _remove_new_empty_folders(root: Path, before: set[Path]) -> None:
    """Removes the folders under ``root`` (itself included) that were not in ``before`` and
    are empty: what a failed torchvision download leaves (``MNIST/raw/``). No file is touched."""
    for folder in sorted(_folders(root) - before, key=lambda path: len(path.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only succeeds when empty


def _read_torchvision(config: DataConfig, *, train: bool) -> ImageTensors:
    import torchvision.datasets as tv_datasets

    name = config.dataset
    root = Path(config.root or torchvision_root()).expanduser()
    dataset_class = getattr(tv_datasets, TORCHVISION_DATASETS[name])
    split = {"split": "train" if train else "test"} if name == "svhn" else {"train": train}
    before = _folders(root)
    try:
        dataset = dataset_class(str(root), download=config.download, **split)
    except (RuntimeError, OSError) as error:  # URLError is an OSError: no network
        _remove_new_empty_folders(root, before)  # what the failed download created
        if config.download:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise UserError(
                f"{name}: download to {root} failed ({reason}); check the network, or "
                "download it elsewhere and set data.root to it"
            ) from None
        raise UserError(
            f"{name} not found under {root}; set data.download = true (needs internet) "
            "or data.root to the folder that holds it"
        ) from None
    data = dataset.data
    images = torch.as_tensor(np.asarray(data))
    if images.ndim == 3:  # MNIST-style N x H x W
        images = images[:, None]
    elif name != "svhn":  # CIFAR: N x H x W x C
        images = images.permute(0, 3, 1, 2)
    targets = dataset.labels if name == "svhn" else dataset.targets
    classes = getattr(dataset, "classes", None) or [str(label) for label in range(10)]
    return ImageTensors(
        images.contiguous(), torch.as_tensor(np.asarray(targets), dtype=torch.int64), tuple(classes)
    )


def read_dataset(config: DataConfig, *, split: str) -> ImageTensors:
    """Decodes one split (``"train"`` or ``"test"``) of a dataset into uint8 tensors.

    Raises:
        UserError: If the data is missing, corrupt, or has no test split.
    """
    size = config.resolved_image_size
    if config.dataset == "digits":
        tensors = _read_digits(split)
    elif config.dataset == "imagefolder":
        folder = Path(config.root or "").expanduser() / split
        # A test split may hold any of the training classes, even one.
        tensors = _read_image_folder(folder, size, min_classes=2 if split == "train" else 1)
    else:
        tensors = _read_torchvision(config, train=split == "train")
    return ImageTensors(
        resize_image(tensors.images, size), tensors.labels, tensors.classes, tensors.real_paths
    )


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
