"""The names nin-search stores on Optuna trials and studies, and the trial record, defined once.

Every module that writes or reads a trial's user attrs goes through this module: writers call
:func:`write` (or :func:`user_attrs` for ``enqueue_trial``), readers :meth:`TrialRecord.from_trial`,
so the schema that optuna-dashboard, the report, the analysis and the CLI see lives in one
place. No torch, no optuna here: it works on any object with ``user_attrs`` (and
``set_user_attr`` to write).
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial, Trial, TrialState

__all__ = [
    "ABLATION_ALSO_MATCHED",
    "ABLATION_SEED",
    "ABLATION_SOURCE",
    "ABLATION_STAGE",
    "ABLATION_VARIANT",
    "ARCH",
    "ARCH_SUMMARY",
    "BASELINE",
    "BASELINES_NOTE",
    "CONFIG",
    "CONSTRAINT_VIOLATION",
    "COSTS",
    "CREATED_BY",
    "CREATION_SYSTEM_ATTRS",
    "DATA",
    "ENQUEUED",
    "FAIL_REASON",
    "HPARAMS",
    "INTERRUPTED",
    "LATENCY_MS",
    "MACS",
    "MODEL",
    "OPTUNA_ARTIFACT_PREFIX",
    "ORIGINAL_STAGE",
    "PARAMS",
    "PRECISION",
    "PREPROCESSING",
    "PRUNE_REASON",
    "RANDOM",
    "REMOVED_WEIGHTS",
    "REPLAYED_SEED_INDEX",
    "REQUIRED_USER_ATTRS",
    "RESUMED_FROM_EPOCH",
    "RETRY",
    "RETRY_DEPTH",
    "RETRY_OF",
    "SAMPLED_BY",
    "SAMPLED_BY_VALUES",
    "SEED",
    "SOURCE_STUDY",
    "SPACE_FINGERPRINT",
    "VARIANTS",
    "WEIGHTS_ARTIFACT",
    "WEIGHTS_STORE",
    "WORKER",
    "TrialRecord",
    "ablation_study_name",
    "created_by_nin_search",
    "is_ablation_study_name",
    "system_attr_key",
    "user_attrs",
    "weights_store_here",
    "write",
]

# Every trial (searched and ablation).
ARCH = "arch"  # ArchSpec.to_dict()
ARCH_SUMMARY = "arch_summary"  # e.g. "mlp5x5-64-32/max > plain3x3-64 | nin, bn, relu"
PARAMS = "params"  # parameter count
MACS = "macs"  # multiply-accumulates per image
LATENCY_MS = "latency_ms"  # median ms of one forward pass (when an objective or limit needs it)
COSTS = (PARAMS, MACS, LATENCY_MS)  # the costs, each stored under its own (objective) name
SEED = "seed"  # the trial's training seed
BASELINE = "baseline"  # "nin" | "plain" on the two reference trials
CONSTRAINT_VIOLATION = "constraint_violation"  # why a cost limit stopped the trial
HPARAMS = "hparams"  # Hyperparameters.to_dict() (ablation trials, which have no params)
WEIGHTS_ARTIFACT = "weights_artifact"  # artifact id of a completed trial's stored weights
# {"host": ..., "dir": ...}: the machine and absolute artifact folder that hold those weights
# (each machine of a shared study keeps its own folder unless they share one).
WEIGHTS_STORE = "weights_store"
WORKER = "worker"  # {"host": ..., "pid": ...} of the process that trains the trial
PRUNE_REASON = "prune_reason"  # why a pruned trial stopped (pruner, dominated, diverged)
RESUMED_FROM_EPOCH = "resumed_from_epoch"  # epochs a retry took over from its checkpoint
PRECISION = "precision"  # what the trial trained in: fp32, bf16 or fp16 (train.precision resolved)

# Study attrs.
CONFIG = "config"  # StudyConfig.model_dump(mode="json") of the study's config
SPACE_FINGERPRINT = "space"  # fingerprint of the search space the study was created with
# CONFIG and SPACE_FINGERPRINT (together ~2,000 characters of JSON) are study *system* attrs,
# stored under system_attr_key(name), so that the user attrs `optuna studies` and
# optuna-dashboard list stay short; studies written before hold them as user attrs of the
# same name. Read both with nin_search.trials.recorded_config / recorded_space.
CREATION_SYSTEM_ATTRS = (CONFIG, SPACE_FINGERPRINT)
SOURCE_STUDY = "source_study"  # on a companion (ablation) study: the searched study's name
BASELINES_NOTE = "baselines_note"  # how the baselines were fitted to the cost limits, if they were
DATA = "data"  # in_channels, num_classes, image_size, classes, PREPROCESSING of the data
PREPROCESSING = "preprocessing"  # key in DATA: Preprocessing.to_dict() of the training part
REMOVED_WEIGHTS = "removed_weights"  # numbers of trials whose stored weights were deleted
# Optuna (and optuna-dashboard) list a trial's artifacts from its system attrs with this prefix
# (optuna.artifacts.upload_artifact writes "artifacts:<artifact id>").
OPTUNA_ARTIFACT_PREFIX = "artifacts:"

# The trial user attrs a study written by your own Optuna objective must set so that
# `nin-search best` and `nin-search report` read it (README "Python API"); the study itself
# carries CREATED_BY.
REQUIRED_USER_ATTRS = (ARCH, ARCH_SUMMARY, PARAMS, MACS)

# Failed trials and their retries (see nin_search.recovery.requeue_interrupted).
FAIL_REASON = "fail_reason"  # why the trial failed, one line
RETRY = "retry"  # True: enqueue the same parameters again on the next run
INTERRUPTED = "interrupted"  # True: Ctrl-C or SIGTERM stopped it (never uses up a retry)
RETRY_OF = "retry_of"  # on a retry: the number of the failed trial it repeats
RETRY_DEPTH = "retry_depth"  # on a retry: how many crashes (not interrupts) came before it

# Study user attr on every study nin-search creates (a search study and its companions, e.g.
# the ablation study), written last at creation: the nin-search version that created it. A
# study without it belongs to another program (or its creation never finished), and
# nin-search neither adopts nor reads it.
CREATED_BY = "nin_search_version"

# How a searched trial's parameters were chosen: drawn at random (the unbiased sample the
# design-space statistics use), by the model-based sampler (TPE, GP, NSGA-II), or enqueued
# (baselines, retries).
SAMPLED_BY = "sampled_by"
# Who chose a trial's parameters: the uniform random draws the design-space verdict reads,
# the sampler's model (TPE, ...), or enqueue_trial (baselines, retries).
RANDOM, MODEL, ENQUEUED = "random", "model", "enqueued"
SAMPLED_BY_VALUES = (RANDOM, MODEL, ENQUEUED)

# Ablation trials live in a companion study (see :func:`ablation_study_name`).
ABLATION_SOURCE = "ablation_source"  # number of the searched trial that is ablated
ABLATION_STAGE = "ablation_stage"  # the changed stage; ORIGINAL_STAGE for the original
ABLATION_VARIANT = "ablation_variant"  # one of VARIANTS
ABLATION_SEED = "ablation_seed"  # seed index 1..S, shared by all variants (paired)
# On a flipped run: the flipped network is also the matched one (its parameter count already
# within the tolerance of the original's), so no matched run is trained for its stage.
ABLATION_ALSO_MATCHED = "ablation_also_matched"
# Seed index 0 was, before 2026-12-07, the source trial's own seed: its original replayed the
# searched run, the one the search picked as best on these validation images, so it favoured
# the original (the winner's curse). Ablations now use fresh seeds 1..S; the analysis leaves
# index 0 out of older companion studies.
REPLAYED_SEED_INDEX = 0
ORIGINAL_STAGE = -1
# "original": the source trial's network; "flipped": one stage's kind changed (MLP conv ->
# plain: its 1x1 layers removed; plain -> MLP conv: 1x1 layers added); "matched": the flipped
# kind at the original's parameter count (within 5%).
VARIANTS = ("original", "flipped", "matched")


ABLATION_SUFFIX = ":ablation"


def ablation_study_name(study_name: str) -> str:
    """The companion study that holds the ablation trials of ``study_name``."""
    return f"{study_name}{ABLATION_SUFFIX}"


def is_ablation_study_name(study_name: str) -> bool:
    """Whether ``study_name`` names a companion ablation study (not a searched one)."""
    return study_name.endswith(ABLATION_SUFFIX)


def system_attr_key(name: str) -> str:
    """The study system attr that holds ``name`` (one of CREATION_SYSTEM_ATTRS)."""
    return f"nin_search:{name}"


def created_by_nin_search(study_user_attrs: Mapping[str, Any]) -> bool:
    """Whether a study with these user attrs was created (completely) by nin-search."""
    return bool(study_user_attrs.get(CREATED_BY))


class _HasUserAttrs(Protocol):
    @property
    def user_attrs(self) -> Mapping[str, Any]: ...


class _WritableTrial(Protocol):
    def set_user_attr(self, key: str, value: Any) -> None: ...


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value: Any) -> float | None:
    """A finite number as a float, else ``None``."""
    return float(value) if _is_number(value) and math.isfinite(value) else None


def _count(value: Any) -> int | None:
    """A finite number as an int (parameter counts, MACs, seeds), else ``None``."""
    number = _number(value)
    return int(number) if number is not None else None


def _integer(value: Any) -> int | None:
    """An int as stored (indices, trial numbers), else ``None``; never a bool."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None


def _mapping(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, Mapping) else None


def _flag(value: Any) -> bool | None:
    return bool(value) if value is not None else None


@dataclasses.dataclass(frozen=True)
class TrialRecord:
    """What nin-search knows about one trial, read from its user attrs.

    Every attr a trial lacks (or holds in an unusable form) reads as ``None``, never as 0, so
    a trial of another program or an older version shows "-" rather than a made-up value.
    ``params`` are Optuna's suggested parameters; the parameter count is ``param_count``.
    """

    number: int
    state: TrialState | None  # None for a running optuna.Trial
    values: tuple[float, ...] | None
    params: dict[str, Any]
    # Every trial (searched and ablation).
    arch: dict[str, Any] | None = None  # ArchSpec.to_dict()
    arch_summary: str | None = None
    param_count: int | None = None
    macs: int | None = None  # multiply-accumulates per image
    latency_ms: float | None = None
    seed: int | None = None
    baseline: str | None = None  # "nin" | "plain" on the reference trials
    constraint_violation: str | None = None  # set when a cost limit stopped the trial
    sampled_by: str | None = None  # one of SAMPLED_BY_VALUES
    hparams: dict[str, Any] | None = None  # ablation trials
    weights_artifact: str | None = None
    weights_store: dict[str, Any] | None = None
    worker: dict[str, Any] | None = None
    # How the trial ended.
    prune_reason: str | None = None
    fail_reason: str | None = None
    retry: bool | None = None
    interrupted: bool | None = None
    retry_of: int | None = None
    retry_depth: int | None = None
    resumed_from_epoch: int | None = None
    precision: str | None = None  # fp32 | bf16 | fp16
    # Ablation trials (companion study).
    ablation_source: int | None = None
    ablation_stage: int | None = None
    ablation_variant: str | None = None
    ablation_seed: int | None = None
    ablation_also_matched: bool | None = None

    @classmethod
    def from_trial(cls, trial: FrozenTrial | Trial) -> TrialRecord:
        """The record of ``trial``: a FrozenTrial, or a running ``optuna.Trial`` (whose
        ``state`` and ``values`` read as ``None``)."""
        values = getattr(trial, "values", None)
        attrs = trial.user_attrs  # one read: a running trial fetches them from its storage
        fields = {name: read(attrs.get(_ATTRS[name])) for name, read in _READERS.items()}
        return cls(
            number=trial.number,
            state=getattr(trial, "state", None),
            values=tuple(values) if values else None,
            params=dict(trial.params),
            **fields,
        )

    @property
    def accuracy(self) -> float | None:
        """The first objective value (validation accuracy in [0, 1]) when finite, else ``None``."""
        if not self.values or self.values[0] is None or not math.isfinite(self.values[0]):
            return None
        return float(self.values[0])

    @property
    def ablation_key(self) -> tuple[int, int, str, int] | None:
        """Which ablation run the trial is, ``(source, stage, variant, seed index)``; ``None``
        for a trial that is not one."""
        key = (self.ablation_source, self.ablation_stage, self.ablation_variant,
               self.ablation_seed)  # fmt: skip
        return None if None in key else key  # type: ignore[return-value]

    @property
    def feasible(self) -> bool:
        """Whether the trial stayed within the study's cost limits."""
        return not self.constraint_violation

    def cost(self, name: str) -> float | None:
        """The cost ``name`` (one of COSTS) as a finite number, else ``None``."""
        return {PARAMS: self.param_count, MACS: self.macs, LATENCY_MS: self.latency_ms}[name]


# TrialRecord field -> user attr name, and how a stored value is read back.
_ATTRS = {
    "arch": ARCH,
    "arch_summary": ARCH_SUMMARY,
    "param_count": PARAMS,
    "macs": MACS,
    "latency_ms": LATENCY_MS,
    "seed": SEED,
    "baseline": BASELINE,
    "constraint_violation": CONSTRAINT_VIOLATION,
    "sampled_by": SAMPLED_BY,
    "hparams": HPARAMS,
    "weights_artifact": WEIGHTS_ARTIFACT,
    "weights_store": WEIGHTS_STORE,
    "worker": WORKER,
    "prune_reason": PRUNE_REASON,
    "fail_reason": FAIL_REASON,
    "retry": RETRY,
    "interrupted": INTERRUPTED,
    "retry_of": RETRY_OF,
    "retry_depth": RETRY_DEPTH,
    "resumed_from_epoch": RESUMED_FROM_EPOCH,
    "precision": PRECISION,
    "ablation_source": ABLATION_SOURCE,
    "ablation_stage": ABLATION_STAGE,
    "ablation_variant": ABLATION_VARIANT,
    "ablation_seed": ABLATION_SEED,
    "ablation_also_matched": ABLATION_ALSO_MATCHED,
}
_READERS = {
    "arch": _mapping,
    "arch_summary": _text,
    "param_count": _count,
    "macs": _count,
    "latency_ms": _number,
    "seed": _count,
    "baseline": _text,
    "constraint_violation": lambda value: str(value) if value else None,
    "sampled_by": _text,
    "hparams": _mapping,
    "weights_artifact": _text,
    "weights_store": _mapping,
    "worker": _mapping,
    "prune_reason": _text,
    "fail_reason": _text,
    "retry": _flag,
    "interrupted": _flag,
    "retry_of": _integer,
    "retry_depth": _integer,
    "resumed_from_epoch": _integer,
    "precision": _text,
    "ablation_source": _integer,
    "ablation_stage": _integer,
    "ablation_variant": _text,
    "ablation_seed": _integer,
    "ablation_also_matched": _flag,
}


def weights_store_here(artifact_dir: str | os.PathLike[str]) -> dict[str, str]:
    """The ``weights_store`` value of weights stored in ``artifact_dir`` by this process: this
    machine's host name and the folder's absolute path (what :func:`nin_search.artifacts.
    stored_here` compares)."""
    return {"host": socket.gethostname(), "dir": str(Path(artifact_dir).resolve())}


def user_attrs(*, costs: Mapping[str, float] | None = None, **fields: Any) -> dict[str, Any]:
    """The user attrs that hold these :class:`TrialRecord` fields (``None`` ones left out).

    Args:
        costs: Costs by name (each of COSTS is stored under its own name).
        fields: TrialRecord fields by name, e.g. ``arch=spec.to_dict(), seed=0``.

    Raises:
        TypeError: For a name that is not a field or cost of the record.
    """
    for name in fields:
        if name not in _ATTRS:
            raise TypeError(
                f"not a TrialRecord field written to user attrs: {name}={fields[name]!r}."
            )
    attrs = {}
    for name, value in (costs or {}).items():
        if name not in COSTS:
            raise TypeError(f"cost must be one of {COSTS}, but got {name}={value!r}.")
        attrs[name] = value
    attrs.update({_ATTRS[name]: value for name, value in fields.items() if value is not None})
    return attrs


def write(
    trial: _WritableTrial, *, costs: Mapping[str, float] | None = None, **fields: Any
) -> None:
    """Stores these :class:`TrialRecord` fields (and ``costs``) on ``trial`` as user attrs.

    Raises:
        TypeError: For a name that is not a field or cost of the record (nothing is written).
    """
    for name, value in user_attrs(costs=costs, **fields).items():
        trial.set_user_attr(name, value)
