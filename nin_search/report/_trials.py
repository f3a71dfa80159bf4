"""Reading trials: the stages of an architecture, completed trials."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nin_search.analysis._trials import BestStageRow as BestStageRow
from nin_search.analysis._trials import trial_stages as trial_stages
from nin_search.records import TrialRecord

NO_COMPLETED_TRIALS = "no completed trials yet"


def completed_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's completed trials with a finite value."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [
        trial
        for trial in trials
        if trial.values
        and math.isfinite(trial.values[0])
        and TrialRecord.from_trial(trial).feasible
    ]


def mean(values: Sequence[float]) -> float | None:
    """The mean of ``values``, or ``None`` when there are none."""
    return float(np.mean(values)) if len(values) else None
