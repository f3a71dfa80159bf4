"""Trial queries: finished, best, baseline, feasible, picked by number, curves and costs; and
what a study was created with (its config and search space).

Plain reads of a study; nothing here writes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nin_search.compat import pareto_front, study_system_attrs
from nin_search.config import StudyConfig
from nin_search.errors import UserError
from nin_search.pruning import CurvePoint
from nin_search.records import (
    ARCH,
    BASELINE,
    CONFIG,
    SPACE_FINGERPRINT,
    TrialRecord,
    system_attr_key,
)
from nin_search.vocabulary import ACCURACY

__all__ = [
    "FINISHED_STATES",
    "baseline_trials",
    "best_trials",
    "curve_points",
    "directions_of",
    "epochs_reached",
    "finished_trials",
    "is_feasible",
    "is_searched",
    "objective_names",
    "pick_trial",
    "recorded_config",
    "recorded_space",
    "recorded_study_config",
    "state_counts",
    "states_text",
    "validation_accuracy",
]

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


def directions_of(objectives: list[str]) -> list[str]:
    """Accuracy is maximised, every cost minimised."""
    return ["maximize" if name == ACCURACY else "minimize" for name in objectives]


def epochs_reached(trial: FrozenTrial) -> int:
    """The last epoch the trial reported (0 before its first): what "N epochs" means in every
    output. A retry re-reports the epochs its checkpoint covers, so this counts them too."""
    return max(trial.intermediate_values, default=0)


def validation_accuracy(trial: FrozenTrial) -> tuple[float | None, bool]:
    """(validation accuracy, whether it is the trial's final one), as every command shows it.

    A completed trial's objective value, unless it broke a cost limit (then it never trained
    and its value 0.0 is a placeholder: ``None``); a pruned or running trial's last reported
    epoch (Optuna records no value for a pruned trial with several objectives); nothing for a
    failed or waiting trial."""
    if trial.state == TrialState.COMPLETE:
        record = TrialRecord.from_trial(trial)
        if not record.feasible:
            return None, False
        return record.accuracy, record.accuracy is not None
    if trial.state in (TrialState.PRUNED, TrialState.RUNNING) and trial.intermediate_values:
        last = trial.intermediate_values[max(trial.intermediate_values)]
        return (float(last) if math.isfinite(last) else None), False
    return None, False


def is_feasible(trial: FrozenTrial) -> bool:
    """No cost limit (``cost.max_*``) broken."""
    return TrialRecord.from_trial(trial).feasible


def objective_names(study: optuna.Study) -> list[str]:
    """The study's objectives: Optuna's metric names when set, else the ``objectives`` of the
    config ``optimize`` recorded, else ``accuracy`` then ``objective 2``, ``objective 3``..."""
    count = len(study.directions)
    if study.metric_names is not None and len(study.metric_names) == count:
        return list(study.metric_names)
    recorded = (recorded_config(study) or {}).get("study", {}).get("objectives")
    if isinstance(recorded, list) and len(recorded) == count:
        return [str(name) for name in recorded]
    return [ACCURACY, *(f"objective {index}" for index in range(2, count + 1))]


def is_searched(trial: FrozenTrial) -> bool:
    """A trial nin-search built a network for (it records its architecture); a trial added to
    the study from plain Optuna is not one."""
    return ARCH in trial.user_attrs


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The best feasible trial nin-search trained, or the Pareto front (most accurate first)
    when the study has several objectives. Empty when nothing has completed."""
    candidates = [
        trial
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if is_feasible(trial) and is_searched(trial)
    ]
    if not candidates:
        return []
    if len(study.directions) == 1:  # the first of the best, as Optuna's best_trial
        sign = 1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1.0
        return [max(candidates, key=lambda trial: (sign * trial.values[0], -trial.number))]
    front = pareto_front(candidates, study.directions)  # a plain-Optuna trial dominates none
    return sorted(front, key=lambda t: (-t.values[0], t.number))


def state_counts(trials: Iterable[FrozenTrial]) -> dict[TrialState, int]:
    """How many of ``trials`` are in each of Optuna's states (every state, 0 included)."""
    counts = dict.fromkeys(TrialState, 0)
    for trial in trials:
        counts[trial.state] += 1
    return counts


def states_text(trials: Iterable[FrozenTrial]) -> str:
    """``"17 complete (2 of them over a cost limit, never trained), 11 pruned"``: the states
    that occur, Optuna's order, with the completed trials a cost limit stopped called out."""
    trials = list(trials)
    counts = state_counts(trials)
    over = sum(trial.state == TrialState.COMPLETE and not is_feasible(trial) for trial in trials)
    parts = []
    for state, count in counts.items():
        if count:
            part = f"{count} {state.name.lower()}"
            if state == TrialState.COMPLETE and over:
                part += f" ({over} of them over a cost limit, never trained)"
            parts.append(part)
    return ", ".join(parts) or "no trials yet"


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Completed and pruned trials (what ``--n-trials`` counts)."""
    return study.get_trials(deepcopy=False, states=FINISHED_STATES)


def curve_points(study: optuna.Study, cost_names: Iterable[str]) -> list[CurvePoint]:
    """The finished trials as :class:`~nin_search.pruning.DominatedPruner` compares them: each
    one's costs (user attrs ``cost_names``; a missing one reads as infinite, so that trial never
    counts as cheaper) and its curve (intermediate values by step)."""
    names = list(cost_names)
    return [
        CurvePoint(
            trial.number,
            {name: trial.user_attrs.get(name, math.inf) for name in names},
            trial.intermediate_values,
        )
        for trial in study.get_trials(deepcopy=False, states=FINISHED_STATES)
    ]


def baseline_trials(study: optuna.Study) -> dict[str, FrozenTrial]:
    """The study's reference trials by kind (``"nin"``, ``"plain"``), where they exist."""
    found: dict[str, FrozenTrial] = {}
    for trial in study.get_trials(deepcopy=False):
        kind = trial.user_attrs.get(BASELINE)
        if kind and kind not in found:
            found[kind] = trial
    return found


def pick_trial(study: optuna.Study, number: int | None) -> FrozenTrial:
    """Trial ``number``, or the best completed trial when ``number`` is None (with several
    objectives: the most accurate trial of the Pareto front).

    Raises:
        UserError: When the study has no completed trial, or ``number`` is not a trial of it.
    """
    trials = study.get_trials(deepcopy=False)
    if number is None:
        best = best_trials(study)
        if not best:
            raise UserError(
                f"study {study.study_name!r} has no completed trial within its limits yet; run "
                "`nin-search optimize` until one completes, or pass --trial N"
            )
        return best[0]
    if not 0 <= number < len(trials):
        raise UserError(
            f"trial {number} is out of range: study {study.study_name!r} has trials "
            f"0..{len(trials) - 1}; see `nin-search best`"
        )
    trial = trials[number]
    if not is_searched(trial):
        raise UserError(
            f"trial {number} has no nin-search architecture (added from plain Optuna, or "
            f"{trial.state.name.lower()} before its network was built); pick another --trial"
        )
    return trial


def _recorded(study: optuna.Study, name: str) -> dict[str, Any] | None:
    """A study attr nin-search records at creation (records.CREATION_SYSTEM_ATTRS): the study
    system attr, else the user attr of the same name that earlier versions wrote; ``None``
    when neither holds a mapping."""
    value = study_system_attrs(study).get(system_attr_key(name))
    if value is None:
        value = study.user_attrs.get(name)
    return dict(value) if isinstance(value, Mapping) else None


def recorded_config(study: optuna.Study) -> dict[str, Any] | None:
    """The config the study was created with (``StudyConfig.model_dump(mode="json")``), from
    a study of any nin-search version; ``None`` for a study ``optimize`` did not create.

    Every reader of the recorded config goes through here."""
    return _recorded(study, CONFIG)


def recorded_study_config(study: optuna.Study, *, command: str) -> StudyConfig:
    """:func:`recorded_config` as a :class:`StudyConfig`, for a command that needs it.

    Args:
        study: The study.
        command: The command that needs it (``"ablate"``), named in the error.

    Raises:
        UserError: When ``optimize`` did not create the study (the plugin API, plain Optuna).
    """
    recorded = recorded_config(study)
    if recorded is None:
        raise UserError(
            f"study {study.study_name!r} was not created by nin-search optimize (no config "
            f"attrs); {command} works on studies written by `nin-search optimize`"
        )
    return StudyConfig.model_validate(recorded)


def recorded_space(study: optuna.Study) -> dict[str, Any] | None:
    """The fingerprint of the search space the study was created with
    (``StudyConfig.space_fingerprint()``), or ``None`` when none was recorded."""
    return _recorded(study, SPACE_FINGERPRINT)
