"""The vocabulary of nin-search: every named choice, defined once.

Config derives the values it accepts from these tables; spec, layers, model, export and
sampling look their choices up here. No torch, no Optuna: this module sits left of config.
A module that maps a choice to a thing (an activation name to a torch class in ``layers``, to
source text in ``export``) keeps that mapping, keyed by these names; tests assert the keys agree.

One concept, one internal name. Names that are stored or typed by users stay as they are:

* stage kind: ``STAGE_KINDS`` and ``StageSpec.kind`` in Python (also the ``kind`` key of the
  ``arch`` JSON a trial stores); ``space.stage_types`` in a study file; ``s{i}_type`` as an
  Optuna param; the "type" column of a report.
* pooling: ``POOLS`` (plus ``NO_POOL`` in a spec); ``space.pool``; ``s{i}_pool``.
* head, activation, optimizer: ``HEADS``, ``ACTIVATIONS``, ``OPTIMIZERS``; the same word as
  the study file key (``space.head``, ``space.activation``, ``train.optimizer``) and param.
* baseline: ``BASELINES`` and the ``baseline`` argument of ``space.baseline_params``; the
  ``study.baselines`` switch; the ``baseline`` user attr of an enqueued reference trial.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nin_search.records import COSTS

# --- architecture and training choices (stage kinds, pools, heads, activations, optimizers) ---

# "plain": one k x k conv; "mlp": MLP conv (k x k conv, then stacked 1x1 convs, the NIN block).
PLAIN, MLP = "plain", "mlp"  # a stage: one k x k conv, or MLP conv (k x k, then 1x1 convs)
STAGE_KINDS = (PLAIN, MLP)
POOLS = ("max", "avg")  # 3x3/2 downsampling after a stage (NIN's)
NO_POOL = "none"  # a stage that does not downsample (always the last one)
# "nin": 1x1 conv to the classes, then global average pooling; "linear": GAP, then a linear layer.
HEADS = ("nin", "linear")
ACTIVATIONS = ("relu", "gelu", "silu")
OPTIMIZERS = ("sgd", "adamw")  # SGD with Nesterov momentum, or AdamW
# auto: bf16 autocast on CUDA (fp16 + a grad scaler on GPUs without bf16) and on CPUs with
# native bf16 (avx512_bf16, AMX, Arm bf16), float32 elsewhere.
PRECISIONS = ("auto", "fp32", "bf16")
# An ablation's matched network has the original's parameter count within this fraction; a
# flipped network already within it is its own matched one (trained once).
PARAM_TOLERANCE = 0.05
RUN_PRECISIONS = ("fp32", "bf16", "fp16")  # what a run trained in: train.precision resolved
SCHEDULES = ("cosine", "step")  # warm-up + cosine decay to 0; x0.1 at 50% and 75% of the steps
DATASETS = ("digits", "imagefolder", "cifar10", "cifar100", "mnist", "fashion-mnist", "svhn")
ACCURACY = "accuracy"  # the first objective, maximised; the costs (records.COSTS) are minimised
OBJECTIVES = (ACCURACY, *COSTS)
# The reference trials a new study enqueues: the NIN-shaped network and its all-plain twin.
BASELINES = ("nin", "plain")
BASELINE_KINDS = {"nin": MLP, "plain": PLAIN}  # every stage MLP conv, or every stage plain
BASELINE_TITLES = {"nin": "NIN baseline", "plain": "plain baseline"}  # in tables and the note


# --- rules shared by the study file (config) and the spec ---


def is_odd_kernel_size(value: int) -> bool:
    """A conv kernel side that keeps the image size with "same" padding: odd and >= 1."""
    return value >= 1 and value % 2 == 1


def is_rate(value: float) -> bool:
    """A dropout or label-smoothing rate: a finite number in [0, 1)."""
    return math.isfinite(value) and 0.0 <= value < 1.0


# --- samplers and pruners ---
# The keys are what ``optuna.sampler`` and ``optuna.pruner`` accept (config derives its values
# from them). A factory is written "module:attribute" and imported by nin_search.sampling only
# when a study uses it (this module imports no Optuna). Defaults are the keyword arguments
# nin-search passes (a pruner's ``optuna.pruner_options`` override them), or a function of
# the epochs per trial that returns them. Samplers also get the study's seed.


@dataclass(frozen=True)
class Factory:
    """How nin-search builds one sampler or pruner.

    Attributes:
        path: The class or function that builds it, as ``"module:attribute"``.
        defaults: Keyword arguments, or a function of the epochs per trial returning them.
        multi_objective_path: The one to build instead for a study with several objectives.
    """

    path: str
    defaults: Mapping[str, Any] | Callable[[int], Mapping[str, Any]] = field(default_factory=dict)
    multi_objective_path: str | None = None

    def __post_init__(self) -> None:
        module, _, attribute = self.path.partition(":")
        if not module or not attribute:
            raise ValueError(f"path must be 'module:attribute', but got path={self.path!r}.")

    def defaults_for(self, epochs: int) -> dict[str, Any]:
        """The default keyword arguments for a study of ``epochs`` epochs per trial."""
        defaults = self.defaults(epochs) if callable(self.defaults) else self.defaults
        return dict(defaults)


def _hyperband_defaults(epochs: int) -> dict[str, Any]:
    return {"min_resource": 1, "max_resource": epochs, "reduction_factor": 3}


# TPE is multivariate and grouped (the space is conditional) with the constant liar on
# (parallel workers then do not sample the same point).
SAMPLER_FACTORIES: dict[str, Factory] = {
    "tpe": Factory(
        "optuna.samplers:TPESampler",
        {"multivariate": True, "group": True, "constant_liar": True},
        multi_objective_path="nin_search.sampling:MultiObjectiveTPESampler",
    ),
    "random": Factory("optuna.samplers:RandomSampler"),
    "nsgaii": Factory("optuna.samplers:NSGAIISampler"),
    "gp": Factory("optuna.samplers:GPSampler", {"warn_independent_sampling": False}),
}

PRUNER_FACTORIES: dict[str, Factory] = {
    "median": Factory("optuna.pruners:MedianPruner", {"n_startup_trials": 5, "n_warmup_steps": 2}),
    # nin-search's rule for studies with several objectives, where Optuna cannot prune: the
    # objective applies it to the trials' curves, and the Optuna study gets a NopPruner.
    "dominated": Factory(
        "nin_search.pruning:DominatedPruner",
        {"min_dominators": 2, "margin": 0.01, "n_warmup_steps": 1},
    ),
    # The default: keeps the top 10% (stops a trial below the completed trials' 90th percentile)
    # from its first epoch on, once two trials completed (the two baselines in a default
    # study); see benchmarks/RESULTS.md §3 (3.6x fewer epochs at -0.12 points on digits).
    "percentile": Factory(
        "optuna.pruners:PercentilePruner",
        {"percentile": 10.0, "n_startup_trials": 2, "n_warmup_steps": 0},
    ),
    "hyperband": Factory("optuna.pruners:HyperbandPruner", _hyperband_defaults),
    "successive-halving": Factory(
        "optuna.pruners:SuccessiveHalvingPruner", {"min_resource": 1, "reduction_factor": 3}
    ),
    "threshold": Factory("nin_search.sampling:threshold_pruner"),  # needs lower or upper
    "patient": Factory("nin_search.sampling:patient_median_pruner", {"patience": 2}),
    "wilcoxon": Factory("optuna.pruners:WilcoxonPruner"),
    "none": Factory("optuna.pruners:NopPruner"),
}
