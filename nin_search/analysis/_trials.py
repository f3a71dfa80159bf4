"""Reading trials: the stages of an architecture, the value at an epoch.

Shared by the analysis and the report (which imports it from here).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from optuna.trial import FrozenTrial

from nin_search.records import TrialRecord
from nin_search.space import stages_from_params
from nin_search.spec import ArchSpec, SpecError


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
    arch = TrialRecord.from_trial(trial).arch
    if arch is not None:
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
    return [
        BestStageRow(index, *stage) for index, stage in enumerate(stages_from_params(trial.params))
    ]


def stage_kind(trial: FrozenTrial, stage: int) -> str | None:
    """``"plain"`` or ``"mlp"`` at ``stage``, or ``None`` when the trial has no such stage."""
    rows = trial_stages(trial)
    return rows[stage].kind if 0 <= stage < len(rows) else None


def final_value(trial: FrozenTrial) -> float | None:
    """The first objective of a trial with a finite one (completed trials), else ``None``."""
    return TrialRecord.from_trial(trial).accuracy


def finite_steps(trial: FrozenTrial) -> set[int]:
    """The epochs at which the trial reported a finite intermediate value."""
    return {step for step, value in trial.intermediate_values.items() if math.isfinite(value)}
