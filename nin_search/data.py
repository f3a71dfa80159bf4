"""Datasets -> normalised tensors resident on the training device (the airbench design).

Images are decoded once per process into uint8 ``N x C x H x W`` tensors (image folders once per
folder content, through a cache file), split into train/validation (stratified, fixed seed),
moved to the device and normalised once with statistics of the training part only. Batches
are index slices of a device-side permutation; augmentation is batched on the device.
Decoding, resizing and normalisation are the functions of :mod:`nin_search.transforms`, which
the exported model file carries verbatim, so a new image gets exactly the training treatment.

The search reads :func:`load_search_data` only. The test split is read by
:func:`load_test_data`, which only ``nin-search train`` calls.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from nin_search.config import AugmentConfig, DataConfig
from nin_search.errors import UserError
from nin_search.image_files import class_labels, scan_image_folder
from nin_search.preprocessing import UINT8_MAX, Preprocessing
from nin_search.transforms import image_to_tensor, normalize, resize_image, to_uint8

__all__ = [
    "DeviceData",
    "ImageTensors",
    "SearchData",
    "augment_batch",
    "cache_dir",
    "input_max_of",
    "iterate_batches",
    "load_final_data",
    "load_search_data",
    "load_test_data",
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


def cache_dir() -> Path:
    """``$NIN_SEARCH_CACHE``, else ``$XDG_CACHE_HOME/nin-search``, else ``~/.cache/nin-search``."""
    if os.environ.get("NIN_SEARCH_CACHE"):
        return Path(os.environ["NIN_SEARCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nin-search"


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
    digest = hashlib.sha256(f"v2|{size}".encode())  # v2: resized by transforms.resize_image
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
                f"cannot decode image {path!r} ({error.__class__.__name__}); "
                "remove or replace the file"
            ) from None
    return images


def _read_image_folder(folder: Path, size: int, *, min_classes: int = 2) -> ImageTensors:
    if not folder.is_dir():
        raise UserError(
            f"image folder {str(folder)!r} not found; set data.root to a folder holding "
            "train/<class>/*.jpg (and optionally test/<class>/*.jpg)"
        )
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


def _read_torchvision(config: DataConfig, *, train: bool) -> ImageTensors:
    import torchvision.datasets as tv_datasets

    name = config.dataset
    root = Path(config.root or cache_dir() / "datasets").expanduser()
    dataset_class = getattr(tv_datasets, TORCHVISION_DATASETS[name])
    split = {"split": "train" if train else "test"} if name == "svhn" else {"train": train}
    try:
        dataset = dataset_class(str(root), download=config.download, **split)
    except RuntimeError as error:
        if config.download:
            raise UserError(f"{name}: download to {root} failed ({error})") from None
        raise UserError(
            f"{name} not found under {root}; set data.download = true (needs internet) "
            "or data.root to the folder that holds it"
        ) from None
    except OSError as error:  # URLError is an OSError: no network
        raise UserError(
            f"{name}: cannot download to {root} ({error}); check the network, or download "
            "it elsewhere and set data.root to it"
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


def split_indices(labels: Tensor, *, val_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Stratified train/validation indices with a fixed seed."""
    from sklearn.model_selection import train_test_split

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
        tensors.labels, val_fraction=config.val_fraction, seed=config.split_seed
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


def load_test_data(
    config: DataConfig, *, mean: tuple[float, ...], std: tuple[float, ...], device
) -> DeviceData:
    """The test split, normalised with the training statistics. Only ``train`` reads it."""
    tensors = read_dataset(config, split="test")
    return to_device(tensors.images, tensors.labels, mean, std, device)


def _crop_flip(
    source: Tensor, index: Tensor, augment: AugmentConfig, generator: torch.Generator
) -> Tensor:
    """``source[index]``, randomly cropped and flipped, in one gather.

    The random crop of the zero-padded image and the flip become one index per output pixel
    into ``source`` (seen as ``(N * H * W) x C`` rows); pixels that fall into the padding are
    zeroed by a mask. No padded copy, no per-image work.
    """
    pad = augment.crop_padding
    batch = index.shape[0]
    _, channels, height, width = source.shape
    device = source.device
    offsets = torch.randint(-pad, pad + 1, (2, batch), device=device, generator=generator)
    columns_in_order = torch.arange(width, device=device)
    if augment.flip:
        flip = torch.rand(batch, device=device, generator=generator) < 0.5
        columns_in_order = torch.where(
            flip[:, None], width - 1 - columns_in_order, columns_in_order
        )
    rows = offsets[0, :, None] + torch.arange(height, device=device)  # N x H
    cols = offsets[1, :, None] + columns_in_order  # N x W
    rows_inside, cols_inside = rows.clamp(0, height - 1), cols.clamp(0, width - 1)
    inside = (rows == rows_inside)[:, :, None] & (cols == cols_inside)[:, None, :]  # N x H x W
    image_rows = index[:, None] * height + rows_inside  # N x H, rows of the (N * H) x W grid
    pixel = image_rows[:, :, None] * width + cols_inside[:, None, :]  # N x H x W
    pixels = source.permute(0, 2, 3, 1).reshape(-1, channels)  # a view when channels_last
    images = pixels.index_select(0, pixel.view(-1)).view(batch, height, width, channels)
    images = images.mul_(inside[..., None].to(images.dtype))
    return images.permute(0, 3, 1, 2)  # N x C x H x W, channels_last memory


def augment_batch(images: Tensor, augment: AugmentConfig, generator: torch.Generator) -> Tensor:
    """Random crop (zero = mean padding) and horizontal flip, batched on the device.

    Returns ``images`` itself when ``augment`` does nothing; otherwise a channels_last batch.
    """
    if augment.crop_padding > 0:
        index = torch.arange(images.shape[0], device=images.device)
        return _crop_flip(images, index, augment, generator)
    if augment.flip:
        flip = torch.rand(images.shape[0], device=images.device, generator=generator) < 0.5
        images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
    return images


def iterate_batches(
    split: DeviceData,
    *,
    batch_size: int,
    augment: AugmentConfig | None = None,
    generator: torch.Generator,
) -> Iterator[tuple[Tensor, Tensor]]:
    """One epoch of shuffled (and augmented) ``(images, labels)`` batches, all on the device.

    Batches are index slices of one device-side permutation; the ragged last batch is dropped.
    Augmentation gathers straight from the split (no intermediate batch copy). Nothing here
    syncs with the host.

    Args:
        split: Normalised images (channels_last) and labels on the device.
        batch_size: Images per batch (at most ``len(split)``).
        augment: Random crop and flip; None for none.
        generator: A generator on the split's device (shuffling and augmentation).
    """
    augment = augment or AugmentConfig()
    images, labels = split.images, split.labels
    num_images = labels.shape[0]
    batch_size = min(batch_size, num_images)
    crop = augment.crop_padding > 0
    if crop and not images.is_contiguous(memory_format=torch.channels_last):
        images = images.contiguous(memory_format=torch.channels_last)  # once, not per batch
    order = torch.randperm(num_images, device=images.device, generator=generator)
    for step in range(max(1, num_images // batch_size)):
        index = order[step * batch_size : (step + 1) * batch_size]
        if crop:
            yield _crop_flip(images, index, augment, generator), labels[index]
        else:
            yield augment_batch(images[index], augment, generator), labels[index]
