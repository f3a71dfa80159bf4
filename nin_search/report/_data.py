"""Figure data: MLP depth and width effects, cost vs accuracy with Pareto fronts, best trial,
and a multi-objective study's objectives and Pareto front."""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import create_trial

from nin_search.compat import pareto_front
from nin_search.records import LATENCY_MS, MACS, PARAMS, TrialRecord
from nin_search.report._trials import BestStageRow, completed_trials, trial_stages
from nin_search.trials import best_trials, objective_names


class AccuracyGroup(NamedTuple):
    """Completed-trial accuracies that share one value (an MLP depth or a 1x1 width)."""

    value: int
    count: int
    mean: float
    accuracies: list[float]


class MlpDepthInfo(NamedTuple):
    """Accuracy by number of 1x1 layers at one stage (depth 0 is a plain stage)."""

    stage: int
    groups: list[AccuracyGroup]


class MlpWidthInfo(NamedTuple):
    """Accuracy by width of one 1x1 layer (``layer`` counts from 1) of one stage's MLP convs."""

    stage: int
    layer: int
    groups: list[AccuracyGroup]


class CostPoint(NamedTuple):
    """One completed trial: accuracy and cost (``None`` where the user attr is missing)."""

    number: int
    accuracy: float
    params: int | None
    macs: int | None
    baseline: str | None
    arch_summary: str | None
    latency_ms: float | None = None


class CostInfo(NamedTuple):
    """Completed trials plus the Pareto fronts (max accuracy, min cost), by trial number.

    Front numbers are sorted by increasing cost; ``latency_front`` is empty when no trial
    recorded its latency (only a study with a latency objective or limit measures it).
    """

    points: list[CostPoint]
    params_front: list[int]
    macs_front: list[int]
    latency_front: list[int]


class FrontTrial(NamedTuple):
    """One trial of a multi-objective study's Pareto front: its value for each objective."""

    number: int
    values: list[float]
    params: int | None
    arch_summary: str | None


class ObjectivesInfo(NamedTuple):
    """A study's objectives (names and ``"maximize"``/``"minimize"``) and its Pareto front,
    most accurate first (:func:`nin_search.trials.best_trials`)."""

    names: list[str]
    directions: list[str]
    front: list[FrontTrial]


class BestArchitecture(NamedTuple):
    """The best trial's stages, cost and accuracy."""

    number: int
    accuracy: float
    params: int | None
    macs: int | None
    arch_summary: str | None
    rows: list[BestStageRow]


def _groups(values_by_key: dict[int, list[float]]) -> list[AccuracyGroup]:
    return [
        AccuracyGroup(key, len(values), float(np.mean(values)), values)
        for key, values in sorted(values_by_key.items())
    ]


def get_mlp_depth_info(study: optuna.Study) -> list[MlpDepthInfo]:
    """Completed-trial accuracy by number of 1x1 layers (0 = plain), per stage.

    Args:
        study: The study.

    Returns:
        One entry per stage index, in order; groups sorted by depth.
    """
    by_stage: dict[int, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for trial in completed_trials(study):
        for row in trial_stages(trial):
            by_stage[row.stage][len(row.mlp_widths)].append(float(trial.values[0]))
    return [MlpDepthInfo(stage, _groups(by_stage[stage])) for stage in sorted(by_stage)]


def get_mlp_width_info(study: optuna.Study) -> list[MlpWidthInfo]:
    """Completed-trial accuracy by the width of each 1x1 layer of MLP stages.

    A trial counts once per (stage, layer) it has, grouped by that layer's width, which mirrors
    the ``s{stage}_mlp{layer}_width`` parameters.

    Args:
        study: The study.

    Returns:
        One entry per (stage, layer) seen, sorted; groups sorted by width.
    """
    by_layer: dict[tuple[int, int], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for trial in completed_trials(study):
        for row in trial_stages(trial):
            for layer, width in enumerate(row.mlp_widths, start=1):
                if width is not None:
                    by_layer[row.stage, layer][width].append(float(trial.values[0]))
    return [
        MlpWidthInfo(stage, layer, _groups(by_layer[stage, layer]))
        for stage, layer in sorted(by_layer)
    ]


def _pareto_front(points: list[CostPoint], cost: str) -> list[int]:
    """Numbers of the points no other point beats (accuracy >=, cost <=, one strictly), by
    Optuna's own rule (``compat.pareto_front``) on accuracy and this cost; cheapest first."""
    costed = [point for point in points if getattr(point, cost) is not None]
    trials = [
        create_trial(values=[point.accuracy, float(getattr(point, cost))]) for point in costed
    ]
    directions = [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    on_front = {id(trial) for trial in pareto_front(trials, directions)}
    front = [point for point, trial in zip(costed, trials, strict=True) if id(trial) in on_front]
    front.sort(key=lambda point: (getattr(point, cost), -point.accuracy, point.number))
    return [point.number for point in front]


def get_cost_info(study: optuna.Study) -> CostInfo:
    """Accuracy against parameter count and MACs for completed trials, with Pareto fronts.

    Args:
        study: The study; ``params``, ``macs`` and ``baseline`` come from user attrs.

    Returns:
        Points in trial-number order and the fronts of (max accuracy, min params) and
        (max accuracy, min MACs); a trial missing a cost is left out of that front.
    """
    points = []
    for trial in completed_trials(study):
        record = TrialRecord.from_trial(trial)
        points.append(
            CostPoint(
                number=trial.number,
                accuracy=float(trial.values[0]),
                params=record.param_count,
                macs=record.macs,
                baseline=record.baseline,
                arch_summary=record.arch_summary,
                latency_ms=record.latency_ms,
            )
        )
    points.sort(key=lambda point: point.number)
    return CostInfo(
        points,
        _pareto_front(points, PARAMS),
        _pareto_front(points, MACS),
        _pareto_front(points, LATENCY_MS),
    )


def get_objectives_info(study: optuna.Study) -> ObjectivesInfo | None:
    """The objectives and the Pareto front of a study with several objectives.

    Args:
        study: The study.

    Returns:
        ``None`` for a study with one objective; otherwise the objectives and the front (empty
        when nothing has completed).
    """
    if len(study.directions) == 1:
        return None
    front = [
        FrontTrial(
            number=trial.number,
            values=[float(value) for value in trial.values],
            params=TrialRecord.from_trial(trial).param_count,
            arch_summary=TrialRecord.from_trial(trial).arch_summary,
        )
        for trial in best_trials(study)
    ]
    directions = [direction.name.lower() for direction in study.directions]
    return ObjectivesInfo(objective_names(study), directions, front)


def get_best_architecture_table(study: optuna.Study) -> BestArchitecture | None:
    """The stages of the study's best trial, with its cost and accuracy.

    Args:
        study: A study; with several objectives, the front's most accurate trial.

    Returns:
        The best architecture, or ``None`` when no trial has completed.
    """
    front = best_trials(study)
    if not front:
        return None
    best = front[0]
    record = TrialRecord.from_trial(best)
    return BestArchitecture(
        number=best.number,
        accuracy=float(best.values[0]),
        params=record.param_count,
        macs=record.macs,
        arch_summary=record.arch_summary,
        rows=trial_stages(best),
    )
