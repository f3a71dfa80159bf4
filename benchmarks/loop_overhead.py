"""Benchmark 1, loop overhead: nin-search's trial training vs a plain hand-written PyTorch loop.

Both sides train the same model (same initial weights), on the same device-resident
cifar10-mini tensors, with the same batch size, optimizer (SGD, Nesterov momentum),
channels_last layout and precision, and evaluate on the validation split after every epoch.
No augmentation on either side (benchmark 2 measures the data path). The plain loop is what
one writes by hand: randperm, index, forward, loss, backward, step; nin-search adds its
learning-rate schedule, loss bookkeeping and per-epoch callback. Runs alternate
(nin, plain, plain, nin, ...) so that a busy machine slows both alike; the best run of each
side is compared.

    .venv/bin/python benchmarks/loop_overhead.py [--quick]

Ends with ``RESULT loop_overhead <nin-search img/s / plain img/s>`` (target >= 0.97).
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F
from _common import CIFAR10_MINI, CIFAR_ARCH, machine_line, print_result, print_table, timed
from torch import nn

from nin_search.config import DataConfig
from nin_search.data import DeviceData, load_search_data
from nin_search.devices import configure_cpu_allocator
from nin_search.model import build_model
from nin_search.spec import Hyperparameters
from nin_search.train import TrainSettings, train

BATCH_SIZE = 128
EVAL_BATCH_SIZE = 1024
HPARAMS = Hyperparameters(optimizer="sgd", learning_rate=0.05, weight_decay=5e-4, batch_size=128)


def plain_loop(
    model: nn.Module, train_split: DeviceData, val_split: DeviceData, *, epochs: int, seed: int
) -> float:
    """The hand-written baseline: same steps, nothing else."""
    torch.manual_seed(seed)
    model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=HPARAMS.learning_rate,
        momentum=HPARAMS.momentum,
        nesterov=True,
        weight_decay=HPARAMS.weight_decay,
    )
    images, labels = train_split.images, train_split.labels
    accuracy = 0.0
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(labels))
        for step in range(len(labels) // BATCH_SIZE):
            index = order[step * BATCH_SIZE : (step + 1) * BATCH_SIZE]
            loss = F.cross_entropy(model(images[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, len(val_split), EVAL_BATCH_SIZE):
                logits = model(val_split.images[start : start + EVAL_BATCH_SIZE])
                hits = logits.argmax(1) == val_split.labels[start : start + EVAL_BATCH_SIZE]
                correct += int(hits.sum())
        accuracy = correct / len(val_split)
    return accuracy


def nin_loop(
    model: nn.Module, train_split: DeviceData, val_split: DeviceData, *, epochs: int, seed: int
) -> float:
    result = train(
        model,
        train_split,
        val_split,
        TrainSettings(HPARAMS, epochs=epochs, seed=seed, eval_batch_size=EVAL_BATCH_SIZE),
        on_epoch=lambda result: None,
    )
    return result.final_accuracy


def subset(split: DeviceData, count: int) -> DeviceData:
    """``count`` images drawn at random (fixed seed): the splits are sorted by class."""
    index = torch.randperm(len(split), generator=torch.Generator().manual_seed(0))[:count]
    return DeviceData(
        split.images[index].contiguous(memory_format=torch.channels_last), split.labels[index]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, noisier run (< 1 min)")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads for both sides; 0 = torch's default"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    train_images, val_images, epochs, repeats = (
        (2048, 512, 1, 3) if args.quick else (8000, 2000, 1, 5)
    )
    # nin-search tunes glibc's allocator for CPU training; do it up front so that the plain
    # loop in this same process gets it too (this measures the loops, not malloc).
    configure_cpu_allocator()
    data = load_search_data(DataConfig(dataset="imagefolder", root=str(CIFAR10_MINI)), device="cpu")
    train_split, val_split = subset(data.train, train_images), subset(data.val, val_images)
    torch.manual_seed(0)
    initial = build_model(CIFAR_ARCH, in_channels=3, num_classes=10).state_dict()

    def fresh_model() -> nn.Module:
        model = build_model(CIFAR_ARCH, in_channels=3, num_classes=10)
        model.load_state_dict(initial)
        return model

    loops = {"nin-search train()": nin_loop, "plain PyTorch loop": plain_loop}
    warm = (subset(train_split, 4 * BATCH_SIZE), subset(val_split, 256))
    for loop in loops.values():  # warm-up: oneDNN primitives, allocator, caches
        loop(fresh_model(), *warm, epochs=1, seed=0)
    seconds: dict[str, list[float]] = {name: [] for name in loops}
    accuracy: dict[str, float] = {}
    for repeat in range(repeats):
        order = list(loops.items())
        for name, loop in order if repeat % 2 == 0 else order[::-1]:  # ABBA: no order bias
            model = fresh_model()
            elapsed, accuracy[name] = timed(
                lambda loop=loop, model=model: loop(
                    model, train_split, val_split, epochs=epochs, seed=0
                )
            )
            seconds[name].append(elapsed)
    images = train_images * epochs
    rows = [
        (
            name,
            f"{images / min(times):,.0f}",
            f"{images / statistics.median(times):,.0f}",
            " ".join(f"{t:.2f}" for t in times),
            f"{accuracy[name]:.3f}",
        )
        for name, times in seconds.items()
    ]
    print(machine_line())
    print_table(
        f"Loop overhead: {train_images} cifar10-mini images x {epochs} epoch(s), batch "
        f"{BATCH_SIZE}, eval {val_images} images per epoch, CPU, {repeats} alternating runs",
        ["loop", "img/s (best)", "img/s (median)", "seconds per run", "val acc"],
        rows,
    )
    nin, plain = (min(times) for times in seconds.values())
    print(f"nin-search / plain (best runs): {plain / nin:.3f}")
    print_result("loop_overhead", plain / nin)


if __name__ == "__main__":
    main()
