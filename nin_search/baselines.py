"""The two baselines a study starts with: the NIN network and the same network with plain
conv stages, differing only in the 1x1 layers, narrowed together to the study's cost limits.

The answer compares the search against them, so they run first (:func:`enqueue_baselines`).
"""

from __future__ import annotations

from typing import Any

import optuna

from nin_search.config import StudyConfig
from nin_search.config_space import choices_of
from nin_search.records import BASELINE, BASELINES_NOTE, MACS, PARAMS
from nin_search.space import baseline_params, suggest_arch
from nin_search.vocabulary import BASELINE_KINDS, BASELINES

__all__ = ["baselines_within_limits", "enqueue_baselines"]


# Narrower and narrower baselines are tried until both fit the study's cost limits.
_BASELINE_WIDTH_SCALES = tuple(0.5**halvings for halvings in range(8))


def _baseline_costs(
    params: dict[str, Any], config: StudyConfig, data: dict[str, Any]
) -> dict[str, int]:
    # Imported here: the commands that only read a study (best, trials, report) need no PyTorch.
    from nin_search.model import count_macs, count_params

    arch = suggest_arch(optuna.trial.FixedTrial(params), config.space)
    shape = {"in_channels": data["in_channels"], "num_classes": data["num_classes"]}
    return {
        PARAMS: count_params(arch, **shape),
        MACS: count_macs(arch, image_size=data["image_size"], **shape),
    }


def baselines_within_limits(
    config: StudyConfig, data_info: dict[str, Any] | None
) -> tuple[dict[str, dict[str, Any]], str | None]:
    """The baselines' params (``{"nin": ..., "plain": ...}``) and a note when they were
    narrowed or dropped to meet the study's ``cost.max_params`` / ``cost.max_macs``.

    Both are narrowed by the same factor (halving every width until both fit), so they still
    differ only in the 1x1 layers; when even the narrowest breaks a limit, there are none. A
    latency limit is measured on the device while a trial runs and cannot be checked here.
    """
    kinds = choices_of(config.space.stage_types)
    expressible = [b for b in BASELINES if BASELINE_KINDS[b] in kinds]
    dropped = None
    if len(expressible) < len(BASELINES):  # one stage type: the other network is not in it
        dropped = (
            f"only the {' and '.join(expressible)} baseline: space.stage_types = {kinds} holds "
            "one stage type, so the other baseline would be the same network"
        )
    limits = {name: limit for name, limit in config.cost.limits.items() if name in (PARAMS, MACS)}
    stated = ", ".join(f"cost.max_{name} = {limit:,}" for name, limit in limits.items())
    previous = None
    for scale in _BASELINE_WIDTH_SCALES:
        params = {
            baseline: baseline_params(config.space, config.train, baseline, width_scale=scale)
            for baseline in expressible
        }
        if not limits or data_info is None:
            return params, dropped
        if params == previous:
            break  # the widths reached the space's narrowest choices
        previous = params
        costs = [_baseline_costs(values, config, data_info) for values in params.values()]
        if all(cost[name] <= limit for cost in costs for name, limit in limits.items()):
            if scale == 1:
                return params, dropped
            narrowed = (
                f"baselines narrowed to fit the cost limits ({stated}): widths x{scale:g} "
                f"({', '.join(f'{cost[PARAMS]:,} params' for cost in costs)})"
            )
            return params, narrowed if dropped is None else f"{dropped}; {narrowed}"
    return {}, (
        f"baselines skipped: even at the space's narrowest widths they break the cost limits "
        f"({stated}); raise the limits or add narrower widths to have them"
    )


def enqueue_baselines(
    study: optuna.Study, config: StudyConfig, data_info: dict[str, Any] | None
) -> None:
    """Queues the study's baselines (:func:`baselines_within_limits`) as its first trials,
    and records the note on how they were narrowed or dropped."""
    params, note = baselines_within_limits(config, data_info)
    if note is not None:
        study.set_user_attr(BASELINES_NOTE, note)
    for baseline, values in params.items():
        study.enqueue_trial(values, user_attrs={BASELINE: baseline})
