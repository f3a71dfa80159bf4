"""Benchmark 2, data path: nin-search's loader vs torchvision ImageFolder + DataLoader.

The data path alone: producing augmented (random crop 32 with 4 pixels of padding, random
horizontal flip), normalised batches of one epoch over cifar10-mini's 10,000 training JPEGs,
batch 128, on the CPU, no model. Both sides yield ``(images, labels)`` float32 batches.

* nin-search: JPEGs decoded once into a uint8 cache file (keyed by the folder's content),
  normalised once into one float tensor, then ``batches.iterate_batches``: index slices of a
  permutation, crop and flip as one batched gather.
* torchvision: ``ImageFolder`` + ``DataLoader`` with ``RandomCrop(32, padding=4)``,
  ``RandomHorizontalFlip()``, ``ToTensor()``, ``Normalize``, at ``num_workers`` 0 and 2
  (persistent workers, a warm-up epoch first: their start-up cost is not counted).
* For information: the decoded uint8 tensors with per-image torchvision v2 transforms in a
  Python loop (the naive tensor path).

Also reports the first run's decode (fresh cache) against the cached second run.

    .venv/bin/python benchmarks/data_path.py [--quick]

Ends with ``RESULT data_path <nin-search img/s / faster DataLoader img/s>`` (target >= 5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from collections.abc import Iterable

import torch
from _common import (
    CIFAR10_MEAN,
    CIFAR10_MINI,
    CIFAR10_STD,
    machine_line,
    print_result,
    print_table,
    repeat_timed,
    timed,
)

from nin_search.batches import iterate_batches
from nin_search.config import AugmentConfig, DataConfig
from nin_search.data import DeviceData, to_device
from nin_search.datasets import ImageTensors, read_dataset

BATCH_SIZE = 128
AUGMENT = AugmentConfig(crop_padding=4, flip=True)


def count_images(batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> int:
    return sum(images.shape[0] for images, _ in batches)


def nin_search_setup(config: DataConfig) -> tuple[DeviceData, list[tuple[str, float]]]:
    """Decode into a fresh cache, read the cache, normalise: each step timed."""
    steps: list[tuple[str, float]] = []
    previous = os.environ.get("NIN_SEARCH_CACHE")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["NIN_SEARCH_CACHE"] = cache
        try:
            seconds, _ = timed(lambda: read_dataset(config, split="train"))
            steps.append(("first run: scan + decode JPEGs + write cache", seconds))
            seconds, tensors = timed(lambda: read_dataset(config, split="train"))
            steps.append(("second run: scan + fingerprint + read cache", seconds))
        finally:
            if previous is None:
                os.environ.pop("NIN_SEARCH_CACHE", None)
            else:
                os.environ["NIN_SEARCH_CACHE"] = previous
    seconds, split = timed(
        lambda: to_device(tensors.images, tensors.labels, CIFAR10_MEAN, CIFAR10_STD, "cpu")
    )
    steps.append(("normalise once (uint8 -> float32, channels_last)", seconds))
    return split, steps


def nin_search_epochs(split: DeviceData, epochs: int) -> list[tuple[float, int]]:
    generator = torch.Generator().manual_seed(0)

    def epoch() -> int:
        batches = iterate_batches(
            split, batch_size=BATCH_SIZE, augment=AUGMENT, generator=generator
        )
        return count_images(batches)

    epoch()  # warm-up
    return repeat_timed(epoch, epochs)


def dataloader_epochs(workers: int, epochs: int) -> list[tuple[float, int]]:
    from torch.utils.data import DataLoader
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    transform = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD),
        ]
    )
    dataset = ImageFolder(str(CIFAR10_MINI / "train"), transform=transform)
    loader = DataLoader(
        dataset,
        batch_size=BATCH_SIZE,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(0),
    )
    if workers:
        count_images(loader)  # warm-up epoch: starts the workers
    else:
        count_images(batch for batch, _ in zip(loader, range(5), strict=False))
    return repeat_timed(lambda: count_images(loader), epochs)


def naive_tensor_epochs(tensors: ImageTensors, epochs: int) -> list[tuple[float, int]]:
    from torchvision.transforms import v2

    transform = v2.Compose(
        [
            v2.RandomCrop(32, padding=4),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(CIFAR10_MEAN, CIFAR10_STD),
        ]
    )
    images, labels = tensors.images, tensors.labels

    def epoch() -> int:
        order = torch.randperm(len(labels))
        count = 0
        for step in range(len(labels) // BATCH_SIZE):
            index = order[step * BATCH_SIZE : (step + 1) * BATCH_SIZE]
            batch = torch.stack([transform(image) for image in images[index]])
            count += batch.shape[0]
        return count

    return repeat_timed(epoch, epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, noisier run (< 1 min)")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads for both sides; 0 = torch's default"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    epochs = 1 if args.quick else 3
    config = DataConfig(dataset="imagefolder", root=str(CIFAR10_MINI))
    split, setup = nin_search_setup(config)
    tensors = read_dataset(config, split="train")
    results = {
        "nin-search (device tensors, batched augmentation)": nin_search_epochs(split, 3 * epochs),
        "DataLoader, num_workers=0": dataloader_epochs(0, epochs),
        "DataLoader, num_workers=2": dataloader_epochs(2, epochs),
        "naive tensor path (per-image v2 transforms)": naive_tensor_epochs(tensors, epochs),
    }

    def rate(runs: list[tuple[float, int]], pick) -> float:
        return pick(count / seconds for seconds, count in runs)

    print(machine_line())
    print_table(
        "cifar10-mini data path, first run vs cached",
        ["step", "seconds"],
        [(name, f"{seconds:.3f}") for name, seconds in setup],
    )
    first, second = setup[0][1], setup[1][1]
    print(
        f"cached second run: {second / first:.1%} of the first run's decode ({first / second:.0f}x)"
    )
    print_table(
        f"Data path alone (no model): one epoch of augmented, normalised batches of "
        f"{BATCH_SIZE}, {len(split)} cifar10-mini train images, CPU",
        ["loader", "img/s (best)", "img/s (median)", "epochs timed"],
        [
            (name, f"{rate(runs, max):,.0f}", f"{rate(runs, statistics.median):,.0f}", len(runs))
            for name, runs in results.items()
        ],
    )
    rates = [rate(runs, max) for runs in results.values()]
    ratio = rates[0] / max(rates[1], rates[2])
    print(f"nin-search / faster DataLoader (best epochs): {ratio:.1f}x")
    print_result("data_path", ratio)


if __name__ == "__main__":
    main()
