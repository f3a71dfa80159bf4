"""Retrain a chosen architecture from scratch on train + validation, scored on the test split.

This is the only code path that reads a test split: the search (``objective``) never does.
No optuna here: the caller hands in the config, the spec and the hyperparameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from nin_search.config import SCHEDULE, StudyConfig
from nin_search.data import DeviceData, load_final_data
from nin_search.devices import resolve_precision
from nin_search.errors import UserError
from nin_search.image_files import composed
from nin_search.model import build_model
from nin_search.preprocessing import Preprocessing
from nin_search.spec import ArchSpec, Hyperparameters
from nin_search.train import EpochResult, TrainSettings, evaluate, train

__all__ = ["RetrainEpoch", "RetrainResult", "retrain"]


@dataclass(frozen=True)
class RetrainEpoch:
    epoch: int
    train_loss: float
    train_accuracy: float  # on train + validation, without augmentation
    # Scored once, after the last epoch, in float32 (as the exported model runs); None before:
    # a curve of test accuracies would invite picking the epoch count on the test split.
    test_accuracy: float | None
    seconds: float


@dataclass(frozen=True)
class RetrainResult:
    model: nn.Module
    history: tuple[RetrainEpoch, ...]
    num_train: int
    num_test: int
    preprocessing: Preprocessing  # of the images trained on (statistics of train + validation)
    classes: tuple[str, ...]
    precision: str  # what it trained in (train.precision resolved); tested in float32

    @property
    def test_accuracy(self) -> float:
        """The test split's accuracy after the last epoch (scored once, in float32)."""
        accuracy = self.history[-1].test_accuracy
        assert accuracy is not None  # the last epoch is always scored
        return accuracy

    @property
    def test_correct(self) -> int:
        """Test images classified correctly after the last epoch."""
        return round(self.test_accuracy * self.num_test)

    def history_dicts(self) -> list[dict[str, float | None]]:
        return [asdict(epoch) for epoch in self.history]


def retrain(
    config: StudyConfig,
    spec: ArchSpec,
    hparams: Hyperparameters,
    *,
    epochs: int,
    seed: int,
    device: torch.device,
    schedule: str = SCHEDULE,
    on_epoch: Callable[[RetrainEpoch], None] | None = None,
    on_start: Callable[[], None] | None = None,
    classes: tuple[str, ...] | None = None,
) -> RetrainResult:
    """Trains ``spec`` from scratch on all training images, then scores it on test once.

    Args:
        config: The study config (data, augmentation, evaluation batch size).
        spec: The architecture.
        hparams: The trial's training hyperparameters.
        epochs: Length of the schedule.
        seed: Model initialisation, shuffling, augmentation and dropout.
        device: The training device.
        schedule: ``"cosine"`` (warm-up + cosine decay) or ``"step"`` (x0.1 at 50% and 75%).
        on_epoch: Called after every epoch.
        on_start: Called once the data is loaded and checked, before training starts (a
            progress display starts there, so that an error before it prints alone).
        classes: The classes the search saw, in order (recorded in the study): the data
            must still have exactly these, or the model and its header would disagree.

    Returns:
        The trained model, its per-epoch train accuracy and its test accuracy.

    Raises:
        UserError: Before any training, when the data's classes are not ``classes``.
    """
    train_split, test_split, info = load_final_data(config.data, device=device)
    _check_classes(tuple(info["classes"]), classes)
    torch.manual_seed(seed)
    model = build_model(spec, in_channels=info["in_channels"], num_classes=info["num_classes"])
    settings = TrainSettings(
        hparams,
        epochs=epochs,
        seed=seed,
        augment=config.data.augment,
        eval_batch_size=config.train.eval_batch_size,
        precision=config.train.precision,
        schedule=schedule,
    )
    if on_start is not None:
        on_start()
    recorder = _EpochRecorder(model, train_split, test_split, settings, on_epoch=on_epoch)
    train(model.to(device), train_split, None, settings, on_epoch=recorder)
    return RetrainResult(
        model,
        tuple(recorder.history),
        len(train_split),
        len(test_split),
        preprocessing=info["preprocessing"],
        classes=tuple(info["classes"]),
        precision=resolve_precision(settings.precision, device).name,
    )


def _check_classes(found: tuple[str, ...], searched: tuple[str, ...] | None) -> None:
    if searched is not None and composed(found) != composed(searched):
        raise UserError(
            f"the training data now has classes {list(found)}, but the study was "
            f"searched on {list(searched)}; restore the data the study used, or run a new "
            "study on this data"
        )


class _EpochRecorder:
    """The ``on_epoch`` of :func:`train` in a retrain: adds the train accuracy, and scores the
    test split once, after the last epoch, in float32 (as the exported model runs)."""

    def __init__(
        self,
        model: nn.Module,
        train_split: DeviceData,
        test_split: DeviceData,
        settings: TrainSettings,
        *,
        on_epoch: Callable[[RetrainEpoch], None] | None,
    ) -> None:
        self.model, self.train_split, self.test_split = model, train_split, test_split
        self.settings, self.on_epoch = settings, on_epoch
        self.history: list[RetrainEpoch] = []

    def __call__(self, result: EpochResult) -> None:
        batch_size = self.settings.eval_batch_size
        test_accuracy = None
        if result.epoch == self.settings.epochs:  # the one look at test: in float32
            test_accuracy = evaluate(
                self.model, self.test_split, batch_size=batch_size, precision="fp32"
            )
        epoch = RetrainEpoch(
            epoch=result.epoch,
            train_loss=result.train_loss,
            train_accuracy=evaluate(
                self.model,
                self.train_split,
                batch_size=batch_size,
                precision=self.settings.precision,
            ),
            test_accuracy=test_accuracy,
            seconds=result.seconds,
        )
        self.history.append(epoch)
        if self.on_epoch is not None:
            self.on_epoch(epoch)
