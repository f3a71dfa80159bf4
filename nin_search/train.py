"""A lean training loop over device-resident tensors: no DataLoader, one host sync per epoch.

``train(model, train_split, val_split, hparams, epochs=...)`` returns a :class:`TrainResult`;
``on_epoch`` is called after every epoch with an :class:`EpochResult` (the objective reports to
Optuna there, and may raise to stop training early). No optuna in this module.

Speed, in the airbench manner: channels_last; on CUDA mixed precision (bf16 where supported,
else fp16 with a grad scaler), ``cudnn.benchmark`` and a fused optimizer (so the scaler needs no
per-step sync); optional ``torch.compile``; evaluation under ``inference_mode`` with its own
batch size. On the CPU, :func:`configure_cpu_allocator` stops glibc from handing every large
activation buffer back to the kernel (the page faults cost about a sixth of a cifar10-mini
trial), and :func:`configure_cpu_threads` shares the cores between workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from nin_search.config import AugmentConfig
from nin_search.batches import iterate_batches
from nin_search.data import DeviceData
from nin_search.errors import UserError
from nin_search.spec import Hyperparameters

__all__ = [
    "EpochResult",
    "NonFiniteLossError",
    "TrainResult",
    "configure_cpu_allocator",
    "configure_cpu_threads",
    "evaluate",
    "resolve_device",
    "train",
]

WARMUP_FRACTION = 0.05  # of all steps: linear warm-up, then cosine decay to 0
# glibc malloc thresholds (bytes) for CPU training: blocks up to this size come from the heap
# and freed memory stays there, instead of an mmap/munmap (and page faults) per large tensor.
MALLOC_MMAP_THRESHOLD = 2**31 - 1  # mallopt takes an int: the largest one
MALLOC_TRIM_THRESHOLD = 2**31 - 1
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameter numbers, <malloc.h>


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the run cannot recover."""

    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(f"training loss became {loss} in epoch {epoch}")
        self.epoch = epoch
        self.loss = loss


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based; also the step reported to Optuna
    train_loss: float  # mean over the epoch's training batches
    val_accuracy: float  # in [0, 1]
    seconds: float  # wall time of the epoch, evaluation included


@dataclass(frozen=True)
class TrainResult:
    history: tuple[EpochResult, ...]
    compiled: bool = False  # the training steps ran through torch.compile
    notes: tuple[str, ...] = ()  # what did not go as asked (e.g. compile fell back to eager)

    @property
    def final_accuracy(self) -> float:
        return self.history[-1].val_accuracy

    @property
    def epochs(self) -> int:
        return len(self.history)


def resolve_device(name: str) -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; anything else must exist on this machine.

    Raises:
        UserError: For an unknown or unavailable device.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} asked for, but CUDA is not available; use --device cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise UserError(
            f"device {name!r} does not exist ({torch.cuda.device_count()} CUDA devices)"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"device {name!r} asked for, but MPS is not available; use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


def configure_cpu_threads(workers: int) -> int:
    """Shares this machine's cores between ``workers`` training processes.

    Sets ``torch.set_num_threads`` to the cores this process may use (its CPU affinity, else
    ``os.cpu_count()``) divided by ``workers``, at least 1: more OpenMP threads than cores
    spin and wait on each other, and the whole machine slows down.

    Args:
        workers: Training processes that share the machine (>= 1).

    Returns:
        The number of threads set.

    Raises:
        ValueError: If ``workers`` is not an integer >= 1.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, but got workers={workers!r}.")
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    threads = max(1, cores // workers)
    torch.set_num_threads(threads)
    return threads


_allocator_configured: bool | None = None


def configure_cpu_allocator() -> bool:
    """Keeps large CPU tensors on glibc's heap; once per process, a no-op elsewhere.

    By default glibc serves every block above 32 MiB (less before its threshold adapts) with
    a fresh ``mmap`` and returns it with ``munmap`` on free, so each training step and each
    evaluation batch page-faults its activations in again: 1.4 million faults and 2-3 s of
    ``sys`` time in 2 epochs (12 s) of a cifar10-mini trial. Raising the mmap and trim
    thresholds keeps freed memory for the next step (0.3 million faults, 0.4 s). The process
    keeps its peak memory instead of returning it to the system.

    Returns:
        True when the thresholds are set (Linux with glibc), False otherwise.
    """
    global _allocator_configured
    if _allocator_configured is not None:
        return _allocator_configured
    _allocator_configured = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        _allocator_configured = bool(
            libc.mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)
            and libc.mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)
        )
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        pass
    return _allocator_configured


def _make_optimizer(
    model: nn.Module, hparams: Hyperparameters, *, fused: bool = False
) -> torch.optim.Optimizer:
    # fused (CUDA): one kernel per step, and GradScaler passes it the scale and the inf flag
    # instead of syncing on them every step.
    options = {"fused": True} if fused else {}
    if hparams.optimizer == "adamw":
        return torch.optim.AdamW(
            model.parameters(),
            lr=hparams.learning_rate,
            weight_decay=hparams.weight_decay,
            **options,
        )
    return torch.optim.SGD(
        model.parameters(),
        lr=hparams.learning_rate,
        momentum=hparams.momentum,
        nesterov=hparams.momentum > 0,
        weight_decay=hparams.weight_decay,
        **options,
    )


def _warmup_cosine(total_steps: int) -> Callable[[int], float]:
    warmup = max(1, int(total_steps * WARMUP_FRACTION))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _step_decay(total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        return 0.1 ** ((step >= total_steps // 2) + (step >= 3 * total_steps // 4))

    return factor


def _lr_factor(schedule: str, total_steps: int) -> Callable[[int], float]:
    if schedule == "step":
        return _step_decay(total_steps)
    if schedule == "cosine":
        return _warmup_cosine(total_steps)
    raise ValueError(f"schedule must be 'cosine' or 'step', but got schedule={schedule!r}.")


def _autocast(
    device: torch.device, *, enabled: bool = True
) -> tuple[contextlib.AbstractContextManager, bool]:
    """Mixed precision on CUDA (bf16 where supported, else fp16 + a grad scaler)."""
    if device.type != "cuda" or not enabled:
        return contextlib.nullcontext(), False
    if torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16), False
    return torch.autocast("cuda", dtype=torch.float16), True


@torch.inference_mode()
def evaluate(
    model: nn.Module, split: DeviceData, *, batch_size: int = 1024, amp: bool = True
) -> float:
    """Top-1 accuracy of ``model`` on ``split`` (one host sync)."""
    if split.images.device.type == "cpu":
        configure_cpu_allocator()
    model.eval()
    autocast, _ = _autocast(split.images.device, enabled=amp)
    correct = torch.zeros((), dtype=torch.int64, device=split.labels.device)
    with autocast:
        for start in range(0, len(split), batch_size):
            logits = model(split.images[start : start + batch_size])
            correct += (logits.argmax(dim=1) == split.labels[start : start + batch_size]).sum()
    return correct.item() / max(1, len(split))


def _compile_note(error: Exception) -> str:
    reason = (str(error).strip().splitlines() or [""])[0][:200]
    return f"torch.compile failed ({error.__class__.__name__}: {reason}); trained eagerly"


def train(
    model: nn.Module,
    train_split: DeviceData,
    val_split: DeviceData,
    hparams: Hyperparameters,
    *,
    epochs: int,
    seed: int,
    augment: AugmentConfig | None = None,
    eval_batch_size: int = 1024,
    on_epoch: Callable[[EpochResult], None] | None = None,
    amp: bool = True,
    compile: bool = False,
    schedule: str = "cosine",
    resume: dict[str, Any] | None = None,
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Trains ``model`` in place and evaluates it on ``val_split`` after every epoch.

    Args:
        model: The network, on the same device as the data.
        train_split: Normalised training images and labels on the device.
        val_split: The split scored after every epoch.
        hparams: Optimizer, learning rate, batch size, ...
        epochs: Number of epochs.
        seed: Seeds shuffling, augmentation and dropout (the model is initialised by the caller).
        augment: Batched on-device augmentation; None for none.
        eval_batch_size: Images per evaluation step.
        on_epoch: Called after each epoch; raising from it stops training.
        amp: Mixed precision on CUDA (ignored elsewhere); False trains in float32.
        compile: Run the training steps through ``torch.compile`` (worth it on a GPU for
            longer runs; compiling takes tens of seconds). If compiling fails, training goes
            on eagerly and ``TrainResult.notes`` says why. Evaluation runs eagerly.
        schedule: ``"cosine"`` (linear warm-up, then cosine decay to 0) or ``"step"``
            (x0.1 at 50% and 75% of the steps).
        resume: A state from ``on_checkpoint``: training continues after its epoch exactly
            as if it had not stopped (model, optimizer, schedule and random streams restored);
            its earlier epochs are in the returned history but not passed to ``on_epoch``.
        on_checkpoint: Called after every epoch (after ``on_epoch``) with the state to resume
            from: tensors, numbers and lists only, so ``torch.load(weights_only=True)`` reads it.

    Returns:
        Per-epoch losses and accuracies.

    Raises:
        NonFiniteLossError: When the epoch's loss is NaN or infinite.
    """
    device = train_split.images.device
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest conv kernels
    elif device.type == "cpu":
        configure_cpu_allocator()
    torch.manual_seed(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    model.to(device=device, memory_format=torch.channels_last)
    optimizer = _make_optimizer(model, hparams, fused=device.type == "cuda")
    num_images = len(train_split)
    batch_size = min(hparams.batch_size, num_images)
    steps_per_epoch = max(1, num_images // batch_size)  # drop the ragged last batch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_factor(schedule, steps_per_epoch * epochs)
    )
    criterion = nn.CrossEntropyLoss(label_smoothing=hparams.label_smoothing)
    autocast, use_scaler = _autocast(device, enabled=amp)
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    notes: list[str] = []
    forward: Callable[[Tensor], Tensor] = model
    if compile:
        try:
            forward = torch.compile(model, dynamic=False)  # every training batch has one shape
        except Exception as error:  # e.g. an unsupported Python or platform
            notes.append(_compile_note(error))
    compiling = forward is not model

    def step(images: Tensor, labels: Tensor) -> Tensor:
        with autocast:
            loss = criterion(forward(images), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        return loss.detach()

    history: list[EpochResult] = []
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        scaler.load_state_dict(resume["scaler"])
        torch.set_rng_state(resume["rng"])
        generator.set_state(resume["generator"])
        history = [EpochResult(*values) for values in resume["history"]]
    for epoch in range(len(history) + 1, epochs + 1):
        started = time.perf_counter()
        model.train()
        loss_sum: Tensor = torch.zeros((), device=device)
        batches = iterate_batches(
            train_split, batch_size=batch_size, augment=augment, generator=generator
        )
        for images, labels in batches:
            if compiling:
                # Compilation happens in the first call; a failure there (no compiler, an
                # unsupported op) falls back to eager before anything was updated.
                compiling = False
                try:
                    loss = step(images, labels)
                except Exception as error:
                    notes.append(_compile_note(error))
                    forward = model
                    loss = step(images, labels)
            else:
                loss = step(images, labels)
            loss_sum += loss.float()
        train_loss = (loss_sum / steps_per_epoch).item()  # the epoch's one sync
        if not math.isfinite(train_loss):
            raise NonFiniteLossError(epoch, train_loss)
        accuracy = evaluate(model, val_split, batch_size=eval_batch_size, amp=amp)
        result = EpochResult(epoch, train_loss, accuracy, time.perf_counter() - started)
        history.append(result)
        if on_epoch is not None:
            on_epoch(result)
        if on_checkpoint is not None:
            on_checkpoint(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": torch.get_rng_state(),
                    "generator": generator.get_state(),
                    "history": [list(dataclasses.astuple(item)) for item in history],
                }
            )
    return TrainResult(tuple(history), compiled=forward is not model, notes=tuple(notes))
