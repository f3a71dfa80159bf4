"""Reading trials: the stages of an architecture, completed trials, numeric user attrs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nin_search.spec import ArchSpec, SpecError

NO_COMPLETED_TRIALS = "no completed trials yet"


class BestStageRow(NamedTuple):
    """One stage of the best architecture; ``kind`` is ``"plain"`` or ``"mlp"``."""

    stage: int
    kind: str
    kernel_size: int | None
    width: int | None
    mlp_widths: tuple[int, ...]
    pool: str | None


def trial_stages(trial: FrozenTrial) -> list[BestStageRow]:
    """The trial's stages, from the ``arch`` user attr if valid, else from its params."""
    arch = trial.user_attrs.get("arch")
    if isinstance(arch, dict):
        try:
            spec = ArchSpec.from_dict(arch)
        except (SpecError, TypeError):
            spec = None
        if spec is not None:
            return [
                BestStageRow(
                    index, stage.kind, stage.kernel_size, stage.width, stage.mlp_widths, stage.pool
                )
                for index, stage in enumerate(spec.stages)
            ]
    params = trial.params
    num_stages = params.get("num_stages")
    if not isinstance(num_stages, int):
        num_stages = 0
        while f"s{num_stages}_type" in params:
            num_stages += 1
    rows = []
    for index in range(num_stages):
        prefix = f"s{index}"
        kind = params.get(f"{prefix}_type")
        if kind not in ("plain", "mlp"):
            return rows
        depth = params.get(f"{prefix}_mlp_depth", 0) if kind == "mlp" else 0
        mlp_widths = tuple(
            params.get(f"{prefix}_mlp{layer}_width") for layer in range(1, depth + 1)
        )
        last = index == num_stages - 1
        pool = params.get(f"{prefix}_pool", "none" if last else None)
        rows.append(
            BestStageRow(
                index,
                kind,
                params.get(f"{prefix}_kernel_size"),
                params.get(f"{prefix}_width"),
                mlp_widths,
                pool,
            )
        )
    return rows


def completed_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's completed trials with a finite value."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [
        trial
        for trial in trials
        if trial.values
        and math.isfinite(trial.values[0])
        and not trial.user_attrs.get("constraint_violation")
    ]


def mean(values: Sequence[float]) -> float | None:
    """The mean of ``values``, or ``None`` when there are none."""
    return float(np.mean(values)) if len(values) else None


def int_attr(trial: FrozenTrial, name: str) -> int | None:
    """The user attr ``name`` as an int, or ``None`` when missing or not a number."""
    value = trial.user_attrs.get(name)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
