"""The Optuna objective: space -> ArchSpec -> model -> train, reporting every epoch."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import torch

from nin_search.config import StudyConfig
from nin_search.data import SearchData
from nin_search.model import build_model, count_macs, count_params
from nin_search.space import suggest_arch, suggest_hyperparameters
from nin_search.train import EpochResult, NonFiniteLossError, train
from nin_search.weights import save_weights

__all__ = ["Objective", "trial_seed"]

EpochCallback = Callable[[optuna.Trial, EpochResult], None]


def _describe(error: Exception) -> str:
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, torch.OutOfMemoryError):
        return f"out of memory: {message[:200]}"
    return f"{error.__class__.__name__}: {message[:300]}"


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def trial_seed(study_seed: int, params: dict[str, Any]) -> int:
    """A reproducible 32-bit seed from the study seed and the trial's parameters.

    A trial retried after a crash has the same parameters, so it gets the same seed.
    """
    digest = hashlib.sha256(json.dumps([study_seed, params], sort_keys=True).encode())
    return int.from_bytes(digest.digest()[:4], "little")


class Objective:
    """Trains one sampled architecture and returns its final validation accuracy.

    Every trial stores user attrs ``arch`` (``ArchSpec.to_dict()``), ``arch_summary``,
    ``params``, ``macs`` (per image) and ``seed``; a pruned trial also stores ``prune_reason``,
    and a completed one ``weights_artifact`` (the id of its weights in the artifact store).

    Args:
        config: The study config.
        data: Train/validation tensors on the training device.
        artifact_store: Where completed trials' weights go; None keeps no weights.
        on_epoch: Called after every epoch (the CLI's live display listens here).
    """

    def __init__(
        self,
        config: StudyConfig,
        data: SearchData,
        *,
        artifact_store: optuna.artifacts.FileSystemArtifactStore | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> None:
        self.config = config
        self.data = data
        self.artifact_store = artifact_store
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
        trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})

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
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt as interrupt:
            # Ctrl-C or SIGTERM: failed, and retried with the same parameters on resume.
            trial.set_user_attr("fail_reason", f"interrupted ({interrupt.__class__.__name__})")
            trial.set_user_attr("retry", True)
            raise
        except Exception as error:
            # Out of memory, a shape error from an extreme architecture, ...: this trial
            # fails with its reason and the worker frees memory and goes on.
            trial.set_user_attr("fail_reason", _describe(error))
            del model
            _free_memory()
            raise
        if self.artifact_store is not None and self._worth_keeping(trial, result.final_accuracy):
            self._upload_weights(trial, model)
        return result.final_accuracy

    def _worth_keeping(self, trial: optuna.Trial, accuracy: float) -> bool:
        """Baselines and trials that enter the current best ``keep_weights`` keep weights."""
        if trial.user_attrs.get("baseline"):
            return True
        completed = trial.study.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
        )
        better = sum(other.value > accuracy for other in completed)
        return better < self.config.study.keep_weights

    def _upload_weights(self, trial: optuna.Trial, model: torch.nn.Module) -> None:
        """Stores the trained weights as an Optuna artifact (safetensors)."""
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"trial-{trial.number}.safetensors"
            save_weights(model.state_dict(), path)
            artifact_id = optuna.artifacts.upload_artifact(
                artifact_store=self.artifact_store,
                file_path=str(path),
                study_or_trial=trial,
                mimetype="application/octet-stream",
            )
        trial.set_user_attr("weights_artifact", artifact_id)
