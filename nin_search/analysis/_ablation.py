"""Paired ablations: the same network with one stage's kind changed, trained on the same seeds.

The trials live in the companion study :func:`nin_search.records.ablation_study_name`. Every
difference is accuracy(MLP conv at the stage) minus accuracy(plain conv at the stage), in points,
whichever side the original network had; each trial's ``arch`` says which side is which.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import NamedTuple

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from nin_search import records
from nin_search.analysis._defaults import CONFIDENCE, TIED_POINTS
from nin_search.analysis._format import direction, verdict_text
from nin_search.analysis._stats import check_confidence, t_interval, t_p_value
from nin_search.analysis._trials import final_value, stage_kind
from nin_search.compat import storage_of
from nin_search.records import TrialRecord
from nin_search.vocabulary import MLP, PLAIN

ORIGINAL, FLIPPED, MATCHED = records.VARIANTS

# (source trial, stage, variant) -> seed index -> the latest completed trial of that run.
_Runs = dict[tuple[int, int, str], dict[int, FrozenTrial]]


class PairedEffect(NamedTuple):
    """One stage of one source trial: MLP minus plain conv over paired seeds (points).

    ``differences`` are in ``seeds`` order; ``sd`` (sample standard deviation) and ``interval``
    (t-interval) are ``None`` below two seeds. ``mlp_params``/``plain_params`` are the parameter
    counts of the two networks compared (``None`` when not recorded); ``original_kind`` is the
    source network's kind at the stage.
    """

    source: int
    stage: int
    variant: str
    original_kind: str
    seeds: list[int]
    differences: list[float]
    n: int
    mean: float | None
    sd: float | None
    interval: tuple[float, float] | None
    confidence: float
    mlp_params: int | None
    plain_params: int | None
    verdict: str
    p_value: float | None = None  # paired t-test of "no difference"; None without an interval


class StageAblation(NamedTuple):
    """The flipped and matched effects of one (source trial, stage), read together.

    ``original_accuracy`` is the original network's mean accuracy over seeds (points).
    """

    source: int
    stage: int
    original_accuracy: float | None
    flipped: PairedEffect | None
    matched: PairedEffect | None
    reading: str
    matched_is_flipped: bool = False  # the flipped network already has the original's params

    def distinct_effects(self) -> list[PairedEffect]:
        """The flipped and matched effects there are, each comparison once: the matched one is
        left out when it is the flipped network."""
        chosen = [self.flipped, None if self.matched_is_flipped else self.matched]
        return [effect for effect in chosen if effect is not None]


# (flipped direction, matched direction) -> what the two say together.
_READINGS = {
    ("helps", "helps"): "the structure helps at equal parameters",
    ("helps", "none"): "the gain comes with its extra parameters (none detected at equal ones)",
    ("helps", "hurts"): "the gain comes with its extra parameters (it hurts at equal ones)",
    ("none", "helps"): "the structure helps at equal parameters, though flipping alone showed none",
    ("none", "none"): "no effect detected, with or without equal parameters",
    ("none", "hurts"): "the structure hurts at equal parameters, though flipping alone showed none",
    ("hurts", "helps"): "MLP conv hurts as a change of kind but helps at equal parameters",
    ("hurts", "none"): "the loss comes with its change in parameters (none detected at equal ones)",
    ("hurts", "hurts"): "the structure hurts at equal parameters",
}


def find_ablation_study(study: optuna.Study) -> optuna.Study | None:
    """The companion ablation study of ``study`` in the same storage, or ``None``."""
    try:
        return optuna.load_study(
            study_name=records.ablation_study_name(study.study_name), storage=storage_of(study)
        )
    except KeyError:
        return None


def _matched_is_flipped(runs: _Runs, source: int, stage: int) -> bool:
    """Whether the flipped network is also the matched one: ablate marks its flipped runs so
    (``ablation_also_matched``) and trains no matched runs when the matched network would be
    the flipped one; older studies trained the same network twice, under both names."""
    flipped = runs.get((source, stage, FLIPPED), {})
    matched = runs.get((source, stage, MATCHED), {})
    if not flipped:
        return False
    flipped_record = TrialRecord.from_trial(next(iter(flipped.values())))
    if not matched:
        return bool(flipped_record.ablation_also_matched)
    matched_record = TrialRecord.from_trial(next(iter(matched.values())))
    same = (matched_record.arch, matched_record.param_count)
    return same == (flipped_record.arch, flipped_record.param_count)


def _reading(flipped: PairedEffect | None, matched: PairedEffect | None) -> str:
    if flipped is None and matched is None:
        return "no paired seeds yet"
    if matched is None:
        return "no matched variant yet: cannot tell the structure from its parameters"
    if flipped is None:
        return "no flipped variant yet: only the matched comparison"
    if flipped.interval is None or matched.interval is None:
        without = flipped if flipped.interval is None else matched
        if without.n == 1:
            return "unsure: one seed gives no interval"
        return "unsure: every seed gave the same difference, so there is no interval"
    return _READINGS[direction(flipped.interval), direction(matched.interval)]


def _paired_effect(
    source: int,
    stage: int,
    variant: str,
    originals: dict[int, FrozenTrial],
    variants: dict[int, FrozenTrial],
    confidence: float,
) -> PairedEffect | None:
    seeds, differences, params = [], [], None
    for seed in sorted(originals.keys() & variants.keys()):
        original, changed = originals[seed], variants[seed]
        kinds = (stage_kind(original, stage), stage_kind(changed, stage))
        if sorted(kinds, key=str) != [MLP, PLAIN]:
            continue  # the pair does not differ in kind at this stage: not this comparison
        mlp, plain = (original, changed) if kinds[0] == MLP else (changed, original)
        seeds.append(seed)
        differences.append((final_value(mlp) - final_value(plain)) * 100)
        if params is None:
            params = tuple(TrialRecord.from_trial(trial).param_count for trial in (mlp, plain))
    if not seeds:
        return None
    mean = float(np.mean(differences))
    count = f"n={len(seeds)} seed" + ("" if len(seeds) == 1 else "s")
    # The same difference on every seed (a saturated validation split: one image apart each
    # time) has no spread to measure: its t-interval would have zero width (or one of float
    # rounding, 285/288 - 284/288 and 284/288 - 283/288 differ in the last digit) and claim a
    # certainty the seeds lack.
    tied = len(seeds) > 1 and float(np.ptp(differences)) <= TIED_POINTS
    sd = None if len(seeds) < 2 else 0.0 if tied else float(np.std(differences, ddof=1))
    interval = None if tied else t_interval(differences, confidence)
    if tied:
        count += ", the same difference on every seed"
    return PairedEffect(
        source=source,
        stage=stage,
        variant=variant,
        original_kind=stage_kind(originals[seeds[0]], stage),
        seeds=seeds,
        differences=differences,
        n=len(seeds),
        mean=mean,
        sd=sd,
        interval=interval,
        confidence=confidence,
        mlp_params=None if params[0] is None else int(params[0]),
        plain_params=None if params[1] is None else int(params[1]),
        verdict=verdict_text(mean, interval, confidence, count),
        p_value=None if interval is None or not sd else _paired_p_value(mean, sd, len(seeds)),
    )


def _paired_p_value(mean: float, sd: float, n: int) -> float:
    """The paired t-test's two-sided p-value of "no difference" (``n - 1`` df)."""
    return t_p_value(mean, sd / math.sqrt(n), n - 1)


def _get_runs(ablation_study: optuna.Study) -> _Runs:
    """The completed ablation trials with a finite value and a full key, by run and seed."""
    runs: _Runs = defaultdict(dict)
    trials = ablation_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    for trial in sorted(trials, key=lambda trial: trial.number):
        record = TrialRecord.from_trial(trial)
        variant = record.ablation_variant
        if variant not in records.VARIANTS or record.accuracy is None:
            continue
        source, stage, seed = record.ablation_source, record.ablation_stage, record.ablation_seed
        if source is None or stage is None or seed is None:
            continue
        if seed == records.REPLAYED_SEED_INDEX:  # an older study's replay of the searched run
            continue
        stage = records.ORIGINAL_STAGE if variant == ORIGINAL else stage
        runs[source, stage, variant][seed] = trial
    return runs


def get_ablation_info(
    ablation_study: optuna.Study, *, confidence: float = CONFIDENCE
) -> list[StageAblation]:
    """The paired flipped and matched effects of every ablated (source trial, stage).

    Completed trials with a finite value count; for a repeated (source, stage, variant, seed),
    the latest trial wins. A seed counts for a pair only when both members have it. Seed index
    0 of older studies (the searched run replayed: selected, so biased) is left out.

    Args:
        ablation_study: The companion study (user attrs ``ablation_source``,
            ``ablation_stage``, ``ablation_variant``, ``ablation_seed``, ``arch``, ``params``).
        confidence: Coverage of the t-intervals, in (0, 1).

    Returns:
        One entry per (stage, source) with a flipped or matched variant, sorted by stage then
        source.
    """
    check_confidence(confidence)
    runs = _get_runs(ablation_study)
    results = []
    changed = sorted({(stage, source) for source, stage, variant in runs if variant != ORIGINAL})
    for stage, source in changed:
        originals = runs.get((source, records.ORIGINAL_STAGE, ORIGINAL), {})
        effects = {
            variant: _paired_effect(
                source,
                stage,
                variant,
                originals,
                runs.get((source, stage, variant), {}),
                confidence,
            )
            for variant in (FLIPPED, MATCHED)
        }
        accuracies = [final_value(trial) * 100 for trial in originals.values()]
        same = _matched_is_flipped(runs, source, stage)
        if same:
            effects[MATCHED] = effects[FLIPPED]
        results.append(
            StageAblation(
                source=source,
                stage=stage,
                original_accuracy=float(np.mean(accuracies)) if accuracies else None,
                flipped=effects[FLIPPED],
                matched=effects[MATCHED],
                reading=_reading(effects[FLIPPED], effects[MATCHED]),
                matched_is_flipped=same,
            )
        )
    return results
