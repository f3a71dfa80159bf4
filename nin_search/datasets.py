"""Datasets -> decoded uint8 images on the host, one split at a time (:func:`read_dataset`).

scikit-learn's digits (a fixed, stratified test split), image folders (``train/<class>/*``
and ``test/<class>/*``, decoded once per folder content through a cache file) and
torchvision's datasets (downloaded when ``data.download`` is set). Decoding and resizing are
the functions of :mod:`nin_search.transforms`, which the exported model file carries verbatim.
:mod:`nin_search.data` splits, normalises and moves them to the training device.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from nin_search.config import DataConfig, cache_dir, torchvision_root
from nin_search.errors import UserError
from nin_search.image_files import decoding, scan_image_folder
from nin_search.preprocessing import UINT8_MAX
from nin_search.transforms import image_to_tensor, resize_image, to_uint8

__all__ = [
    "DIGITS_TEST_FRACTION",
    "DIGITS_TEST_SEED",
    "ImageTensors",
    "check_test_split",
    "input_max_of",
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
    from PIL import Image

    images = torch.empty((len(samples), 3, size, size), dtype=torch.uint8)
    remedies = {"too_large": "shrink it or remove it", "undecodable": "remove or replace the file"}
    for index, (path, _) in enumerate(samples):
        with decoding(path, **remedies), Image.open(path) as image:
            images[index] = resize_image(image_to_tensor(image, 3), size)
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
