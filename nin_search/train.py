"""A lean training loop over device-resident tensors: no DataLoader, one host sync per epoch.

``train(model, train_split, val_split, settings)`` returns a :class:`TrainResult`; the
:class:`TrainSettings` say how (hyperparameters, epochs, seed, precision, checkpoint file), and
``on_epoch`` is called after every epoch with an :class:`EpochResult` (the objective reports to
Optuna there, and may raise to stop training early). :class:`Trainer` holds one run's state:
checkpoint, resume and the ``torch.compile`` fallback are its methods. :func:`train_on_tensors`
trains on plain tensors, for a user's own Optuna objective. No optuna in this module.

Speed, in the airbench manner: channels_last; on CUDA mixed precision (bf16 where supported,
else fp16 with a grad scaler), ``cudnn.benchmark`` and a fused optimizer (so the scaler needs no
per-step sync); optional ``torch.compile``; evaluation under ``inference_mode`` with its own
batch size. On the CPU, glibc's allocator is tuned first (:mod:`nin_search.devices`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nin_search.batches import iterate_batches
from nin_search.config import SCHEDULE, AugmentConfig, TrainConfig
from nin_search.data import DeviceData
from nin_search.devices import configure_cpu_allocator, resolve_precision
from nin_search.errors import check_int
from nin_search.optimization import build_optimizer, build_scheduler
from nin_search.outputs import write_atomic
from nin_search.spec import Hyperparameters
from nin_search.vocabulary import PRECISIONS, SCHEDULES

__all__ = [
    "EpochResult",
    "NonFiniteLossError",
    "TrainResult",
    "TrainSettings",
    "Trainer",
    "evaluate",
    "train",
    "train_on_tensors",
]


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the run cannot recover."""

    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(f"training loss became {loss} in epoch {epoch}")
        self.epoch = epoch
        self.loss = loss


@dataclass(frozen=True)
class EpochResult:
    """One finished epoch, as ``on_epoch`` gets it (report it to Optuna, prune)."""

    epoch: int  # 1-based; also the step reported to Optuna
    train_loss: float  # mean over the epoch's training batches
    val_accuracy: float  # in [0, 1]
    seconds: float  # wall time of the epoch, evaluation included


@dataclass(frozen=True)
class TrainResult:
    """A finished run: every epoch, how it trained, and ``final_accuracy`` (the last epoch's
    validation accuracy, what an objective returns)."""

    history: tuple[EpochResult, ...]
    compiled: bool = False  # the training steps ran through torch.compile
    precision: str = "fp32"  # what it trained in: fp32, bf16 or fp16 (train.precision resolved)
    notes: tuple[str, ...] = ()  # what did not go as asked (e.g. compile fell back to eager)

    @property
    def final_accuracy(self) -> float:
        return self.history[-1].val_accuracy

    @property
    def epochs(self) -> int:
        return len(self.history)


_TRAIN_DEFAULTS = TrainConfig()


@dataclass(frozen=True)
class TrainSettings:
    """How :func:`train` trains: everything but the model and the data.

    Args:
        hparams: Optimizer, learning rate, weight decay, batch size, label smoothing.
        epochs: Number of epochs (default: the study config's ``train.epochs``).
        seed: Seeds shuffling, augmentation and dropout (the model is initialised by the caller).
        augment: Batched on-device augmentation; None for none.
        eval_batch_size: Images per evaluation step (default: ``train.eval_batch_size``).
        precision: ``"auto"`` (bf16 autocast on CUDA and on CPUs with native bf16, fp16 with
            a grad scaler on GPUs without bf16, float32 elsewhere), ``"fp32"`` or ``"bf16"``;
            evaluation runs in the same (see :func:`nin_search.devices.resolve_precision`).
        compile: Run the training steps through ``torch.compile`` (worth it on a GPU for
            longer runs; compiling takes tens of seconds). If compiling fails, training goes
            on eagerly and ``TrainResult.notes`` says why. Evaluation runs eagerly.
        schedule: ``"cosine"`` (linear warm-up, then cosine decay to 0) or ``"step"``
            (x0.1 at 50% and 75% of the steps).
        checkpoint_path: Where the run's state is saved after every epoch and resumed from
            (see :meth:`Trainer.resume`); None: no checkpoints.
    """

    hparams: Hyperparameters = field(default_factory=Hyperparameters)
    epochs: int = _TRAIN_DEFAULTS.epochs
    seed: int = 0
    augment: AugmentConfig | None = None
    eval_batch_size: int = _TRAIN_DEFAULTS.eval_batch_size
    precision: str = _TRAIN_DEFAULTS.precision
    compile: bool = False
    schedule: str = SCHEDULE
    checkpoint_path: Path | None = None

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, minimum=1, integral=True)
        check_int("seed", self.seed, minimum=0, integral=True)
        check_int("eval_batch_size", self.eval_batch_size, minimum=1, integral=True)
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {list(PRECISIONS)}, but got "
                f"precision={self.precision!r}."
            )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule must be one of {list(SCHEDULES)}, but got schedule={self.schedule!r}."
            )


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    split: DeviceData,
    *,
    batch_size: int = _TRAIN_DEFAULTS.eval_batch_size,
    precision: str = _TRAIN_DEFAULTS.precision,
) -> float:
    """Top-1 accuracy of ``model`` on ``split`` (one host sync)."""
    if split.images.device.type == "cpu":
        configure_cpu_allocator()
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=split.labels.device)
    with resolve_precision(precision, split.images.device).autocast():
        for start in range(0, len(split), batch_size):
            logits = model(split.images[start : start + batch_size])
            correct += (logits.argmax(dim=1) == split.labels[start : start + batch_size]).sum()
    return correct.item() / max(1, len(split))


def _compile_note(error: Exception) -> str:
    reason = (str(error).strip().splitlines() or [""])[0][:200]
    return f"torch.compile failed ({error.__class__.__name__}: {reason}); trained eagerly"


class Trainer:
    """One training run: the model, its optimizer, schedule, grad scaler and random streams.

    :func:`train` is ``Trainer(...).resume()`` then ``.fit()``; the objective uses the trainer
    itself to re-report the restored epochs to Optuna between the two.

    Args:
        model: The network, on the same device as the data (initialised by the caller).
        train_split: Normalised training images and labels on the device.
        val_split: The split scored after every epoch; None scores nothing (``val_accuracy``
            is NaN): a retraining on train + validation, whose test split is scored once.
        settings: Hyperparameters, epochs, seed, precision, compile, checkpoint file, ...
        on_epoch: Called after each new epoch; raising from it stops training.
    """

    def __init__(
        self,
        model: nn.Module,
        train_split: DeviceData,
        val_split: DeviceData | None,
        settings: TrainSettings,
        *,
        on_epoch: Callable[[EpochResult], None] | None = None,
    ) -> None:
        self.model, self.settings, self.on_epoch = model, settings, on_epoch
        self.train_split, self.val_split = train_split, val_split
        self.device = train_split.images.device
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest conv kernels
        elif self.device.type == "cpu":
            configure_cpu_allocator()
        torch.manual_seed(settings.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(settings.seed)
        model.to(device=self.device, memory_format=torch.channels_last)
        hparams = settings.hparams
        self.optimizer = build_optimizer(model, hparams, fused=self.device.type == "cuda")
        self.batch_size = min(hparams.batch_size, len(train_split))
        self.steps_per_epoch = max(1, len(train_split) // self.batch_size)  # no ragged batch
        self.scheduler = build_scheduler(
            self.optimizer,
            schedule=settings.schedule,
            total_steps=self.steps_per_epoch * settings.epochs,
        )
        self.criterion = nn.CrossEntropyLoss(label_smoothing=hparams.label_smoothing)
        self.precision = resolve_precision(settings.precision, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision.uses_grad_scaler)
        self.history: list[EpochResult] = []
        self.notes: list[str] = []  # what did not go as asked
        self.forward: Callable[[Tensor], Tensor] = (
            self._compiled_model() if settings.compile else model
        )
        self._compiling = self.forward is not model  # compilation happens in the first step

    def _compiled_model(self) -> Callable[[Tensor], Tensor]:
        """``torch.compile`` of the model, or the model itself when compiling is refused."""
        try:
            return torch.compile(self.model, dynamic=False)  # every training batch has one shape
        except Exception as error:  # e.g. an unsupported Python or platform
            self.notes.append(_compile_note(error))
            return self.model

    def _step(self, images: Tensor, labels: Tensor) -> Tensor:
        with self.precision.autocast():
            loss = self.criterion(self.forward(images), labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss.detach()

    def _first_compiled_step(self, images: Tensor, labels: Tensor) -> Tensor:
        """Compiles in the first call; a failure there (no compiler, an unsupported op) falls
        back to eager before anything was updated."""
        self._compiling = False
        try:
            return self._step(images, labels)
        except Exception as error:
            self.notes.append(_compile_note(error))
            self.forward = self.model
            return self._step(images, labels)

    def run_epoch(self, epoch: int) -> EpochResult:
        """Trains one epoch (one host sync, for its mean loss), then evaluates.

        Raises:
            NonFiniteLossError: When the epoch's loss is NaN or infinite.
        """
        started = time.perf_counter()
        self.model.train()
        loss_sum: Tensor = torch.zeros((), device=self.device)
        batches = iterate_batches(
            self.train_split,
            batch_size=self.batch_size,
            augment=self.settings.augment,
            generator=self.generator,
        )
        for images, labels in batches:
            if self._compiling:
                loss = self._first_compiled_step(images, labels)
            else:
                loss = self._step(images, labels)
            loss_sum += loss.float()
        train_loss = (loss_sum / self.steps_per_epoch).item()  # the epoch's one sync
        if not math.isfinite(train_loss):
            raise NonFiniteLossError(epoch, train_loss)
        accuracy = math.nan if self.val_split is None else self.evaluate()
        return EpochResult(epoch, train_loss, accuracy, time.perf_counter() - started)

    def evaluate(self) -> float:
        """Top-1 accuracy of the model on the validation split, now."""
        if self.val_split is None:
            raise ValueError("this trainer has no validation split to evaluate on")
        batch_size, precision = self.settings.eval_batch_size, self.settings.precision
        return evaluate(self.model, self.val_split, batch_size=batch_size, precision=precision)

    def fit(self) -> TrainResult:
        """Trains the epochs not yet done (all of them unless :meth:`resume` restored some).

        Returns:
            Per-epoch losses and accuracies, restored epochs included.
        """
        for epoch in range(len(self.history) + 1, self.settings.epochs + 1):
            result = self.run_epoch(epoch)
            self.history.append(result)
            # Saved before on_epoch reports the epoch: whatever the study says was done can
            # be resumed, even by a kill that lands right after the report.
            if self.settings.checkpoint_path is not None:
                self.save_checkpoint(self.settings.checkpoint_path)
            if self.on_epoch is not None:
                self.on_epoch(result)
        return TrainResult(
            tuple(self.history),
            compiled=self.forward is not self.model,
            precision=self.precision.name,
            notes=tuple(self.notes),
        )

    def state(self) -> dict[str, Any]:
        """What :meth:`load_state` needs to continue exactly here: tensors, numbers and lists
        only, so that ``torch.load(weights_only=True)`` reads it back."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "generator": self.generator.get_state(),
            "history": [list(dataclasses.astuple(item)) for item in self.history],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Model, optimizer, schedule, scaler, random streams and history from :meth:`state`."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        self.generator.set_state(state["generator"])
        self.history = [EpochResult(*values) for values in state["history"]]

    def save_checkpoint(self, path: Path) -> None:
        """Writes :meth:`state` to ``path`` atomically (:func:`~nin_search.outputs.write_atomic`):
        a kill mid-write leaves the old file, and Ctrl-C or SIGTERM mid-write no partial one."""
        state = self.state()
        write_atomic(path, lambda temporary: torch.save(state, temporary))

    def resume(self) -> tuple[EpochResult, ...]:
        """Restores the settings' checkpoint file, if there is one that loads.

        Training then continues after its last epoch exactly as if it had not stopped; the
        restored epochs are in the history but not passed to ``on_epoch``. An unreadable
        file is removed and training starts from scratch.

        Returns:
            The restored epochs; empty without a (readable) checkpoint.
        """
        path = self.settings.checkpoint_path
        if path is None or not path.is_file():
            return ()
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception:
            path.unlink(missing_ok=True)
            return ()
        self.load_state(state)
        return tuple(self.history)


def train(
    model: nn.Module,
    train_split: DeviceData,
    val_split: DeviceData | None,
    settings: TrainSettings,
    *,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> TrainResult:
    """Trains ``model`` in place and evaluates it on ``val_split`` after every epoch.

    With ``settings.checkpoint_path`` set, the state is saved after every epoch (before
    ``on_epoch`` sees it) and a run that finds the file continues from it (see :class:`Trainer`).

    Args:
        model: The network, on the same device as the data.
        train_split: Normalised training images and labels on the device.
        val_split: The split scored after every epoch (None: none, see :class:`Trainer`).
        settings: Hyperparameters, epochs, seed, precision, compile, checkpoint file, ...
        on_epoch: Called after each epoch; raising from it stops training.

    Returns:
        Per-epoch losses and accuracies.

    Raises:
        NonFiniteLossError: When the epoch's loss is NaN or infinite.
    """
    trainer = Trainer(model, train_split, val_split, settings, on_epoch=on_epoch)
    trainer.resume()
    return trainer.fit()


def train_on_tensors(
    model: nn.Module,
    train_images: Any,
    train_labels: Any,
    val_images: Any,
    val_labels: Any,
    settings: TrainSettings,
    *,
    on_epoch: Callable[[EpochResult], None] | None = None,
) -> TrainResult:
    """:func:`train` on your own tensors: the entry point for a user-written Optuna objective.

    Images are float ``N x C x H x W`` arrays, already scaled as the network should see them;
    labels are class indices (see :meth:`DeviceData.from_tensors`). Training runs on the
    device of the model's parameters.

    Args:
        model: The network (:func:`nin_search.build_model`).
        train_images: Training images, ``N x C x H x W``.
        train_labels: Their class indices, ``N``.
        val_images: Validation images, scored after every epoch.
        val_labels: Their class indices.
        settings: Hyperparameters, epochs, seed, augmentation, precision.
        on_epoch: Called with each epoch's :class:`EpochResult` (report to Optuna, prune).

    Returns:
        The run's :class:`TrainResult`.

    Raises:
        NonFiniteLossError: When the training loss became NaN or infinite (a diverged run;
            ``optimize`` prunes such a trial: raise ``optuna.TrialPruned`` from it).
        ValueError: For empty training or validation data.
    """
    device = next(model.parameters()).device
    return train(
        model,
        DeviceData.from_tensors(train_images, train_labels, device=device),
        DeviceData.from_tensors(val_images, val_labels, device=device),
        settings,
        on_epoch=on_epoch,
    )
