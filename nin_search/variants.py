"""The variants of a paired ablation: one stage flipped, and flipped at equal parameters.

For a network and one of its stages:

* **flipped**: the stage's kind changed, everything else identical. An MLP conv stage loses its
  1x1 layers; a plain stage gains 1x1 layers at its own width, as many as NIN has at that
  position (:data:`nin_search.config_space.NIN_REFERENCE`, what ``presets.nin_cifar10`` builds).
* **matched**: the flipped kind at the original's parameter count (within
  :data:`PARAM_TOLERANCE`): a plain stage replacing an MLP conv is widened, the 1x1 layers
  of an MLP conv replacing a plain stage are narrowed (and its k x k conv too when that is not
  enough). Comparing the original with it asks: is it the structure, or just more parameters?

No optuna here: plain specs in, plain specs out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

from nin_search.config_space import NIN_REFERENCE
from nin_search.model import count_params
from nin_search.records import ORIGINAL_STAGE
from nin_search.spec import ArchSpec, StageSpec
from nin_search.vocabulary import MLP, PARAM_TOLERANCE, PLAIN

__all__ = ["PARAM_TOLERANCE", "Variant", "ablation_variants", "flip_stage", "match_params"]

_MAX_WIDTH = 4096  # the widest stage the search for a matching width tries


class Variant(NamedTuple):
    """One network of an ablation; ``stage`` is the changed stage (ORIGINAL_STAGE: none)."""

    stage: int
    name: str  # "original", "flipped" or "matched"
    arch: ArchSpec
    also_matched: bool = False  # a flipped network that is its own matched one


def _with_stage(arch: ArchSpec, index: int, stage: StageSpec) -> ArchSpec:
    stages = list(arch.stages)
    stages[index] = stage
    return dataclasses.replace(arch, stages=tuple(stages))


def _nin_depth(index: int) -> int:
    """The number of 1x1 layers NIN's mlpconv has at stage position ``index``."""
    stages = NIN_REFERENCE.stages
    return len(stages[min(index, len(stages) - 1)].mlp_widths)


def flip_stage(arch: ArchSpec, index: int) -> ArchSpec:
    """``arch`` with stage ``index`` turned from MLP conv to plain or from plain to MLP conv.

    Raises:
        IndexError: If the network has no stage ``index``.
    """
    stage = arch.stages[index]
    if stage.kind == MLP:
        flipped = dataclasses.replace(stage, kind=PLAIN, mlp_widths=())
    else:
        widths = (stage.width,) * _nin_depth(index)
        flipped = dataclasses.replace(stage, kind=MLP, mlp_widths=widths)
    return _with_stage(arch, index, flipped)


def _closest(
    make: Callable[[int], ArchSpec], low: int, high: int, target: int, count: Callable
) -> tuple[ArchSpec, int]:
    """The ``make(width)`` for ``width`` in ``low..high`` whose parameter count is closest to
    ``target``; the count grows with the width, so a bisection finds the crossing."""
    while low < high:
        middle = (low + high) // 2
        if count(make(middle)) < target:
            low = middle + 1
        else:
            high = middle
    candidates = [make(width) for width in {max(low - 1, 1), low}]
    return min(((arch, count(arch)) for arch in candidates), key=lambda pair: abs(pair[1] - target))


def match_params(arch: ArchSpec, index: int, *, in_channels: int, num_classes: int) -> ArchSpec:
    """The flipped stage ``index`` of ``arch`` with widths chosen so that the whole network has
    the original's parameter count (the closest reachable; within :data:`PARAM_TOLERANCE` for
    all but degenerate networks).

    Args:
        arch: The original network.
        index: The stage to flip.
        in_channels: Channels of the input images.
        num_classes: Number of classes.
    """

    def count(candidate: ArchSpec) -> int:
        return count_params(candidate, in_channels=in_channels, num_classes=num_classes)

    target = count(arch)
    stage = arch.stages[index]
    if stage.kind == MLP:  # plain, widened
        plain = dataclasses.replace(stage, kind=PLAIN, mlp_widths=())

        def widened(width: int) -> ArchSpec:
            return _with_stage(arch, index, dataclasses.replace(plain, width=width))

        return _closest(widened, 1, _MAX_WIDTH, target, count)[0]
    depth = _nin_depth(index)

    def narrowed(width: int) -> ArchSpec:  # the 1x1 layers only
        mlp = dataclasses.replace(stage, kind=MLP, mlp_widths=(width,) * depth)
        return _with_stage(arch, index, mlp)

    best, params = _closest(narrowed, 1, stage.width, target, count)
    if abs(params - target) <= PARAM_TOLERANCE * target:
        return best

    def scaled(width: int) -> ArchSpec:  # the k x k conv and the 1x1 layers together
        mlp = dataclasses.replace(stage, kind=MLP, width=width, mlp_widths=(width,) * depth)
        return _with_stage(arch, index, mlp)

    other, other_params = _closest(scaled, 1, stage.width, target, count)
    return other if abs(other_params - target) < abs(params - target) else best


def ablation_variants(arch: ArchSpec, *, in_channels: int, num_classes: int) -> list[Variant]:
    """The original, then per stage the flipped and the parameter-matched variant; none
    matched where that is the flipped network itself (its parameters are already within
    ``PARAM_TOLERANCE`` of the original's): the analysis reads the flipped runs as matched."""
    variants = [Variant(ORIGINAL_STAGE, "original", arch)]
    for index in range(len(arch.stages)):
        flipped = flip_stage(arch, index)
        matched = match_params(arch, index, in_channels=in_channels, num_classes=num_classes)
        variants.append(Variant(index, "flipped", flipped, also_matched=matched == flipped))
        if matched != flipped:
            variants.append(Variant(index, "matched", matched))
    return variants
