"""A lean training loop over device-resident tensors: no DataLoader, one host sync per epoch.

``train(model, train_split, val_split, hparams, epochs=...)`` returns a :class:`TrainResult`;
``on_epoch`` is called after every epoch with an :class:`EpochResult` (the objective reports to
Optuna there, and may raise to stop training early). No optuna in this module.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nin_search.config import AugmentConfig
from nin_search.data import DeviceData, augment_batch
from nin_search.errors import UserError
from nin_search.spec import Hyperparameters

__all__ = [
    "EpochResult",
    "NonFiniteLossError",
    "TrainResult",
    "evaluate",
    "resolve_device",
    "train",
]

WARMUP_FRACTION = 0.05  # of all steps: linear warm-up, then cosine decay to 0


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


def _make_optimizer(model: nn.Module, hparams: Hyperparameters) -> torch.optim.Optimizer:
    if hparams.optimizer == "adamw":
        return torch.optim.AdamW(
            model.parameters(), lr=hparams.learning_rate, weight_decay=hparams.weight_decay
        )
    return torch.optim.SGD(
        model.parameters(),
        lr=hparams.learning_rate,
        momentum=hparams.momentum,
        nesterov=hparams.momentum > 0,
        weight_decay=hparams.weight_decay,
    )


def _warmup_cosine(total_steps: int) -> Callable[[int], float]:
    warmup = max(1, int(total_steps * WARMUP_FRACTION))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _autocast(device: torch.device) -> tuple[contextlib.AbstractContextManager, bool]:
    """Mixed precision on CUDA (bf16 where supported, else fp16 + a grad scaler)."""
    if device.type != "cuda":
        return contextlib.nullcontext(), False
    if torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16), False
    return torch.autocast("cuda", dtype=torch.float16), True


@torch.inference_mode()
def evaluate(model: nn.Module, split: DeviceData, *, batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``model`` on ``split`` (one host sync)."""
    model.eval()
    autocast, _ = _autocast(split.images.device)
    correct = torch.zeros((), dtype=torch.int64, device=split.labels.device)
    with autocast:
        for start in range(0, len(split), batch_size):
            logits = model(split.images[start : start + batch_size])
            correct += (logits.argmax(dim=1) == split.labels[start : start + batch_size]).sum()
    return correct.item() / max(1, len(split))


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

    Returns:
        Per-epoch losses and accuracies.

    Raises:
        NonFiniteLossError: When the epoch's loss is NaN or infinite.
    """
    device = train_split.images.device
    augment = augment or AugmentConfig()
    torch.manual_seed(seed)
    generator = torch.Generator(device=device).manual_seed(seed)
    model.to(device=device, memory_format=torch.channels_last)
    optimizer = _make_optimizer(model, hparams)
    num_images = len(train_split)
    batch_size = min(hparams.batch_size, num_images)
    steps_per_epoch = max(1, num_images // batch_size)  # drop the ragged last batch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _warmup_cosine(steps_per_epoch * epochs)
    )
    criterion = nn.CrossEntropyLoss(label_smoothing=hparams.label_smoothing)
    autocast, use_scaler = _autocast(device)
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    history: list[EpochResult] = []
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(num_images, device=device, generator=generator)
        loss_sum: Tensor = torch.zeros((), device=device)
        for step in range(steps_per_epoch):
            index = order[step * batch_size : (step + 1) * batch_size]
            images = augment_batch(train_split.images[index], augment, generator)
            with autocast:
                loss = criterion(model(images), train_split.labels[index])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            loss_sum += loss.detach().float()
        train_loss = (loss_sum / steps_per_epoch).item()  # the epoch's one sync
        if not math.isfinite(train_loss):
            raise NonFiniteLossError(epoch, train_loss)
        accuracy = evaluate(model, val_split, batch_size=eval_batch_size)
        result = EpochResult(epoch, train_loss, accuracy, time.perf_counter() - started)
        history.append(result)
        if on_epoch is not None:
            on_epoch(result)
    return TrainResult(tuple(history))
