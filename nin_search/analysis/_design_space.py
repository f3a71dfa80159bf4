"""The design-space verdict: plain vs MLP conv on randomly sampled trials, at equal epochs and
equal complexity (Radosavovic et al. 2019), per stage; the naive comparison for contrast."""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nin_search.analysis._defaults import CONFIDENCE, POINTS_RANGE
from nin_search.analysis._format import verdict_text
from nin_search.analysis._regime import RegimeEffect, get_regime_effects, regime_text
from nin_search.analysis._stats import (
    AdjustedDifference,
    NormalisedDifference,
    check_confidence,
    normalised_difference,
    size_adjusted_difference,
    weighted_edf,
)
from nin_search.analysis._trials import final_value, finite_steps, trial_stages
from nin_search.records import RANDOM, TrialRecord
from nin_search.vocabulary import MLP, PLAIN


class EdfCurve(NamedTuple):
    """One kind's complexity-normalised error EDF: share of weight with error <= x.

    ``errors`` are validation errors in percent (100 - accuracy), sorted; ``cumulative_share``
    rises to 1.
    """

    kind: str
    errors: list[float]
    cumulative_share: list[float]


class DesignSpaceEffect(NamedTuple):
    """MLP minus plain conv at one stage, from randomly sampled trials only.

    Accuracies are in points (percent). ``epoch`` is the largest epoch every included trial
    (completed or pruned) reported a finite validation accuracy at; ``None`` when the trials
    report no epochs and their final values are used. ``difference``/``interval`` are the
    complexity-normalised difference and its t-interval; ``n_plain``/``n_mlp`` count
    the trials in the complexity bins both kinds fill (``bins_used``); ``trials_dropped``
    count those in the ``bins_dropped`` bins only one kind fills. ``unweighted_difference``
    is the plain difference of means of the same random trials at the same epoch;
    ``naive_difference`` that of every completed trial's final value, whatever sampled it
    (confounded by the sampler and by parameter count). ``n_random_plain``/``n_random_mlp``
    count the random trials of each kind at the stage, ``n_unknown_origin`` trials with no
    recorded ``sampled_by``. ``n_left_out_plain``/``n_left_out_mlp`` count random trials with
    no accuracy at that epoch (diverged, or stopped, before reporting one): left out, they could
    flatter the kind that loses more of them. ``standard_error`` is the difference's;
    ``size_ratio`` the MLP models' weighted parameter count over the plain ones' (1.0: equal).
    ``adjusted`` is the same comparison adjusted for size by regression instead of bins
    (:func:`~nin_search.analysis._stats.size_adjusted_difference`), on the same random trials
    at the same epoch; ``None`` when it cannot be fitted.
    """

    stage: int
    epoch: int | None
    difference: float | None
    interval: tuple[float, float] | None
    confidence: float
    ks_statistic: float | None
    n_plain: int
    n_mlp: int
    bins_used: int
    bins_dropped: int
    trials_dropped: int
    unweighted_difference: float | None
    naive_difference: float | None
    naive_n_plain: int
    naive_n_mlp: int
    n_random_plain: int
    n_random_mlp: int
    n_unknown_origin: int
    curves: list[EdfCurve]
    regimes: list[RegimeEffect]
    regime: str
    verdict: str
    standard_error: float | None = None
    size_ratio: float | None = None
    n_left_out_plain: int = 0
    n_left_out_mlp: int = 0
    adjusted: AdjustedDifference | None = None
    p_value: float | None = None  # of the binned difference, with its interval's dof


def _finished(study: optuna.Study) -> list[FrozenTrial]:
    states = (TrialState.COMPLETE, TrialState.PRUNED)
    return [
        trial
        for trial in study.get_trials(deepcopy=False, states=states)
        if TrialRecord.from_trial(trial).feasible
    ]


def _values_at_equal_epoch(
    trials: list[FrozenTrial],
) -> tuple[int | None, list[tuple[FrozenTrial, float]]]:
    """The common epoch and each trial's accuracy there (final values when none reports)."""
    reporting = [trial for trial in trials if finite_steps(trial)]
    if not reporting:
        finals = [(trial, final_value(trial)) for trial in trials]
        return None, [(trial, value) for trial, value in finals if value is not None]
    common = set.intersection(*(finite_steps(trial) for trial in reporting))
    if not common:
        return None, []
    epoch = max(common)
    return epoch, [(trial, float(trial.intermediate_values[epoch])) for trial in reporting]


def _mean_difference(plain: list[float], mlp: list[float]) -> float | None:
    if not plain or not mlp:
        return None
    return float(np.mean(mlp) - np.mean(plain))


def get_design_space_info(
    study: optuna.Study,
    *,
    confidence: float = CONFIDENCE,
) -> list[DesignSpaceEffect]:
    """Plain vs MLP conv per stage on the randomly sampled trials, complexity-normalised.

    Only trials with user attr ``sampled_by == "random"`` enter the verdict: their kinds are
    independent of everything else the sampler chose. They are compared at equal epochs, and
    weighted so both kinds have the pooled distribution of log parameter count (quantile bins,
    weight = pooled bin share / count of the kind in the bin; bins one kind misses are
    dropped). Trials that stopped on a cost limit or lack ``params`` are left out.

    Args:
        study: A study whose first value is a validation accuracy in [0, 1].
        confidence: Coverage of the intervals, in (0, 1).

    Returns:
        One effect per stage index seen in finished trials, in stage order.
    """
    check_confidence(confidence)
    by_stage: dict[int, list[tuple[FrozenTrial, str]]] = defaultdict(list)
    for trial in _finished(study):
        for row in trial_stages(trial):
            by_stage[row.stage].append((trial, row.kind))
    return [
        _stage_effect(stage, by_stage[stage], confidence=confidence) for stage in sorted(by_stage)
    ]


def _naive_values(stage_trials: list[tuple[FrozenTrial, str]]) -> dict[str, list[float]]:
    """Every completed trial's final accuracy (points) by kind, whatever sampled it."""
    naive: dict[str, list[float]] = {PLAIN: [], MLP: []}
    for trial, kind in stage_trials:
        value = final_value(trial) if trial.state == TrialState.COMPLETE else None
        if value is not None:
            naive[kind].append(value * 100)
    return naive


def _random_trials(stage_trials: list[tuple[FrozenTrial, str]]) -> list[FrozenTrial]:
    """The randomly sampled trials with a recorded parameter count."""
    chosen = []
    for trial, _ in stage_trials:
        record = TrialRecord.from_trial(trial)
        if record.sampled_by == RANDOM and (record.param_count or 0) > 0:
            chosen.append(trial)
    return chosen


def _edf_curves(result: NormalisedDifference) -> list[EdfCurve]:
    """The complexity-normalised error EDF of each kind that has values."""
    return [
        EdfCurve(kind, *weighted_edf(100.0 - np.asarray(values), np.asarray(weights)))
        for kind, values, weights in (
            (PLAIN, result.plain_values, result.plain_weights),
            (MLP, result.mlp_values, result.mlp_weights),
        )
        if values
    ]


def _stage_effect(
    stage: int,
    stage_trials: list[tuple[FrozenTrial, str]],
    *,
    confidence: float,
) -> DesignSpaceEffect:
    """The design-space effect at ``stage`` from its finished trials and their kinds there."""
    kinds = {trial.number: kind for trial, kind in stage_trials}
    naive = _naive_values(stage_trials)
    random_trials = _random_trials(stage_trials)
    epoch, values = _values_at_equal_epoch(random_trials)
    accuracies = [value * 100 for _, value in values]
    params = [float(TrialRecord.from_trial(trial).param_count) for trial, _ in values]
    is_mlp = [kinds[trial.number] == MLP for trial, _ in values]
    result = normalised_difference(
        accuracies, params, is_mlp, confidence=confidence, bounds=POINTS_RANGE
    )
    compared = {trial.number for trial, _ in values}
    left_out = [kinds[trial.number] for trial in random_trials if trial.number not in compared]
    regimes = get_regime_effects(accuracies, params, is_mlp, confidence=confidence)
    count = f"plain n={result.n_plain}, mlp n={result.n_mlp}"
    return DesignSpaceEffect(
        stage=stage,
        epoch=epoch,
        difference=result.difference,
        interval=result.interval,
        confidence=confidence,
        ks_statistic=result.ks_statistic,
        n_plain=result.n_plain,
        n_mlp=result.n_mlp,
        bins_used=result.bins_used,
        bins_dropped=result.bins_dropped,
        trials_dropped=result.trials_dropped,
        unweighted_difference=_mean_difference(
            [value for value, mlp in zip(accuracies, is_mlp, strict=True) if not mlp],
            [value for value, mlp in zip(accuracies, is_mlp, strict=True) if mlp],
        ),
        naive_difference=_mean_difference(naive[PLAIN], naive[MLP]),
        naive_n_plain=len(naive[PLAIN]),
        naive_n_mlp=len(naive[MLP]),
        n_random_plain=sum(kinds[trial.number] == PLAIN for trial in random_trials),
        n_random_mlp=sum(kinds[trial.number] == MLP for trial in random_trials),
        n_unknown_origin=sum(
            TrialRecord.from_trial(trial).sampled_by is None for trial, _ in stage_trials
        ),
        curves=_edf_curves(result),
        regimes=regimes,
        regime=regime_text(regimes),
        verdict=verdict_text(result.difference, result.interval, confidence, count),
        standard_error=result.standard_error,
        size_ratio=result.size_ratio,
        n_left_out_plain=left_out.count(PLAIN),
        n_left_out_mlp=left_out.count(MLP),
        p_value=result.p_value,
        adjusted=size_adjusted_difference(
            accuracies, params, is_mlp, confidence=confidence, bounds=POINTS_RANGE
        ),
    )
