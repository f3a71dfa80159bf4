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

# --- architecture and training choices (stage kinds, pools, heads, activations, optimizers) ---

# "plain": one k x k conv; "mlp": MLP conv (k x k conv, then stacked 1x1 convs, the NIN block).
STAGE_KINDS = ("plain", "mlp")
POOLS = ("max", "avg")  # 3x3/2 downsampling after a stage (NIN's)
NO_POOL = "none"  # a stage that does not downsample (always the last one)
# "nin": 1x1 conv to the classes, then global average pooling; "linear": GAP, then a linear layer.
HEADS = ("nin", "linear")
ACTIVATIONS = ("relu", "gelu", "silu")
OPTIMIZERS = ("sgd", "adamw")  # SGD with Nesterov momentum, or AdamW
DATASETS = ("digits", "imagefolder", "cifar10", "cifar100", "mnist", "fashion-mnist", "svhn")
OBJECTIVES = ("accuracy", "params", "macs", "latency_ms")  # accuracy is maximised, costs minimised
# The reference trials a new study enqueues: the NIN-shaped network and its all-plain twin.
BASELINES = ("nin", "plain")


# --- rules shared by the study file (config) and the spec ---


def is_odd_kernel_size(value: int) -> bool:
    """A conv kernel side that keeps the image size with "same" padding: odd and >= 1."""
    return value >= 1 and value % 2 == 1


def is_rate(value: float) -> bool:
    """A dropout or label-smoothing rate: a finite number in [0, 1)."""
    return math.isfinite(value) and 0.0 <= value < 1.0


# --- samplers and pruners ---
