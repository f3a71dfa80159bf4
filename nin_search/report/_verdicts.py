"""Per-stage verdicts: does an MLP conv beat a plain conv? Welch intervals, terminal lines."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

import optuna
from optuna.trial import FrozenTrial, TrialState

from nin_search.analysis import (
    CONFIDENCE,
    MIN_TRIALS_PER_KIND,
    check_confidence,
    direction,
    effect_text,
    mean_difference_interval,
    verdict_text,
)
from nin_search.errors import check_int
from nin_search.records import TrialRecord
from nin_search.report._trials import mean, trial_stages
from nin_search.vocabulary import MLP, PLAIN


class EqualEpochComparison(NamedTuple):
    """Plain vs MLP validation accuracy at one epoch every finished trial reached.

    ``epoch`` is the largest epoch at which every completed or pruned trial of the stage (both
    types) reported a finite value, so pruned trials are compared at equal training length.
    Means are ``None`` for a type with no finished trial.
    """

    epoch: int
    plain_mean: float | None
    mlp_mean: float | None
    n_plain: int
    n_mlp: int
    n_pruned: int


class StageVerdict(NamedTuple):
    """Does an MLP conv help at one stage? Accuracies are completed trials' values.

    ``difference`` is ``mlp_mean - plain_mean``; ``confidence_interval`` is Welch's
    t-interval of that difference (``None`` when either type has fewer than ``min_trials``
    completed trials).
    """

    stage: int
    plain_accuracies: list[float]
    mlp_accuracies: list[float]
    n_plain: int
    n_mlp: int
    plain_mean: float | None
    mlp_mean: float | None
    difference: float | None
    confidence_interval: tuple[float, float] | None
    confidence: float
    min_trials: int
    verdict: str
    equal_epoch: EqualEpochComparison | None


def _equal_epoch_comparison(
    trials_by_kind: dict[str, list[FrozenTrial]],
) -> EqualEpochComparison | None:
    finished = [
        (kind, trial)
        for kind in (PLAIN, MLP)
        for trial in trials_by_kind[kind]
        if any(math.isfinite(value) for value in trial.intermediate_values.values())
    ]
    if not finished:
        return None
    common_steps = set.intersection(
        *(
            {step for step, value in trial.intermediate_values.items() if math.isfinite(value)}
            for _, trial in finished
        )
    )
    if not common_steps:
        return None
    epoch = max(common_steps)
    values: dict[str, list[float]] = {PLAIN: [], MLP: []}
    for kind, trial in finished:
        values[kind].append(trial.intermediate_values[epoch])
    return EqualEpochComparison(
        epoch=epoch,
        plain_mean=mean(values[PLAIN]),
        mlp_mean=mean(values[MLP]),
        n_plain=len(values[PLAIN]),
        n_mlp=len(values[MLP]),
        n_pruned=sum(trial.state == TrialState.PRUNED for _, trial in finished),
    )


# The short verdict (the report's table and figure) from the interval's position to 0.
_VERDICTS = {
    "helps": "MLP conv helps",
    "hurts": "MLP conv hurts",
    "none": "no effect detected",
    None: "too few trials",
}


def get_stage_verdicts(
    study: optuna.Study,
    *,
    confidence: float = CONFIDENCE,
    min_trials: int = MIN_TRIALS_PER_KIND,
) -> list[StageVerdict]:
    """Compares plain and MLP conv stage by stage.

    The verdict uses completed trials: ``"MLP conv helps"`` when Welch's t-interval of
    ``mean(mlp) - mean(plain)`` (:func:`nin_search.analysis.mean_difference_interval`) lies
    entirely above 0, ``"MLP conv hurts"`` when entirely below, ``"no effect detected"``
    otherwise, and ``"too few trials"`` when either type has fewer than ``min_trials``
    trials. Pruned trials enter only the separate :class:`EqualEpochComparison`.

    Args:
        study: A study whose value is a validation accuracy in [0, 1].
        confidence: Coverage of the interval, in (0, 1).
        min_trials: Completed trials each type needs before a verdict is given.

    Returns:
        One verdict per stage index seen in completed or pruned trials, in stage order.
    """
    check_confidence(confidence)
    check_int("min_trials", min_trials, minimum=1)
    finished = _finished_by_stage(study)
    return [
        _stage_verdict(stage, finished[stage], min_trials=min_trials, confidence=confidence)
        for stage in sorted(finished)
    ]


def _finished_by_stage(study: optuna.Study) -> dict[int, dict[str, list[FrozenTrial]]]:
    """Completed and pruned trials within the study's limits, by stage and kind there."""
    finished: dict[int, dict[str, list[FrozenTrial]]] = defaultdict(lambda: {PLAIN: [], MLP: []})
    states = (TrialState.COMPLETE, TrialState.PRUNED)
    for trial in study.get_trials(deepcopy=False, states=states):
        if not TrialRecord.from_trial(trial).feasible:
            continue  # stopped before training: says nothing about plain vs MLP conv
        for row in trial_stages(trial):
            finished[row.stage][row.kind].append(trial)
    return finished


def _completed_accuracies(trials: list[FrozenTrial]) -> list[float]:
    """The finite values of the completed ones among ``trials``."""
    accuracies = []
    for trial in trials:
        value = trial.values[0] if trial.state == TrialState.COMPLETE and trial.values else None
        if value is not None and math.isfinite(value):
            accuracies.append(float(value))
    return accuracies


def _stage_verdict(
    stage: int,
    trials_by_kind: dict[str, list[FrozenTrial]],
    *,
    confidence: float,
    min_trials: int,
) -> StageVerdict:
    plain = _completed_accuracies(trials_by_kind[PLAIN])
    mlp = _completed_accuracies(trials_by_kind[MLP])
    plain_mean, mlp_mean = mean(plain), mean(mlp)
    difference = None if plain_mean is None or mlp_mean is None else mlp_mean - plain_mean
    interval = None
    if len(plain) >= min_trials and len(mlp) >= min_trials:
        interval = mean_difference_interval(plain, mlp, confidence)
    return StageVerdict(
        stage=stage,
        plain_accuracies=plain,
        mlp_accuracies=mlp,
        n_plain=len(plain),
        n_mlp=len(mlp),
        plain_mean=plain_mean,
        mlp_mean=mlp_mean,
        difference=difference,
        confidence_interval=interval,
        confidence=confidence,
        min_trials=min_trials,
        verdict=_VERDICTS[direction(interval)],
        equal_epoch=_equal_epoch_comparison(trials_by_kind),
    )


def _points(value: float | None) -> float | None:
    return None if value is None else value * 100


def _interval_points(verdict: StageVerdict) -> tuple[float, float] | None:
    interval = verdict.confidence_interval
    return None if interval is None else (interval[0] * 100, interval[1] * 100)


def interval_text(verdict: StageVerdict) -> str:
    """``+2.1 points, 95% CI +0.8..+3.3`` (points are accuracy percentage points)."""
    if verdict.difference is None:
        return ""
    return effect_text(_points(verdict.difference), _interval_points(verdict), verdict.confidence)


def verdict_lines(verdicts: Sequence[StageVerdict]) -> list[str]:
    """One line per stage for the terminal, worded as the answer's lines are
    (:func:`nin_search.analysis.verdict_text`).

    Args:
        verdicts: From :func:`get_stage_verdicts`.

    Returns:
        Lines like ``stage 0: MLP conv helps (+2.1 points, 95% CI +0.8..+3.3, plain n=9,
        mlp n=12)``, ``stage 1: no effect detected: difference +0.2 points, 95% CI -1.0..+1.4
        (plain n=9, mlp n=12)``; with too few trials for an interval, ``unsure: difference
        ... no interval (...; an interval needs 5 of each)``.
    """
    lines = []
    for verdict in verdicts:
        count = f"plain n={verdict.n_plain}, mlp n={verdict.n_mlp}"
        if (verdict.n_plain == 0) != (verdict.n_mlp == 0):  # one kind only: nothing to compare
            only = "plain" if verdict.n_plain else "MLP"
            lines.append(f"stage {verdict.stage}: nothing to compare: only {only} conv ({count})")
            continue
        if verdict.confidence_interval is None:
            count += f"; an interval needs {verdict.min_trials} of each"
        text = verdict_text(
            _points(verdict.difference), _interval_points(verdict), verdict.confidence, count
        )
        lines.append(f"stage {verdict.stage}: {text}")
    return lines
