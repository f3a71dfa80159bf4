"""Consensus across datasets: pool each stage's flipped ablation effect over several studies.

A random-effects meta-analysis (``statsmodels.stats.meta_analysis.combine_effects``): one
effect per study (its best source trial, or the mean over its sources) with the squared
standard error of its paired mean as variance; the pooled estimate, its interval and the
heterogeneity I² say whether the studies agree. The interval uses a t quantile with
(studies - 1) degrees of freedom: with two or three studies it is wide, as it should be.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
import optuna

from nin_search import records
from nin_search.analysis._ablation import StageAblation, find_ablation_study, get_ablation_info
from nin_search.analysis._defaults import AGREEMENT_I2, CONFIDENCE, MIN_VARIANCE
from nin_search.analysis._format import effect_text, interval_range, signed
from nin_search.analysis._stats import check_confidence
from nin_search.analysis._trials import final_value

SOURCES = ("best", "mean")
METHODS = ("pm", "dl")


class StudyEffect(NamedTuple):
    """One study's flipped effect at a stage (points); ``source`` is ``None`` for a mean."""

    study_name: str
    source: int | None
    difference: float
    standard_error: float
    interval: tuple[float, float] | None
    n: int


class StageConsensus(NamedTuple):
    """The studies' effects at one stage and their random-effects pooling.

    ``pooled``/``interval``/``i2`` (in [0, 1]) are ``None`` with fewer than two studies;
    ``agree`` is ``None`` then too. ``left_out`` says which studies gave nothing and why.
    """

    stage: int
    effects: list[StudyEffect]
    left_out: list[str]
    pooled: float | None
    interval: tuple[float, float] | None
    i2: float | None
    tau2: float | None
    confidence: float
    method: str
    agree: bool | None
    verdict: str


def searched_study_names(names: Iterable[str]) -> list[str]:
    """``names`` without the companion ablation studies (``<name>:ablation``)."""
    return [name for name in names if not records.is_ablation_study_name(name)]


def _study_effect(
    study: optuna.Study, ablations: list[StageAblation], sources: str
) -> StudyEffect | str:
    # An effect without an interval (one seed, or the same difference on every seed) has no
    # standard error to weight it by: pooling it would give it all the weight.
    usable = [a for a in ablations if a.flipped is not None and a.flipped.interval is not None]
    if not usable:
        return "no flipped ablation with an interval (2 or more seeds whose differences vary)"
    if sources == "mean":
        means = [a.flipped.mean for a in usable]
        variances = [a.flipped.sd**2 / a.flipped.n for a in usable]
        return StudyEffect(
            study.study_name,
            None,
            float(np.mean(means)),
            math.sqrt(sum(variances)) / len(usable),
            None,
            sum(a.flipped.n for a in usable),
        )
    values = {trial.number: final_value(trial) for trial in study.get_trials(deepcopy=False)}

    def rank(ablation: StageAblation) -> tuple[float, float]:
        searched = values.get(ablation.source)
        return (-math.inf if searched is None else searched, ablation.original_accuracy or 0.0)

    best = max(usable, key=rank).flipped
    return StudyEffect(
        study.study_name,
        best.source,
        best.mean,
        best.sd / math.sqrt(best.n),
        best.interval,
        best.n,
    )


def _pool(
    effects: list[StudyEffect], confidence: float, method: str
) -> tuple[float, tuple[float, float], float, float]:
    from statsmodels.stats.meta_analysis import combine_effects  # slow import: only when pooling

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = combine_effects(
            np.array([effect.difference for effect in effects]),
            np.array([max(effect.standard_error**2, MIN_VARIANCE) for effect in effects]),
            method_re=method,
            alpha=1.0 - confidence,
        )
        # The random-effects interval with a t quantile, (studies - 1) df. With a normal one,
        # each study's 3-seed standard error counts as known: with no effect anywhere, 12-14%
        # of simulated 2-, 3- and 5-study poolings excluded 0 at 95%; with t, 0.0-3.6%
        # (Hartung-Knapp's rescaled variant: 9-11%, it trusts those standard errors more).
        low, high = result.conf_int(alpha=1.0 - confidence, use_t=True)[1]
    degrees = len(effects) - 1
    q = float(result.q)
    i2 = max(0.0, (q - degrees) / q) if q > 0 else 0.0  # Higgins & Thompson, floored at 0
    return float(result.mean_effect_re), (float(low), float(high)), i2, max(0.0, float(result.tau2))


def get_consensus_info(
    studies: Sequence[optuna.Study],
    *,
    ablation_studies: Mapping[str, optuna.Study | None] | None = None,
    sources: str = "best",
    confidence: float = CONFIDENCE,
    method: str = "pm",
) -> list[StageConsensus]:
    """Pools each stage's flipped ablation effect over several studies (random effects).

    Args:
        studies: Searched studies, e.g. one per dataset (companion ablation studies are not
            searched studies: leave them out, see :func:`searched_study_names`).
        ablation_studies: Each study's companion by study name; by default found in each
            study's storage (:func:`find_ablation_study`).
        sources: ``"best"``: each study's most accurate ablated source trial; ``"mean"``: the
            mean over its sources.
        confidence: Coverage of the intervals, in (0, 1).
        method: Between-study variance estimator: ``"pm"`` (Paule-Mandel) or ``"dl"``
            (DerSimonian-Laird).

    Returns:
        One entry per stage ablated in any study, in stage order.
    """
    if sources not in SOURCES:
        raise ValueError(f"sources must be one of {SOURCES}, but got sources={sources!r}.")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, but got method={method!r}.")
    check_confidence(confidence)
    per_study = _ablations_per_study(studies, ablation_studies, confidence=confidence)
    stages = sorted({a.stage for ablations in per_study.values() for a in ablations})
    return [
        _stage_consensus(stage, studies, per_study, sources, confidence=confidence, method=method)
        for stage in stages
    ]


def _ablations_per_study(
    studies: Sequence[optuna.Study],
    ablation_studies: Mapping[str, optuna.Study | None] | None,
    *,
    confidence: float,
) -> dict[str, list[StageAblation]]:
    """Each study's ablation info by study name (empty without a companion study)."""
    per_study: dict[str, list[StageAblation]] = {}
    for study in studies:
        if ablation_studies is not None and study.study_name in ablation_studies:
            companion = ablation_studies[study.study_name]
        else:
            companion = find_ablation_study(study)
        per_study[study.study_name] = (
            [] if companion is None else get_ablation_info(companion, confidence=confidence)
        )
    return per_study


def _stage_consensus(
    stage: int,
    studies: Sequence[optuna.Study],
    per_study: dict[str, list[StageAblation]],
    sources: str,
    *,
    confidence: float,
    method: str,
) -> StageConsensus:
    """The pooled effect at ``stage`` of the studies that ablated it (reasons for the rest)."""
    effects, left_out = [], []
    for study in studies:
        mine = [a for a in per_study[study.study_name] if a.stage == stage]
        found = _study_effect(study, mine, sources) if mine else "no ablation of this stage"
        if isinstance(found, str):
            left_out.append(f"{study.study_name}: {found}")
        else:
            effects.append(found)
    pooled = interval = i2 = tau2 = agree = None
    if len(effects) >= 2:
        pooled, interval, i2, tau2 = _pool(effects, confidence, method)
        signs = {math.copysign(1.0, effect.difference) for effect in effects}
        nonzero = all(effect.difference != 0 for effect in effects)
        agree = i2 < AGREEMENT_I2 and len(signs) == 1 and nonzero
    verdict = _verdict(effects, pooled, interval, i2, agree, confidence)
    return StageConsensus(
        stage, effects, left_out, pooled, interval, i2, tau2, confidence, method, agree, verdict
    )


def _verdict(
    effects: list[StudyEffect],
    pooled: float | None,
    interval: tuple[float, float] | None,
    i2: float | None,
    agree: bool | None,
    confidence: float,
) -> str:
    if not effects:
        return "no study has a flipped ablation with an interval here"
    if pooled is None:
        only = effects[0]
        return f"one study only ({only.study_name}): {signed(only.difference)} points, n={only.n}"
    pooled_text = f"pooled {effect_text(pooled, interval, confidence)} ({len(effects)} studies)"
    if agree:
        return f"the studies agree (I²={i2:.0%}): {pooled_text}"
    return f"they disagree (I²={i2:.0%}): {pooled_text}"


def consensus_lines(consensus: Sequence[StageConsensus]) -> list[str]:
    """Lines for the terminal: per stage the verdict, then each study's effect.

    Args:
        consensus: From :func:`get_consensus_info`.
    """
    lines = ["Consensus across studies (flipped ablation, MLP minus plain, accuracy points):"]
    if not consensus:
        lines.append("  no study has an ablation yet: run `nin-search ablate` on each")
    for stage in consensus:
        lines.append(f"  stage {stage.stage}: {stage.verdict}")
        for effect in stage.effects:
            source = "mean of its sources" if effect.source is None else f"trial #{effect.source}"
            spread = f"±{effect.standard_error:.1f} se"
            if effect.interval is not None:
                spread = f"CI {interval_range(effect.interval)}"
            lines.append(
                f"    {effect.study_name} ({source}): {signed(effect.difference)} points, "
                f"{spread}, n={effect.n} seeds"
            )
        lines += [f"    left out: {reason}" for reason in stage.left_out]
    return lines
