"""What would settle an open question: more seeds for the ablation, more random trials.

The target half-width is two thirds of the observed difference (so that, if the difference
holds, the interval clears 0 with a margin), but never below ``smallest_effect`` points: an
effect smaller than that is not worth the compute.
"""

from __future__ import annotations

import math

import scipy.stats

from nin_search.analysis._ablation import PairedEffect
from nin_search.analysis._defaults import FIRST_SEEDS, PLANNING_COVERAGE, SMALLEST_EFFECT
from nin_search.analysis._design_space import DesignSpaceEffect
from nin_search.analysis._format import direction
from nin_search.analysis._stats import half_width_for_seeds, planning_sd, seeds_for_half_width

ABLATE = "nin-search ablate"
RANDOM_TRIALS = "study.random_trials"
MAX_MORE_RANDOM_TRIALS = 1000  # beyond this many more, the target is called out of reach


def _target(difference: float, smallest_effect: float) -> float:
    return max(abs(difference) * 2 / 3, smallest_effect)


def seeds_to_settle(
    effect: PairedEffect, *, smallest_effect: float = SMALLEST_EFFECT
) -> tuple[int, float] | None:
    """Seeds that would narrow the effect's interval to the target, and that half-width,
    planned for the sd's upper confidence bound (:func:`planning_sd`), not the observed sd.

    Returns:
        ``(seeds, half_width)``, or ``None`` when the interval already excludes 0, there is no
        sd yet (one seed) or a zero one (the same difference on every seed), or the target
        would need more than 1000 seeds.
    """
    if direction(effect.interval) in ("helps", "hurts") or not effect.sd:
        return None  # settled, one seed (no sd), or tied on every seed (no spread to shrink)
    sd = planning_sd(effect.sd, effect.n)
    seeds = seeds_for_half_width(sd, _target(effect.mean, smallest_effect), effect.confidence)
    if seeds is None:
        return None
    seeds = max(seeds, effect.n + 1)
    return seeds, half_width_for_seeds(sd, seeds, effect.confidence)


def ablation_settle_text(
    effect: PairedEffect, *, smallest_effect: float = SMALLEST_EFFECT, command: str = ABLATE
) -> str | None:
    """``nin-search ablate --seeds 6` narrows the interval to about ±0.8 points``, or ``None``.

    Args:
        effect: A flipped or matched effect.
        smallest_effect: The narrowest half-width worth asking for (points).
        command: The ablate command to suggest, with the study's options when known
            (``nin-search ablate --storage URL --study-name NAME``).
    """
    if direction(effect.interval) in ("helps", "hurts"):
        return None
    if effect.sd is None:
        return f"`{command} --seeds {FIRST_SEEDS}` gives an interval (one seed gives none)"
    if effect.sd == 0:
        return (
            "every seed gave the same difference: the validation split is too small to "
            "separate the two; a larger `data.val_fraction` can, more seeds cannot"
        )
    settle = seeds_to_settle(effect, smallest_effect=smallest_effect)
    planned = (
        f"unless the spread is over {planning_sd(1.0, effect.n):.1f}x the {effect.n} seeds' "
        f"(its {PLANNING_COVERAGE:.0%} upper bound)"
    )
    if settle is None:
        many = max(20, effect.n + 1)
        half_width = half_width_for_seeds(planning_sd(effect.sd, effect.n), many, effect.confidence)
        return (
            f"an effect this small is out of reach of seeds: `{command} --seeds {many}` "
            f"still leaves up to about ±{half_width:.1f} points, {planned}"
        )
    seeds, half_width = settle
    return (
        f"`{command} --seeds {seeds}` narrows the interval to about ±{half_width:.1f} points "
        f"or less, {planned}"
    )


def random_trials_to_settle(
    effect: DesignSpaceEffect, *, smallest_effect: float = SMALLEST_EFFECT
) -> str | None:
    """How many more random trials would narrow the design-space interval, or ``None``.

    The standard error shrinks about as 1/sqrt(number of trials), and with many trials the
    interval is about ``z * standard_error`` wide each way (z: the normal quantile), so the
    trials needed are ``n * (z * standard_error / target)**2``. Beyond
    ``MAX_MORE_RANDOM_TRIALS`` more, the target is called out of reach (as the ablation is
    beyond 1000 seeds), with the half-width that many more would still leave.
    """
    if direction(effect.interval) in ("helps", "hurts"):
        return None
    more = f"run more random trials (`{RANDOM_TRIALS}`)"
    if effect.n_random_plain + effect.n_random_mlp == 0:
        older = (
            f" ({effect.n_unknown_origin} trial(s) do not record how they were sampled, no "
            "`sampled_by` attr, as in studies of older versions or of the plugin API)"
            if effect.n_unknown_origin
            else ""
        )
        return f"{more}: none recorded for this stage yet{older}"
    if not effect.n_random_plain or not effect.n_random_mlp:
        return None  # one kind only: the space does not search this stage's kind
    if effect.interval is None or effect.difference is None or not effect.standard_error:
        return f"{more}: each kind needs at least 2 in a shared size range"
    half_width = scipy.stats.norm.ppf((1.0 + effect.confidence) / 2.0) * effect.standard_error
    target = _target(effect.difference, smallest_effect)
    used = effect.n_plain + effect.n_mlp
    needed = math.ceil(used * (half_width / target) ** 2) - used
    if needed <= 0:
        return None
    if needed > MAX_MORE_RANDOM_TRIALS:
        left = half_width * math.sqrt(used / (used + MAX_MORE_RANDOM_TRIALS))
        return (
            "an effect this small is out of reach of more random trials: even "
            f"{MAX_MORE_RANDOM_TRIALS} more (`{RANDOM_TRIALS}`) would leave about "
            f"±{left:.1f} points"
        )
    return f"{more}: about {needed} more would narrow the interval to about ±{target:.1f} points"
