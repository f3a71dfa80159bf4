"""One answer in words: per stage, what the ablation, the design space and the sizes say."""

from __future__ import annotations

from typing import NamedTuple

import optuna

from nin_search.analysis._ablation import PairedEffect, StageAblation, get_ablation_info
from nin_search.analysis._defaults import CONFIDENCE, SIZE_RATIO_TOLERANCE, SMALLEST_EFFECT
from nin_search.analysis._design_space import DesignSpaceEffect, get_design_space_info
from nin_search.analysis._format import (
    effect_text,
    params_text,
    percent_label,
    plural,
    signed,
    verdict_text,
)
from nin_search.analysis._regime import RegimeEffect, size_label
from nin_search.analysis._settle import (
    ABLATE,
    ablation_settle_text,
    random_trials_to_settle,
)
from nin_search.analysis._stats import AdjustedDifference, holm_rejections
from nin_search.trials import FINISHED_STATES, recorded_config
from nin_search.vocabulary import PARAM_TOLERANCE

# What the answer says about an ablation it cannot run: the study was not made by optimize.
NO_ABLATE = (
    f"`{ABLATE}` needs a study that `nin-search optimize` created (this one records no study "
    "config); ablate the winner in your own objective"
)


class StageAnswer(NamedTuple):
    """Everything known about plain vs MLP conv at one stage.

    ``ablations`` has one entry per ablated source trial (best original accuracy first);
    ``settle`` lists what would settle what is still open (empty when nothing is).
    """

    stage: int
    ablations: list[StageAblation]
    design_space: DesignSpaceEffect | None
    settle: list[str]


class Answer(NamedTuple):
    """The answer for one study; ``has_ablation_study`` is whether a companion was given."""

    study_name: str
    has_ablation_study: bool
    confidence: float
    stages: list[StageAnswer]
    finished_trials: int = 0  # completed or pruned, read or not (a plugin study's may lack attrs)


def get_answer(
    study: optuna.Study,
    ablation_study: optuna.Study | None = None,
    *,
    confidence: float = CONFIDENCE,
    smallest_effect: float = SMALLEST_EFFECT,
    where: str = "",
) -> Answer:
    """When does an MLP conv beat a plain conv in this study? Per stage, with the evidence.

    Args:
        study: The searched study.
        ablation_study: Its companion ablation study (:func:`find_ablation_study`), or
            ``None`` when there is none yet.
        confidence: Coverage of every interval, in (0, 1).
        smallest_effect: The narrowest half-width (points) "what would settle it" asks for.
        where: The study's options for the commands the answer suggests, e.g.
            ``--storage sqlite:///x.db --study-name x`` (:func:`nin_search.
            storage_messages.study_options`); empty, the commands name neither.

    Returns:
        One :class:`StageAnswer` per stage seen in the study or its ablations, in order.
    """
    if not smallest_effect > 0:
        raise ValueError(f"smallest_effect must be > 0, but got smallest_effect={smallest_effect}.")
    design = {
        effect.stage: effect for effect in get_design_space_info(study, confidence=confidence)
    }
    ablations = (
        [] if ablation_study is None else get_ablation_info(ablation_study, confidence=confidence)
    )
    command = f"{ABLATE} {where}".strip() if recorded_config(study) is not None else None
    stages = []
    for stage in sorted(design.keys() | {ablation.stage for ablation in ablations}):
        mine = sorted(
            (ablation for ablation in ablations if ablation.stage == stage),
            key=lambda ablation: (-(ablation.original_accuracy or 0.0), ablation.source),
        )
        settle = _settle_lines(
            mine,
            design.get(stage),
            has_ablation_study=ablation_study is not None,
            smallest_effect=smallest_effect,
            command=command,
        )
        stages.append(StageAnswer(stage, mine, design.get(stage), settle))
    finished = len(study.get_trials(deepcopy=False, states=FINISHED_STATES))
    return Answer(study.study_name, ablation_study is not None, confidence, stages, finished)


def _settle_lines(
    ablations: list[StageAblation],
    design: DesignSpaceEffect | None,
    *,
    has_ablation_study: bool,
    smallest_effect: float,
    command: str | None,
) -> list[str]:
    """What would settle one stage's open questions: more ablation seeds (``command``: the
    ablate command line; ``None`` when ``ablate`` cannot run the study), more random trials."""
    settle = []
    for ablation in ablations:
        for effect in ablation.distinct_effects():
            text = ablation_settle_text(
                effect, smallest_effect=smallest_effect, command=command or ABLATE
            )
            if text is not None:
                settle.append(f"{effect.variant} (trial #{ablation.source}): {text}")
    if not ablations:
        if command is None:
            settle.append(NO_ABLATE)
        elif has_ablation_study:
            settle.append(f"run `{command}` on this stage")
        else:
            settle.append(f"no ablation yet: run `{command}`")
    if design is not None:
        text = random_trials_to_settle(design, smallest_effect=smallest_effect)
        if text is not None:
            settle.append(text)
    return settle


def _matched_text(ablation: StageAblation) -> str:
    if ablation.matched_is_flipped:
        return (
            f"the flipped network itself (its params within {PARAM_TOLERANCE:.0%} of the "
            "original's)"
        )
    return _paired_text(ablation.matched)


def _paired_text(effect: PairedEffect | None) -> str:
    if effect is None:
        return "not run"
    sizes = (
        f"MLP {params_text(effect.mlp_params)} vs plain {params_text(effect.plain_params)} params"
    )
    return f"{effect.verdict}; {sizes}"


def _size_ratio_text(ratio: float | None) -> str:
    """How equal the weighted sizes came out: a few bins equalise them only roughly."""
    if ratio is None:
        return ""
    text = f"weighted MLP nets have {ratio:.2f}x the plain nets' params"
    if not 1 / SIZE_RATIO_TOLERANCE <= ratio <= SIZE_RATIO_TOLERANCE:
        text += " (not equal: the size bins are too coarse for these trials)"
    return text


def _adjusted_text(adjusted: AdjustedDifference, confidence: float, epoch: str) -> str:
    """The regression's answer, a check on the bins' that assumes a linear size effect."""
    count = f"plain n={adjusted.n_plain}, mlp n={adjusted.n_mlp}"
    return (
        f"size-adjusted (random trials at {epoch}, accuracy ~ kind + log params, robust "
        f"errors): {verdict_text(adjusted.difference, adjusted.interval, confidence, count)}; "
        f"{signed(adjusted.points_per_decade)} points per tenfold params"
    )


def _left_out_text(effect: DesignSpaceEffect, epoch: str) -> str:
    left_out = effect.n_left_out_plain + effect.n_left_out_mlp
    if not left_out:
        return ""
    return (
        f"; left out: {plural(left_out, 'random trial')} with no accuracy at {epoch} "
        f"(plain {effect.n_left_out_plain}, mlp {effect.n_left_out_mlp}; diverged or stopped "
        "before it), which can flatter the kind that lost more"
    )


def _regime_effect_text(regime: RegimeEffect) -> str:
    if regime.difference is None:
        return "no data"
    if regime.interval is None:
        return f"unsure: {signed(regime.difference)} points, no interval"
    return effect_text(regime.difference, regime.interval, regime.confidence)


def _design_lines(effect: DesignSpaceEffect) -> list[str]:
    epoch = "final values" if effect.epoch is None else f"epoch {effect.epoch}"
    if effect.difference is None:
        plain, mlp = effect.n_random_plain, effect.n_random_mlp
        if plain + mlp == 0:
            reason = "no random trials yet"
        elif not plain or not mlp:
            reason = f"only {'plain' if plain else 'MLP'} conv sampled here ({plain + mlp} trials)"
        else:
            reason = f"no size range holds both kinds (plain n={plain}, mlp n={mlp})"
        lines = [f"design space (random trials, weighted to equal params): {reason}"]
    else:
        bins = plural(effect.bins_used, "size bin")
        if effect.bins_dropped:
            bins += f", {effect.bins_dropped} dropped ({effect.trials_dropped} trials)"
        lines = [
            f"design space (random trials at {epoch}, weighted to equal params in {bins}): "
            f"{effect.verdict}; KS {effect.ks_statistic:.2f}; "
            f"{_size_ratio_text(effect.size_ratio)}{_left_out_text(effect, epoch)}"
        ]
        sizes = "; ".join(
            f"{size_label(regime)} {_regime_effect_text(regime)} "
            f"(plain n={regime.n_plain}, mlp n={regime.n_mlp})"
            for regime in effect.regimes
        )
        lines.append(f"by size: {effect.regime}" + (f" [{sizes}]" if sizes else ""))
    if effect.adjusted is not None:
        lines.append(_adjusted_text(effect.adjusted, effect.confidence, epoch))
    if effect.naive_difference is not None:
        lines.append(
            f"naive comparison (all completed trials, confounded by sampler and params): "
            f"{signed(effect.naive_difference)} points "
            f"(plain n={effect.naive_n_plain}, mlp n={effect.naive_n_mlp})"
        )
    return lines


def answer_lines(answer: Answer) -> list[str]:
    """The answer as a short block of lines headed "Answer" (sub-lines indented by two spaces).

    Every number comes with its interval (or says why there is none) and its n.

    Args:
        answer: From :func:`get_answer`.
    """
    lines = [
        f"Answer: does MLP conv beat plain conv in study {answer.study_name!r}? "
        f"(MLP minus plain, accuracy points, {percent_label(answer.confidence)} intervals)"
    ]
    if not answer.stages and not answer.finished_trials:
        lines.append("  no finished trials yet: run `nin-search optimize`")
    elif not answer.stages:
        lines.append(
            f"  none of its {answer.finished_trials} finished trials records its architecture: "
            "an objective of your own sets the user attrs in nin_search.REQUIRED_USER_ATTRS "
            "(README, Python API)"
        )
    for stage in answer.stages:
        lines.append(f"  stage {stage.stage}:")
        for ablation in stage.ablations:
            lines.append(
                f"    ablation of trial #{ablation.source}: flipped: "
                f"{_paired_text(ablation.flipped)}; matched: {_matched_text(ablation)} "
                f"-> {ablation.reading}"
            )
        if not stage.ablations:
            none = "none of this stage yet" if answer.has_ablation_study else "none yet"
            lines.append(f"    ablation (same seeds, one stage changed): {none}")
        if stage.design_space is not None:
            lines += [f"    {line}" for line in _design_lines(stage.design_space)]
        lines += [f"    to settle it: {text}" for text in stage.settle]
    tests = _interval_tests(answer)
    if len(tests) > 1:
        lines.append(_many_intervals_line(tests, answer.confidence))
    return lines


def _many_intervals_line(tests: list[tuple[str, float]], confidence: float) -> str:
    """How many of the answer's intervals chance alone would put off 0, and which survive
    Holm's correction for all of them (family-wise error ``1 - confidence``)."""
    count = len(tests)
    chance = count * (1.0 - confidence)
    rejected = holm_rejections([p_value for _, p_value in tests], 1.0 - confidence)
    kept = [label for (label, _), reject in zip(tests, rejected, strict=True) if reject]
    family = percent_label(1.0 - confidence)
    corrected = f"with Holm's correction for all {count} (family-wise error {family}), " + (
        f"{len(kept)} still exclude{'s' if len(kept) == 1 else ''} 0: {', '.join(kept)}"
        if kept
        else "none excludes 0"
    )
    return (
        f"  {count} intervals above, each at {percent_label(confidence)}: with no effect "
        f"anywhere, about {chance:.1f} of them would exclude 0 by chance alone; {corrected}"
    )


def _interval_tests(answer: Answer) -> list[tuple[str, float]]:
    """Each interval the answer shows, named, with its test's p-value: the chances it gives a
    false "detected"."""
    tests: list[tuple[str, float | None]] = []
    for stage in answer.stages:
        where = f"stage {stage.stage}"
        for ablation in stage.ablations:
            for effect in ablation.distinct_effects():
                if effect.interval is not None:
                    label = f"{where} {effect.variant} (trial #{ablation.source})"
                    tests.append((label, effect.p_value))
        design = stage.design_space
        if design is None:
            continue
        if design.interval is not None:
            tests.append((f"{where} design space", design.p_value))
        if design.adjusted is not None and design.adjusted.interval is not None:
            tests.append((f"{where} size-adjusted", design.adjusted.p_value))
        tests += [
            (f"{where} {regime.size} networks", regime.p_value)
            for regime in design.regimes
            if regime.interval is not None
        ]
    return [(label, p_value) for label, p_value in tests if p_value is not None]
