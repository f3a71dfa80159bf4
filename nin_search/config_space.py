"""The searchable part of a study config: searchable values, the architecture space, and the
reference network that presets and baselines are made from.

A searchable value is written in TOML as one of:

* a scalar (``dropout = 0.3``): fixed, not searched;
* a list (``widths = [32, 64, 128]``): a categorical choice;
* a table (``learning_rate = { low = 1e-3, high = 0.1, log = true }``): a range
  (an integer range when both bounds are integers).

Like :mod:`nin_search.config` (which re-exports these types), it holds tunable defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from nin_search.vocabulary import (
    ACTIVATIONS,
    HEADS,
    POOLS,
    STAGE_KINDS,
    is_odd_kernel_size,
    is_rate,
)

__all__ = [
    "FROZEN",
    "MAX_LAYER_PARAMETERS",
    "MAX_MLP_DEPTH",
    "NIN_REFERENCE",
    "FloatParam",
    "FloatRange",
    "IntParam",
    "IntRange",
    "Reference",
    "ReferenceStage",
    "SpaceConfig",
    "check_positive",
    "choice_list",
    "choices_of",
    "some_of",
]

MAX_LAYER_PARAMETERS = 10**9  # weights of one conv layer (4 GB as float32): past it, no trial fits
MAX_MLP_DEPTH = 64  # 1x1 convs in one MLP conv stage (NIN uses 2)


# Every config section: unknown keys are refused, values never change, and no value is coerced
# (``true`` is not the width 1, ``8.5`` not 8 epochs; an integer is still a float).
FROZEN = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Frozen(BaseModel):
    model_config = FROZEN


class IntRange(_Frozen):
    """An integer range ``low..high`` (both inclusive), optionally log-scaled."""

    low: int
    high: int
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> IntRange:
        if self.low > self.high:
            raise ValueError(f"low must be <= high, but got low={self.low}, high={self.high}")
        if self.log and self.low < 1:
            raise ValueError(f"a log range needs low >= 1, but got low={self.low}")
        return self


class FloatRange(_Frozen):
    """A float range ``[low, high]``, optionally log-scaled."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _check(self) -> FloatRange:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"bounds must be finite, but got low={self.low}, high={self.high}")
        if self.low > self.high:
            raise ValueError(f"low must be <= high, but got low={self.low}, high={self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, but got low={self.low}")
        return self


def _distinct(values: list) -> list:
    """A choice list names each choice once (a repeat would weigh it double in sampling)."""
    for index, value in enumerate(values):
        if value in values[:index]:
            raise ValueError(f"lists {value!r} twice; list each choice once")
    return values


def choice_list(item: Any) -> Any:
    """The field type of a categorical choice: a non-empty list of distinct ``item`` values."""
    return Annotated[list[item], Field(min_length=1), AfterValidator(_distinct)]


def some_of(choices: tuple[str, ...]) -> Any:
    """The field type of a non-empty list of vocabulary names (each one of ``choices``)."""
    return choice_list(Literal[choices])  # type: ignore[valid-type]


_StageKinds = some_of(STAGE_KINDS)
_Pools = some_of(POOLS)
_Heads = some_of(HEADS)
_Activations = some_of(ACTIVATIONS)
IntParam = int | choice_list(int) | IntRange
FloatParam = float | choice_list(float) | FloatRange


def choices_of(param: int | float | list | IntRange | FloatRange) -> list:
    """Every value a searchable parameter can take (ranges give their two bounds)."""
    if isinstance(param, (IntRange, FloatRange)):
        return [param.low, param.high]
    if isinstance(param, list):
        return list(param)
    return [param]


def check_positive(name: str, param: IntParam | FloatParam, *, allow_zero: bool = False) -> None:
    for value in choices_of(param):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, but got {value}")
        if value < 0 or (value == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise ValueError(f"{name} must be {bound}, but got {value}")


class SpaceConfig(_Frozen):
    """The architecture search space. Parameter names carry the stage index (``s0_type``)."""

    num_stages: IntParam = [2, 3]
    stage_types: _StageKinds = list(STAGE_KINDS)
    kernel_sizes: choice_list(int) = [3, 5]  # odd, "same" padding
    widths: IntParam = [16, 32, 64]  # out channels of each stage's k x k conv
    mlp_depth: IntParam = IntRange(low=1, high=2)  # number of 1x1 convs in an MLP stage
    mlp_widths: IntParam = [16, 32, 64]  # out channels of each 1x1 conv
    pool: _Pools = ["max"]  # 3x3/2
    dropout: FloatParam = FloatRange(low=0.0, high=0.5)  # after each downsampling
    head: _Heads = list(HEADS)
    batch_norm: choice_list(bool) = [True]
    activation: _Activations = ["relu"]

    @model_validator(mode="after")
    def _check(self) -> SpaceConfig:
        check_positive("space.num_stages", self.num_stages)
        check_positive("space.widths", self.widths)
        check_positive("space.mlp_depth", self.mlp_depth)
        check_positive("space.mlp_widths", self.mlp_widths)
        for kernel_size in self.kernel_sizes:
            if not is_odd_kernel_size(kernel_size):
                raise ValueError(
                    f"space.kernel_sizes must be odd and >= 1 ('same' padding), "
                    f"but got {kernel_size}"
                )
        for rate in choices_of(self.dropout):
            if not is_rate(rate):
                raise ValueError(f"space.dropout must be in [0, 1), but got {rate}")
        depth = max(choices_of(self.mlp_depth))
        if depth > MAX_MLP_DEPTH:
            raise ValueError(f"space.mlp_depth must be <= {MAX_MLP_DEPTH}, but got {depth}")
        self._check_layer_size()
        return self

    def _check_layer_size(self) -> None:
        """The largest conv layer the space allows must fit in memory (else every trial that
        draws it fails, and a study of such trials finishes with nothing)."""
        width = max(choices_of(self.widths))
        channels = max(width, max(choices_of(self.mlp_widths)), 3)  # widest input of a layer
        kernel = max(self.kernel_sizes)
        largest = max(
            kernel * kernel * channels * width, channels * max(choices_of(self.mlp_widths))
        )
        if largest > MAX_LAYER_PARAMETERS:
            raise ValueError(
                f"space.widths / mlp_widths / kernel_sizes allow a layer of {largest:,} "
                f"weights (a {kernel}x{kernel} conv of {channels} -> {width} channels), over "
                f"{MAX_LAYER_PARAMETERS:,}: no trial could train it; use smaller values"
            )

    @property
    def max_stages(self) -> int:
        return max(choices_of(self.num_stages))


@dataclass(frozen=True)
class ReferenceStage:
    """One stage of a reference network (an MLP conv stage; drop ``mlp_widths`` for plain)."""

    kernel_size: int
    width: int  # out channels of the k x k conv
    mlp_widths: tuple[int, ...]  # out channels of each 1x1 conv
    pool: str  # 3x3/2 pooling after the stage, or "none"


@dataclass(frozen=True)
class Reference:
    """A reference network and its training: what :mod:`nin_search.presets` builds, and what a
    new study's baseline trials are, resolved against the study's space.

    Learning rate, weight decay and batch size have no reference value (the original ones fit
    one dataset only): the baselines take the middle of the study's range for them.
    """

    stages: tuple[ReferenceStage, ...]
    head: str
    batch_norm: bool
    activation: str
    dropout: float  # after every downsampling
    optimizer: str
    label_smoothing: float

    @property
    def widest(self) -> int:
        """The widest k x k conv; baselines scale every width by the space's widest over it."""
        return max(stage.width for stage in self.stages)


# The NIN CIFAR-10 network of the Caffe model zoo (Lin et al., 2014): conv 5x5/192 -> cccp 160
# -> cccp 96, max-pool; conv 5x5/192 -> cccp 192 -> cccp 192, avg-pool; conv 3x3/192 -> cccp
# 192; a 1x1 conv to the classes + global average pooling; dropout 0.5; no BatchNorm; SGD.
NIN_REFERENCE = Reference(
    stages=(
        ReferenceStage(kernel_size=5, width=192, mlp_widths=(160, 96), pool="max"),
        ReferenceStage(kernel_size=5, width=192, mlp_widths=(192, 192), pool="avg"),
        ReferenceStage(kernel_size=3, width=192, mlp_widths=(192,), pool="none"),
    ),
    head="nin",
    batch_norm=False,
    activation="relu",
    dropout=0.5,
    optimizer="sgd",
    label_smoothing=0.0,
)
