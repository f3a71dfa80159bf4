"""The names nin-search stores on Optuna trials and studies, defined once.

Every module that writes or reads a trial's user attrs uses these constants, so the schema
that optuna-dashboard, the report, the analysis and the CLI see lives in one place. No torch,
no optuna here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ABLATION_SEED",
    "ABLATION_SOURCE",
    "ABLATION_STAGE",
    "ABLATION_VARIANT",
    "ARCH",
    "ARCH_SUMMARY",
    "BASELINE",
    "CONSTRAINT_VIOLATION",
    "CREATED_BY",
    "DATA",
    "FAIL_REASON",
    "HPARAMS",
    "INTERRUPTED",
    "MACS",
    "OPTUNA_ARTIFACT_PREFIX",
    "ORIGINAL_STAGE",
    "PARAMS",
    "PREPROCESSING",
    "REMOVED_WEIGHTS",
    "REQUIRED_USER_ATTRS",
    "RETRY",
    "RETRY_DEPTH",
    "RETRY_OF",
    "SAMPLED_BY",
    "SAMPLED_BY_VALUES",
    "SEED",
    "VARIANTS",
    "WEIGHTS_ARTIFACT",
    "ablation_study_name",
    "created_by_nin_search",
    "is_ablation_study_name",
]

# Every trial (searched and ablation).
ARCH = "arch"  # ArchSpec.to_dict()
ARCH_SUMMARY = "arch_summary"  # e.g. "mlp5x5-64-32/max > plain3x3-64 | nin, bn, relu"
PARAMS = "params"  # parameter count
MACS = "macs"  # multiply-accumulates per image
SEED = "seed"  # the trial's training seed
BASELINE = "baseline"  # "nin" | "plain" on the two reference trials
CONSTRAINT_VIOLATION = "constraint_violation"  # why a cost limit stopped the trial
HPARAMS = "hparams"  # Hyperparameters.to_dict() (ablation trials, which have no params)
WEIGHTS_ARTIFACT = "weights_artifact"  # artifact id of a completed trial's stored weights

# Study attrs.
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

# Failed trials and their retries (see nin_search.workers.requeue_interrupted).
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
SAMPLED_BY_VALUES = ("random", "model", "enqueued")

# Ablation trials live in a companion study (see :func:`ablation_study_name`).
ABLATION_SOURCE = "ablation_source"  # number of the searched trial that is ablated
ABLATION_STAGE = "ablation_stage"  # the changed stage; ORIGINAL_STAGE for the original
ABLATION_VARIANT = "ablation_variant"  # one of VARIANTS
ABLATION_SEED = "ablation_seed"  # seed index 0..S-1, shared by all variants (paired)
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


def created_by_nin_search(study_user_attrs: Mapping[str, Any]) -> bool:
    """Whether a study with these user attrs was created (completely) by nin-search."""
    return bool(study_user_attrs.get(CREATED_BY))
