"""GPU check: training speed of the nin_cifar10 preset, a 10-trial search, GPU memory peak.

Run through ``benchmarks/gpu_check.sh`` (which bounds it to 8 minutes). Prints:

1. training img/s of ``presets.nin_cifar10()`` at batch 128 and 512, AMP on/off, compile
   on/off, on random CIFAR-sized uint8 data made on the device (normalised once, random crop
   and flip on the device), through ``nin_search.train.train``; the first epoch is the
   warm-up (compilation, cuDNN autotuning) and is reported apart;
2. the wall time of a 10-trial search on CIFAR-sized data (the cifar10-mini study when its
   folder is found, else synthetic data of the same size) through nin-search's own API;
3. the GPU memory peak of each part.

It checks itself: every run must stay finite, train on the device it asked for, finish its
trials and stay within the GPU's memory; it exits 1 on a failed check and prints
``GPU CHECK PASSED`` otherwise. ``NIN_SEARCH_GPU_CHECK_CPU=1`` runs the same code on the CPU
with tiny sizes, as a smoke test for machines without a GPU.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import optuna
import torch
from _common import REPO, machine_line, print_table
from optuna.trial import TrialState

from nin_search import presets
from nin_search.config import AugmentConfig, StudyConfig
from nin_search.data import DeviceData, SearchData, load_search_data, to_device
from nin_search.model import build_model
from nin_search.objective import Objective
from nin_search.spec import Hyperparameters
from nin_search.study import open_study, optimize
from nin_search.study_files import load_study_config
from nin_search.train import EpochResult, NonFiniteLossError, TrainSettings, train
from nin_search.trials import finished_trials

CPU_MODE = os.environ.get("NIN_SEARCH_GPU_CHECK_CPU") == "1"
DEADLINE = float(os.environ.get("NIN_SEARCH_GPU_CHECK_DEADLINE", "420"))  # seconds, soft
# (GPU, CPU smoke test): images per epoch, validation images, epochs (first = warm-up)
TRAIN_IMAGES, VAL_IMAGES, EPOCHS = (256, 64, 2) if CPU_MODE else (20480, 1024, 3)
BATCH_SIZES = (128,) if CPU_MODE else (128, 512)
SEARCH_TRIALS, SEARCH_EPOCHS = (2, 1) if CPU_MODE else (10, None)  # None: the study's
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
AUGMENT = AugmentConfig(crop_padding=4, flip=True)
CIFAR10_MINI_CANDIDATES = (
    os.environ.get("NIN_SEARCH_CIFAR10_MINI", ""),
    str(REPO / "shared" / "data" / "cifar10-mini"),
    str(REPO.parent / "shared" / "data" / "cifar10-mini"),
)

started = time.perf_counter()
failures: list[str] = []


def check(condition: bool, message: str) -> None:
    print(f"{'ok  ' if condition else 'FAIL'} {message}", flush=True)
    if not condition:
        failures.append(message)


def synthetic_split(count: int, device: torch.device, seed: int) -> DeviceData:
    """Random uint8 CIFAR-sized images and labels made on the device, normalised once."""
    generator = torch.Generator(device=device).manual_seed(seed)
    images = torch.randint(
        0, 256, (count, 3, 32, 32), dtype=torch.uint8, device=device, generator=generator
    )
    labels = torch.randint(0, 10, (count,), device=device, generator=generator)
    return to_device(images, labels, MEAN, STD, device)


def random_slice(split: DeviceData, count: int) -> DeviceData:
    """``count`` images drawn at random (the splits are sorted by class)."""
    index = torch.randperm(len(split), device=split.labels.device)[:count]
    return DeviceData(split.images[index], split.labels[index])


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> str:
    if device.type != "cuda":
        return "n/a"
    torch.cuda.synchronize(device)
    return f"{torch.cuda.max_memory_allocated(device) / 2**20:,.0f}"


def training_speed(device: torch.device) -> None:
    train_split = synthetic_split(TRAIN_IMAGES, device, seed=0)
    val_split = synthetic_split(VAL_IMAGES, device, seed=1)
    check(train_split.images.device.type == device.type, f"data on {device}")
    rows = []
    for batch_size in BATCH_SIZES:
        for precision in ("fp32", "auto"):
            for compile in (False, True):
                label = f"batch {batch_size}, precision {precision}, "
                label += f"compile {'on' if compile else 'off'}"
                if time.perf_counter() - started > DEADLINE:
                    rows.append((label, "skipped: deadline", "", "", ""))
                    continue
                torch.manual_seed(0)
                model = build_model(presets.nin_cifar10(), in_channels=3, num_classes=10)
                model.to(device)
                epochs: list[EpochResult] = []
                reset_peak(device)
                try:
                    result = train(
                        model,
                        train_split,
                        val_split,
                        TrainSettings(
                            Hyperparameters(batch_size=batch_size, learning_rate=0.01),
                            epochs=EPOCHS,
                            seed=0,
                            augment=AUGMENT,
                            precision=precision,
                            compile=compile,
                        ),
                        on_epoch=epochs.append,
                    )
                except NonFiniteLossError as error:
                    check(False, f"{label}: {error}")
                    continue
                images = TRAIN_IMAGES // batch_size * batch_size  # the ragged batch is dropped
                steady = min(epoch.seconds for epoch in epochs[1:])
                note = ("compiled" if result.compiled else "eager") + f", {result.precision}"
                if result.notes:
                    note += ": " + "; ".join(result.notes)
                rows.append(
                    (
                        label,
                        f"{images / steady:,.0f}",
                        f"{epochs[0].seconds:.1f}",
                        peak_mib(device),
                        note,
                    )
                )
                check(
                    next(model.parameters()).device.type == device.type,
                    f"{label}: trained on {device}",
                )
                if compile and device.type == "cuda":
                    check(result.compiled, f"{label}: torch.compile used ({note})")
    print_table(
        f"nin_cifar10 training speed: {TRAIN_IMAGES} random CIFAR-sized images an epoch "
        f"(+{VAL_IMAGES} evaluated), best of epochs 2..{EPOCHS}",
        ["configuration", "img/s", "first epoch s", "peak MiB", "note"],
        rows,
    )


def search_data(config: StudyConfig, device: torch.device) -> tuple[SearchData, str]:
    for candidate in CIFAR10_MINI_CANDIDATES:
        if candidate and Path(candidate, "train").is_dir():
            data_config = config.data.model_copy(update={"root": candidate})
            data = load_search_data(data_config, device=device)
            if CPU_MODE:  # a small random slice keeps the smoke test quick
                data = SearchData(
                    train=random_slice(data.train, 512),
                    val=random_slice(data.val, 128),
                    classes=data.classes,
                    mean=data.mean,
                    std=data.std,
                    augment=data.augment,
                )
            return data, f"cifar10-mini from {candidate}"
    train_count, val_count = (512, 128) if CPU_MODE else (8000, 2000)
    data = SearchData(
        train=synthetic_split(train_count, device, seed=2),
        val=synthetic_split(val_count, device, seed=3),
        classes=tuple(str(label) for label in range(10)),
        mean=MEAN,
        std=STD,
        augment=AUGMENT,
    )
    return data, "synthetic (cifar10-mini not found)"


def search(device: torch.device) -> None:
    config = load_study_config(REPO / "studies" / "cifar10-mini.toml")
    train_update = {"device": device.type}
    if SEARCH_EPOCHS:
        train_update["epochs"] = SEARCH_EPOCHS
    config = config.model_copy(
        update={
            "study": config.study.model_copy(update={"n_trials": SEARCH_TRIALS}),
            "train": config.train.model_copy(update=train_update),
        }
    )
    loaded = time.perf_counter()
    data, source = search_data(config, device)
    loaded = time.perf_counter() - loaded
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    reset_peak(device)
    with tempfile.TemporaryDirectory() as folder:
        study = open_study(
            config, storage_url=f"sqlite:///{folder}/gpu-check.db", study_name="gpu-check"
        )
        begun = time.perf_counter()
        optimize(study, Objective(config, data), n_trials=SEARCH_TRIALS)
        seconds = time.perf_counter() - begun
        finished = len(finished_trials(study))
        values = [trial.value for trial in study.get_trials(states=(TrialState.COMPLETE,))]
        best = max(values, default=float("nan"))
    print_table(
        f"{SEARCH_TRIALS}-trial search, study studies/cifar10-mini.toml "
        f"({config.train.epochs} epochs a trial, pruner {config.optuna.pruner})",
        ["data", "load s", "search s", "trials/hour", "finished", "best val acc", "peak MiB"],
        [
            (
                source,
                f"{loaded:.1f}",
                f"{seconds:.1f}",
                f"{3600 * finished / seconds:,.0f}",
                finished,
                f"{best:.3f}",
                peak_mib(device),
            )
        ],
    )
    check(finished == SEARCH_TRIALS, f"search finished {finished}/{SEARCH_TRIALS} trials")


def main() -> int:
    if CPU_MODE:
        device = torch.device("cpu")
        print("NIN_SEARCH_GPU_CHECK_CPU=1: CPU smoke test with tiny sizes (numbers mean nothing)")
    elif not torch.cuda.is_available():
        print("no CUDA device; run with NIN_SEARCH_GPU_CHECK_CPU=1 for the CPU smoke test")
        return 2
    else:
        device = torch.device("cuda")
        properties = torch.cuda.get_device_properties(device)
        print(
            f"{properties.name}, {properties.total_memory / 2**30:.0f} GiB, CUDA "
            f"{torch.version.cuda}, bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}"
        )
    print(machine_line())
    training_speed(device)
    if time.perf_counter() - started > DEADLINE:
        check(False, "deadline reached before the search")
    else:
        search(device)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device)
        total = torch.cuda.get_device_properties(device).total_memory
        print(f"GPU memory: peak allocated {peak / 2**20:,.0f} MiB of {total / 2**20:,.0f} MiB")
        check(peak < total, "memory peak within the GPU")
    print(f"total {time.perf_counter() - started:.0f} s")
    print("GPU CHECK FAILED: " + "; ".join(failures) if failures else "GPU CHECK PASSED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
