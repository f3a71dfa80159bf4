"""One answer in words: per stage, what the ablation, the design space and the sizes say."""

from __future__ import annotations

from typing import NamedTuple

import optuna

from nin_search.analysis._ablation import PairedEffect, StageAblation, get_ablation_info
from nin_search.analysis._defaults import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    CONFIDENCE,
    SMALLEST_EFFECT,
)
from nin_search.analysis._design_space import DesignSpaceEffect, get_design_space_info
from nin_search.analysis._format import effect_text, params_text, percent_label, plural, signed
from nin_search.analysis._regime import size_label
from nin_search.analysis._settle import (
    ABLATE,
    ablation_settle_text,
    random_trials_to_settle,
)

RUN_ABLATE = f"no ablation yet: run `{ABLATE}`"
RUN_STAGE_ABLATE = f"run `{ABLATE}` on this stage"


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


def get_answer(
    study: optuna.Study,
    ablation_study: optuna.Study | None = None,
    *,
    confidence: float = CONFIDENCE,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    smallest_effect: float = SMALLEST_EFFECT,
) -> Answer:
    """When does an MLP conv beat a plain conv in this study? Per stage, with the evidence.

    Args:
        study: The searched study.
        ablation_study: Its companion ablation study (:func:`find_ablation_study`), or
            ``None`` when there is none yet.
        confidence: Coverage of every interval, in (0, 1).
        n_resamples: Bootstrap resamples of the design-space intervals.
        seed: Seed of the bootstraps.
        smallest_effect: The narrowest half-width (points) "what would settle it" asks for.

    Returns:
        One :class:`StageAnswer` per stage seen in the study or its ablations, in order.
    """
    if not smallest_effect > 0:
        raise ValueError(f"smallest_effect must be > 0, but got smallest_effect={smallest_effect}.")
    design = {
        effect.stage: effect
        for effect in get_design_space_info(
            study, confidence=confidence, n_resamples=n_resamples, seed=seed
        )
    }
    ablations = (
        [] if ablation_study is None else get_ablation_info(ablation_study, confidence=confidence)
    )
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
        )
        stages.append(StageAnswer(stage, mine, design.get(stage), settle))
    return Answer(study.study_name, ablation_study is not None, confidence, stages)


def _settle_lines(
    ablations: list[StageAblation],
    design: DesignSpaceEffect | None,
    *,
    has_ablation_study: bool,
    smallest_effect: float,
) -> list[str]:
    """What would settle one stage's open questions: more ablation seeds, more random trials."""
    settle = []
    for ablation in ablations:
        for effect in (ablation.flipped, ablation.matched):
            if effect is None:
                continue
            text = ablation_settle_text(effect, smallest_effect=smallest_effect)
            if text is not None:
                settle.append(f"{effect.variant} (trial #{ablation.source}): {text}")
    if not ablations:
        settle.append(RUN_STAGE_ABLATE if has_ablation_study else RUN_ABLATE)
    if design is not None:
        text = random_trials_to_settle(design, smallest_effect=smallest_effect)
        if text is not None:
            settle.append(text)
    return settle


def _paired_text(effect: PairedEffect | None) -> str:
    if effect is None:
        return "not run"
    sizes = (
        f"MLP {params_text(effect.mlp_params)} vs plain {params_text(effect.plain_params)} params"
    )
    return f"{effect.verdict}; {sizes}"


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
        lines = [f"design space (random trials, equal params): {reason}"]
    else:
        bins = plural(effect.bins_used, "size bin")
        if effect.bins_dropped:
            bins += f", {effect.bins_dropped} dropped ({effect.trials_dropped} trials)"
        lines = [
            f"design space (random trials at {epoch}, equal params): {effect.verdict}; "
            f"KS {effect.ks_statistic:.2f}, {bins}"
        ]
        sizes = "; ".join(
            f"{size_label(regime)} "
            + (
                "no data"
                if regime.difference is None
                else effect_text(regime.difference, regime.interval, regime.confidence)
            )
            + f" (n={regime.n_plain + regime.n_mlp})"
            for regime in effect.regimes
        )
        lines.append(f"by size: {effect.regime}" + (f" [{sizes}]" if sizes else ""))
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
    if not answer.stages:
        lines.append("  no finished trials yet: run `nin-search optimize`")
    for stage in answer.stages:
        lines.append(f"  stage {stage.stage}:")
        for ablation in stage.ablations:
            lines.append(
                f"    ablation of trial #{ablation.source}: flipped: "
                f"{_paired_text(ablation.flipped)}; matched: {_paired_text(ablation.matched)} "
                f"-> {ablation.reading}"
            )
        if not stage.ablations:
            none = "none of this stage yet" if answer.has_ablation_study else "none yet"
            lines.append(f"    ablation (same seeds, one stage changed): {none}")
        if stage.design_space is not None:
            lines += [f"    {line}" for line in _design_lines(stage.design_space)]
        lines += [f"    to settle it: {text}" for text in stage.settle]
    return lines
