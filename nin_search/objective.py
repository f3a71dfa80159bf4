"""The Optuna objective: space -> ArchSpec -> model -> train, reporting every epoch."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import optuna
import torch

from nin_search.config import StudyConfig
from nin_search.data import SearchData
from nin_search.model import build_model, count_macs, count_params
from nin_search.space import suggest_arch, suggest_hyperparameters
from nin_search.train import EpochResult, NonFiniteLossError, train

__all__ = ["Objective", "trial_seed"]

EpochCallback = Callable[[optuna.Trial, EpochResult], None]


def trial_seed(study_seed: int, params: dict[str, Any]) -> int:
    """A reproducible 32-bit seed from the study seed and the trial's parameters.

    A trial retried after a crash has the same parameters, so it gets the same seed.
    """
    digest = hashlib.sha256(json.dumps([study_seed, params], sort_keys=True).encode())
    return int.from_bytes(digest.digest()[:4], "little")


class Objective:
    """Trains one sampled architecture and returns its final validation accuracy.

    Every trial stores user attrs ``arch`` (``ArchSpec.to_dict()``), ``arch_summary``,
    ``params``, ``macs`` (per image) and ``seed``; a pruned trial also stores ``prune_reason``.

    Args:
        config: The study config.
        data: Train/validation tensors on the training device.
        on_epoch: Called after every epoch (the CLI's live display listens here).
    """

    def __init__(
        self, config: StudyConfig, data: SearchData, *, on_epoch: EpochCallback | None = None
    ) -> None:
        self.config = config
        self.data = data
        self.on_epoch = on_epoch

    def __call__(self, trial: optuna.Trial) -> float:
        arch = suggest_arch(trial, self.config.space)
        hparams = suggest_hyperparameters(trial, self.config.train)
        seed = trial_seed(self.config.study.seed, trial.params)
        shape = {"in_channels": self.data.in_channels, "num_classes": self.data.num_classes}
        torch.manual_seed(seed)
        model = build_model(arch, **shape)
        trial.set_user_attr("arch", arch.to_dict())
        trial.set_user_attr("arch_summary", arch.summary())
        trial.set_user_attr("params", count_params(model))
        trial.set_user_attr("macs", count_macs(arch, image_size=self.data.image_size, **shape))
        trial.set_user_attr("seed", seed)

        def report(result: EpochResult) -> None:
            trial.report(result.val_accuracy, result.epoch)
            if self.on_epoch is not None:
                self.on_epoch(trial, result)
            if trial.should_prune():
                trial.set_user_attr("prune_reason", f"pruned by the pruner at epoch {result.epoch}")
                raise optuna.TrialPruned(f"pruned at epoch {result.epoch}")

        try:
            result = train(
                model.to(self.data.train.images.device),
                self.data.train,
                self.data.val,
                hparams,
                epochs=self.config.train.epochs,
                seed=seed,
                augment=self.data.augment,
                eval_batch_size=self.config.train.eval_batch_size,
                on_epoch=report,
            )
        except NonFiniteLossError as error:
            # Diverged: recorded as pruned so samplers learn from it; the study goes on.
            trial.set_user_attr("prune_reason", str(error))
            raise optuna.TrialPruned(str(error)) from None
        return result.final_accuracy
