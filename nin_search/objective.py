"""The Optuna objective: space -> ArchSpec -> model -> train, reporting every epoch."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import socket
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from nin_search import records
from nin_search.compat import record_intermediate_value, set_constraints
from nin_search.config import CostConfig, StudyConfig
from nin_search.data import SearchData
from nin_search.devices import resolve_precision
from nin_search.dominated import DominatedCurvePruner
from nin_search.interrupts import allowed, held, raise_pending
from nin_search.model import build_model, count_macs, count_params, measure_latency_ms
from nin_search.records import RANDOM, TrialRecord
from nin_search.space import suggest_arch, suggest_hyperparameters
from nin_search.spec import ArchSpec, Hyperparameters
from nin_search.storage_messages import describe_lost_connection
from nin_search.train import EpochResult, NonFiniteLossError, Trainer, TrainSettings
from nin_search.weights import save_weights

__all__ = ["AblationObjective", "Objective", "trial_seed"]

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


def _remove(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)


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
    and a completed one ``weights_artifact`` (the id of its weights in the artifact store) and
    ``weights_store`` (this machine and the artifact folder, which holds them).

    Args:
        config: The study config.
        data: Train/validation tensors on the training device.
        artifact_dir: The artifact folder (an existing folder: Optuna's
            ``FileSystemArtifactStore``) where completed trials' weights go; None keeps no
            weights.
        checkpoint_dir: Where a running trial saves its state after every epoch, so that a
            retry after a crash or Ctrl-C continues from the last finished epoch; None: no
            checkpoints. A trial's file is removed when it completes or is pruned.
        on_epoch: Called after every epoch (the CLI's live display listens here).
    """

    def __init__(
        self,
        config: StudyConfig,
        data: SearchData,
        *,
        artifact_dir: Path | None = None,
        checkpoint_dir: Path | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> None:
        self.config = config
        self.data = data
        self.artifact_dir = None if artifact_dir is None else Path(artifact_dir).resolve()
        self.checkpoint_dir = checkpoint_dir
        if checkpoint_dir is not None:
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.on_epoch = on_epoch

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        return self._guarded(trial, self._searched)

    def _searched(
        self, trial: optuna.Trial, checkpoint: list[Path | None]
    ) -> float | tuple[float, ...]:
        arch = suggest_arch(trial, self.config.space)
        hparams = suggest_hyperparameters(trial, self.config.train)
        seed = trial_seed(self.config.study.seed, trial.params)
        key = [trial.params, seed]
        return self.run(trial, arch, hparams, seed, checkpoint_key=key, checkpoint=checkpoint)

    def _guarded(
        self,
        trial: optuna.Trial,
        body: Callable[[optuna.Trial, list[Path | None]], float | tuple[float, ...]],
    ) -> float | tuple[float, ...]:
        """Runs ``body`` and records how it ended: diverged (pruned), pruned, interrupted
        (failed, to be retried), or failed with its reason."""
        checkpoint: list[Path | None] = [None]  # set once known: removed on every end but Ctrl-C
        try:
            raise_pending()  # one that came while Optuna set the trial up (nin_search.interrupts)
            return body(trial, checkpoint)
        except NonFiniteLossError as error:
            # Diverged: recorded as pruned so samplers learn from it; the study goes on.
            records.write(trial, prune_reason=str(error))
            _remove(checkpoint[0])
            raise optuna.TrialPruned(str(error)) from None
        except optuna.TrialPruned:
            _remove(checkpoint[0])
            raise
        except KeyboardInterrupt as interrupt:
            # Ctrl-C or SIGTERM: failed, and retried with the same parameters on resume
            # (an interrupt never uses up one of the retries that crashes get).
            records.write(
                trial,
                fail_reason=f"interrupted ({interrupt.__class__.__name__})",
                retry=True,
                interrupted=True,
            )
            raise
        except Exception as error:
            lost = describe_lost_connection(error)
            if lost is not None:
                # The database server went away (a restart): nothing is wrong with the trial.
                # Retried as an interrupted one, from its checkpoint, if the server is back in
                # time to record it; else the next run finds it running with its worker gone.
                with contextlib.suppress(Exception):
                    records.write(trial, fail_reason=lost, retry=True, interrupted=True)
                raise
            # Out of memory, a shape error from an extreme architecture, a model that cannot
            # even be built, ...: this trial fails with its reason and the worker frees
            # memory and goes on.
            records.write(trial, fail_reason=_describe(error))
            _remove(checkpoint[0])  # not retried: it would fail the same way
            traceback.clear_frames(error.__traceback__)  # drops the model the frames hold
            _free_memory()
            raise

    def run(
        self,
        trial: optuna.Trial,
        arch: ArchSpec,
        hparams: Hyperparameters,
        seed: int,
        *,
        checkpoint_key: Any,
        checkpoint: list[Path | None],
    ) -> float | tuple[float, ...]:
        """Builds ``arch``, trains it with ``hparams`` and ``seed`` on the study's data and
        returns the objective values; ``checkpoint_key`` (JSON-ready) names the trial's
        checkpoint (its path goes to ``checkpoint[0]``), so a retry of the same work finds it."""
        shape = {"in_channels": self.data.in_channels, "num_classes": self.data.num_classes}
        device = self.data.train.images.device
        torch.manual_seed(seed)
        model = build_model(arch, **shape).to(device)
        with allowed():  # measuring the latency takes a while
            costs = self._costs(arch, model)
        records.write(
            trial,
            costs=costs,
            arch=arch.to_dict(),
            arch_summary=arch.summary(),
            seed=seed,
            worker={"host": socket.gethostname(), "pid": os.getpid()},
            precision=resolve_precision(self.config.train.precision, device).name,
        )
        violations = self._check_constraints(trial, costs)
        if violations:
            # Stopped before any training; the constraint teaches the sampler to avoid it.
            records.write(trial, constraint_violation=violations)
            return self._values(0.0, costs)
        checkpoint[0] = self._checkpoint_path(checkpoint_key)
        settings = TrainSettings(
            hparams,
            epochs=self.config.train.epochs,
            seed=seed,
            augment=self.data.augment,
            eval_batch_size=self.config.train.eval_batch_size,
            precision=self.config.train.precision,
            checkpoint_path=checkpoint[0],
        )
        report = _held(self._reporter(trial, costs))
        trainer = Trainer(model, self.data.train, self.data.val, settings, on_epoch=report)
        self._report_resumed(trial, trainer.resume())
        with allowed():  # Ctrl-C and SIGTERM stop the training at once, but not a write
            result = trainer.fit()
        if self.artifact_dir is not None and self._worth_keeping(trial, result.final_accuracy):
            self._upload_weights(trial, model)
        _remove(checkpoint[0])
        return self._values(result.final_accuracy, costs)

    def _checkpoint_path(self, checkpoint_key: Any) -> Path | None:
        """One file per key (parameters and seed): a retried trial finds its predecessor's."""
        if self.checkpoint_dir is None:
            return None
        key = hashlib.sha256(json.dumps(checkpoint_key, sort_keys=True).encode()).hexdigest()
        return self.checkpoint_dir / f"{key[:24]}.pt"

    def _report_resumed(self, trial: optuna.Trial, epochs: tuple[EpochResult, ...]) -> None:
        """Re-reports the epochs restored from an interrupted run of the same trial."""
        if not epochs:
            return
        for epoch in epochs:  # the new trial's curve starts where the old one stopped
            if self.config.multi_objective:
                record_intermediate_value(trial, epoch.epoch, epoch.val_accuracy)
            else:
                trial.report(epoch.val_accuracy, epoch.epoch)
        records.write(trial, resumed_from_epoch=len(epochs))

    def _costs(self, arch: ArchSpec, model: torch.nn.Module) -> dict[str, float]:
        """Parameters and MACs always; latency when an objective or a limit needs it."""
        shape = {"in_channels": self.data.in_channels, "num_classes": self.data.num_classes}
        costs: dict[str, float] = {
            records.PARAMS: count_params(model),
            records.MACS: count_macs(arch, image_size=self.data.image_size, **shape),
        }
        cost = self.config.cost
        if records.LATENCY_MS in self.config.objectives or cost.max_latency_ms is not None:
            costs[records.LATENCY_MS] = measure_latency_ms(
                model,
                in_channels=self.data.in_channels,
                image_size=self.data.image_size,
                batch_size=cost.latency_batch_size,
                runs=cost.latency_runs,
            )
        return costs

    def _check_constraints(self, trial: optuna.Trial, costs: dict[str, float]) -> str:
        """Records each limit as an Optuna constraint (<= 0 is feasible); returns what broke."""
        limits = self.config.cost.limits
        excess = {name: float(costs[name] - limit) for name, limit in limits.items()}
        if excess:
            set_constraints(trial, excess)
        broken = [
            f"{name} {costs[name]:,.6g} > max {limit:,.6g}"
            for name, limit in limits.items()
            if excess[name] > 0
        ]
        return "; ".join(broken)

    def _values(self, accuracy: float, costs: dict[str, float]) -> float | tuple[float, ...]:
        if not self.config.multi_objective:
            return accuracy
        return (accuracy, *(float(costs[name]) for name in self.config.objectives[1:]))

    def _reporter(
        self, trial: optuna.Trial, costs: dict[str, float]
    ) -> Callable[[EpochResult], None]:
        """The per-epoch callback: report, show progress, prune."""
        # The random trials are the design-space sample: trained in full unless the study
        # says otherwise, so that plain and MLP conv are compared after the whole short run.
        prunable = (
            self.config.study.prune_random_trials
            or TrialRecord.from_trial(trial).sampled_by != RANDOM
        )
        if self.config.multi_objective:
            return self._multi_objective_reporter(trial, costs, prunable=prunable)

        def report(result: EpochResult) -> None:
            trial.report(result.val_accuracy, result.epoch)
            if self.on_epoch is not None:
                self.on_epoch(trial, result)
            if prunable and trial.should_prune():
                records.write(trial, prune_reason=f"pruned by the pruner at epoch {result.epoch}")
                raise optuna.TrialPruned(f"pruned at epoch {result.epoch}")

        return report

    def _multi_objective_reporter(
        self, trial: optuna.Trial, costs: dict[str, float], *, prunable: bool
    ) -> Callable[[EpochResult], None]:
        # Trial.report refuses multi-objective studies; the storage keeps the curve anyway,
        # so optuna-dashboard still draws it, and the dominated rule reads it. Trials stopped
        # by a cost limit never trained, so they have no curve and never count as dominators.
        cost_objectives = {name: costs[name] for name in self.config.objectives[1:]}
        pruner = None
        if prunable and self.config.optuna.pruner == "dominated":
            pruner = DominatedCurvePruner(**self.config.optuna.pruner_options)

        def report(result: EpochResult) -> None:
            dominators = None
            if pruner is None:
                record_intermediate_value(trial, result.epoch, result.val_accuracy)
            else:  # records the point too
                dominators = pruner.should_prune(
                    trial, result.epoch, result.val_accuracy, costs=cost_objectives
                )
            if self.on_epoch is not None:
                self.on_epoch(trial, result)
            if dominators:
                reason = f"dominated at epoch {result.epoch} by cheaper trials {dominators[:5]}"
                records.write(trial, prune_reason=reason)
                raise optuna.TrialPruned(reason)

        return report

    def _worth_keeping(self, trial: optuna.Trial, accuracy: float) -> bool:
        """Baselines and trials that enter the current best ``keep_weights`` keep weights."""
        if TrialRecord.from_trial(trial).baseline:
            return True
        if self.config.multi_objective:
            return True  # any trial may join the Pareto front; prune_weights trims later
        completed = trial.study.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
        )
        better = sum(other.values[0] > accuracy for other in completed)
        return better < self.config.study.keep_weights

    def _upload_weights(self, trial: optuna.Trial, model: torch.nn.Module) -> None:
        """Stores the trained weights as an Optuna artifact (safetensors)."""
        assert self.artifact_dir is not None
        store = optuna.artifacts.FileSystemArtifactStore(str(self.artifact_dir))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"trial-{trial.number}.safetensors"
            save_weights(model.state_dict(), path)
            artifact_id = optuna.artifacts.upload_artifact(
                artifact_store=store,
                file_path=str(path),
                study_or_trial=trial,
                mimetype="application/octet-stream",
            )
        records.write(
            trial,
            weights_artifact=artifact_id,
            weights_store=records.weights_store_here(self.artifact_dir),
        )


class AblationObjective(Objective):
    """Trains the network an ablation trial names, through the same code as a searched trial.

    An ablation trial is enqueued with user attrs ``arch``, ``hparams`` and ``seed`` (see
    :mod:`nin_search.ablation_plan`) and suggests nothing. It is never pruned, keeps no weights,
    and ignores the study's cost limits and cost objectives: it answers one question, the
    validation accuracy of that network with that seed.
    """

    def __init__(
        self,
        config: StudyConfig,
        data: SearchData,
        *,
        checkpoint_dir: Path | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> None:
        single = config.model_copy(
            update={
                "study": config.study.model_copy(update={"objectives": ["accuracy"]}),
                "cost": CostConfig(),
            }
        )
        super().__init__(single, data, checkpoint_dir=checkpoint_dir, on_epoch=on_epoch)

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        return self._guarded(trial, self._ablation)

    def _ablation(
        self, trial: optuna.Trial, checkpoint: list[Path | None]
    ) -> float | tuple[float, ...]:
        attrs = trial.user_attrs
        _check_ablation_run(trial)
        arch = ArchSpec.from_dict(attrs[records.ARCH])
        hparams = Hyperparameters.from_dict(attrs[records.HPARAMS])
        seed = int(attrs[records.SEED])
        key = [arch.to_dict(), hparams.to_dict(), seed]
        return self.run(trial, arch, hparams, seed, checkpoint_key=key, checkpoint=checkpoint)


class NotAnAblationRun(Exception):
    """An ablation trial that is not to be trained: no queued run, or a run another trial
    already trains. It fails at once with the reason, before anything is built."""


def _check_ablation_run(trial: optuna.Trial) -> None:
    """Raises :class:`NotAnAblationRun` unless ``trial`` is a queued ablation run that no
    other trial has completed or is training.

    Two processes that queue the same ablation at once (two machines starting it together)
    can each enqueue a run; of two trials of the same run, the lower-numbered one trains. A
    process that asked for a run when another had just taken the last one gets a trial that is
    no run.
    """
    key = TrialRecord.from_trial(trial).ablation_key
    if key is None or records.ARCH not in trial.user_attrs:
        raise NotAnAblationRun("no ablation run was waiting: another process took the last one")
    for other in trial.study.get_trials(deepcopy=False):
        if other.number == trial.number or TrialRecord.from_trial(other).ablation_key != key:
            continue
        if other.state == TrialState.COMPLETE or (
            other.state == TrialState.RUNNING and other.number < trial.number
        ):
            raise NotAnAblationRun(
                f"the same run as trial #{other.number} ({other.state.name.lower()}), which two "
                "processes queued at once: trained once"
            )


def _held(report: Callable[[EpochResult], None]) -> Callable[[EpochResult], None]:
    """``report`` (it writes to the storage) with Ctrl-C and SIGTERM held back until it is
    done: one that lands in a half-done database write leaves Optuna's session unusable, and
    the trial could not be recorded as stopped (nin_search.interrupts)."""

    def held_report(result: EpochResult) -> None:
        with held():
            report(result)

    return held_report
