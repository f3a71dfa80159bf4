"""When does MLP conv help? The complexity-normalised effect per parameter-count tercile."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from nin_search.analysis._defaults import CONFIDENCE, MIN_REGIME_TRIALS, POINTS_RANGE
from nin_search.analysis._format import direction, params_text
from nin_search.analysis._stats import normalised_difference

SIZE_NAMES = ("small", "medium", "large")
_WORDS = {
    "helps": "MLP conv helps",
    "hurts": "MLP conv hurts",
    "none": "no difference detected",
    None: "unsure",
}


class RegimeEffect(NamedTuple):
    """The normalised MLP minus plain difference (points) among networks of one size range.

    The range holds parameter counts ``>= lower_edge`` and ``< upper_edge`` (``None``: open).
    """

    size: str
    lower_edge: float | None
    upper_edge: float | None
    difference: float | None
    interval: tuple[float, float] | None
    confidence: float
    n_plain: int
    n_mlp: int
    p_value: float | None = None  # of "no difference", with the interval's degrees of freedom


def size_label(regime: RegimeEffect) -> str:
    """``small (<12k params)``, ``medium (12k..40k params)``, ``large (>=40k params)``."""
    if regime.lower_edge is None and regime.upper_edge is None:
        return f"{regime.size} (all sizes)"
    if regime.lower_edge is None:
        return f"{regime.size} (<{params_text(regime.upper_edge)} params)"
    if regime.upper_edge is None:
        return f"{regime.size} (>={params_text(regime.lower_edge)} params)"
    return (
        f"{regime.size} ({params_text(regime.lower_edge)}..{params_text(regime.upper_edge)} params)"
    )


def get_regime_effects(
    values: Sequence[float],
    params: Sequence[float],
    is_mlp: Sequence[bool],
    *,
    confidence: float = CONFIDENCE,
) -> list[RegimeEffect]:
    """The complexity-normalised difference within each parameter-count tercile.

    Args:
        values: Accuracy (points) of each pooled random trial.
        params: Parameter counts, > 0.
        is_mlp: Whether each trial has an MLP conv at the stage.
        confidence: Coverage of the intervals.

    Returns:
        Up to three effects, small to large; empty with fewer than 9 trials or one kind only.
    """
    values_array = np.asarray(values, dtype=float)
    params_array = np.asarray(params, dtype=float)
    mlp_array = np.asarray(is_mlp, dtype=bool)
    if len(values_array) < MIN_REGIME_TRIALS or mlp_array.all() or not mlp_array.any():
        return []
    edges = np.unique(np.quantile(params_array, [1 / 3, 2 / 3]))
    terciles = np.searchsorted(edges, params_array, side="right")
    bounds = [None, *edges.tolist(), None]
    effects = []
    for index in range(len(edges) + 1):
        inside = terciles == index
        result = normalised_difference(
            values_array[inside],
            params_array[inside],
            mlp_array[inside],
            confidence=confidence,
            bounds=POINTS_RANGE,
        )
        effects.append(
            RegimeEffect(
                size=SIZE_NAMES[index] if len(edges) == 2 else ("smaller", "larger")[index],
                lower_edge=bounds[index],
                upper_edge=bounds[index + 1],
                difference=result.difference,
                interval=result.interval,
                confidence=confidence,
                n_plain=int((inside & ~mlp_array).sum()),
                n_mlp=int((inside & mlp_array).sum()),
                p_value=result.p_value,
            )
        )
    return effects


def _disjoint(first: RegimeEffect, second: RegimeEffect) -> bool:
    if first.interval is None or second.interval is None:
        return False
    return first.interval[0] > second.interval[1] or second.interval[0] > first.interval[1]


def regime_text(regimes: Sequence[RegimeEffect]) -> str:
    """How the effect depends on network size, claimed only when the intervals say so.

    A dependence on size is claimed only when two size ranges have disjoint intervals; then
    e.g. ``MLP conv helps in small networks (<12k params), no difference detected above``.
    """
    if not regimes:
        return "unsure how it depends on size: too few random trials to split by size"
    words = [_WORDS[direction(regime.interval)] for regime in regimes]
    depends = any(_disjoint(a, b) for a in regimes for b in regimes)
    if not depends:
        if len(set(words)) == 1 and words[0] == _WORDS["none"]:
            return "no difference detected at any size"
        if len(set(words)) == 1 and words[0] != _WORDS[None]:
            return f"{words[0]} at every size"
        missing = sum(regime.interval is None for regime in regimes)
        if missing == len(regimes):
            return "unsure whether it depends on size (no size range has an interval)"
        if missing:
            have = "has" if missing == 1 else "have"
            return (
                f"unsure whether it depends on size ({missing} of {len(regimes)} size ranges "
                f"{have} no interval, the others' intervals overlap)"
            )
        return "unsure whether it depends on size (the size ranges' intervals overlap)"
    if len(set(words)) == 1:
        largest = max(regimes, key=lambda regime: regime.difference or 0.0)
        return f"{words[0]} at every size, most in {size_label(largest)} networks"
    first, last = regimes[0], regimes[-1]
    if len(regimes) == 3 and words[1] == words[2]:
        small = params_text(first.upper_edge)
        return f"{words[0]} in small networks (<{small} params), {words[1]} above"
    if len(regimes) == 3 and words[0] == words[1]:
        return (
            f"{words[0]} below {params_text(last.lower_edge)} params, "
            f"{words[2]} in large networks (>={params_text(last.lower_edge)} params)"
        )
    return "depends on size: " + ", ".join(
        f"{word} in {size_label(regime)}" for word, regime in zip(words, regimes, strict=True)
    )
