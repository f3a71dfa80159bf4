"""Architecture and training specs: plain, frozen data with a JSON round-trip.

An :class:`ArchSpec` is everything :func:`nin_search.build_model` needs and nothing else.
No torch, no optuna: a spec can be stored, diffed, and rebuilt anywhere.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from nin_search.errors import check_int
from nin_search.vocabulary import (
    ACTIVATIONS,
    HEADS,
    MLP,
    NO_POOL,
    OPTIMIZERS,
    PLAIN,
    POOLS,
    STAGE_KINDS,
    is_odd_kernel_size,
    is_rate,
)

__all__ = [
    "ArchSpec",
    "Hyperparameters",
    "SpecError",
    "StageSpec",
    "check_kernel_size",
]

_SPEC_POOLS = (*POOLS, NO_POOL)  # a spec also names the stages that do not downsample


class SpecError(ValueError):
    """A spec holds an impossible value. The message quotes it."""


def check_kernel_size(kernel_size: Any) -> None:
    """Raises :class:`SpecError` unless ``kernel_size`` is odd and >= 1 ("same" padding)."""
    check_int("kernel_size", kernel_size, minimum=1, error=SpecError)
    if not is_odd_kernel_size(kernel_size):
        raise SpecError(
            f"kernel_size must be odd ('same' padding), but got kernel_size={kernel_size}."
        )


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecError(f"{name} must be one of {choices}, but got {name}={value!r}.")


@dataclass(frozen=True)
class StageSpec:
    """One stage: a k x k conv, then (``kind="mlp"``) stacked 1x1 convs, then downsampling.

    Args:
        kind: ``"plain"`` (k x k conv only) or ``"mlp"`` (MLP conv, the NIN block).
        kernel_size: Side of the k x k conv (odd, "same" padding).
        width: Out channels of the k x k conv.
        mlp_widths: Out channels of each 1x1 conv, in order; empty for a plain stage.
        pool: Downsampling after the stage: 3x3/2 ``"max"`` or ``"avg"`` pooling, or ``"none"``.
    """

    kind: str
    kernel_size: int
    width: int
    mlp_widths: tuple[int, ...] = ()
    pool: str = NO_POOL

    def __post_init__(self) -> None:
        object.__setattr__(self, "mlp_widths", tuple(self.mlp_widths))
        _check_choice("kind", self.kind, STAGE_KINDS)
        check_kernel_size(self.kernel_size)
        check_int("width", self.width, minimum=1, error=SpecError)
        for index, width in enumerate(self.mlp_widths, start=1):
            check_int(f"mlp{index}_width", width, minimum=1, error=SpecError)
        if self.kind == PLAIN and self.mlp_widths:
            raise SpecError(
                f"a plain stage has no 1x1 layers, but got mlp_widths={list(self.mlp_widths)}."
            )
        if self.kind == MLP and not self.mlp_widths:
            raise SpecError("an mlp stage needs at least one 1x1 layer, but got mlp_widths=[].")
        _check_choice("pool", self.pool, _SPEC_POOLS)

    @property
    def out_channels(self) -> int:
        return self.mlp_widths[-1] if self.mlp_widths else self.width

    def summary(self) -> str:
        """``mlp5x5-192-160-96/max`` or ``plain3x3-64``."""
        widths = "-".join(str(width) for width in (self.width, *self.mlp_widths))
        pool = "" if self.pool == NO_POOL else f"/{self.pool}"
        return f"{self.kind}{self.kernel_size}x{self.kernel_size}-{widths}{pool}"


@dataclass(frozen=True)
class ArchSpec:
    """A whole network: stages, then a head.

    Args:
        stages: The stages in order; every stage but the last downsamples or not (``pool``),
            the last one never does (the head pools globally).
        head: ``"nin"`` (1x1 conv to the classes, then global average pooling) or
            ``"linear"`` (global average pooling, then a linear layer).
        batch_norm: BatchNorm after every conv (conv biases are then off). NIN used none.
        activation: ``"relu"``, ``"gelu"`` or ``"silu"``.
        dropout: Dropout rate after every downsampling (0 disables it).
    """

    stages: tuple[StageSpec, ...]
    head: str = "nin"
    batch_norm: bool = True
    activation: str = "relu"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        if not self.stages:
            raise SpecError("an architecture needs at least one stage, but got stages=[].")
        for index, stage in enumerate(self.stages):
            if not isinstance(stage, StageSpec):
                raise SpecError(f"stages[{index}] must be a StageSpec, but got {stage!r}.")
        if self.stages[-1].pool != NO_POOL:
            raise SpecError(
                f"the last stage must not downsample (the head pools globally), "
                f"but got pool={self.stages[-1].pool!r}."
            )
        _check_choice("head", self.head, HEADS)
        if not isinstance(self.batch_norm, bool):
            raise SpecError(f"batch_norm must be true or false, but got {self.batch_norm!r}.")
        _check_choice("activation", self.activation, ACTIVATIONS)
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)):
            raise SpecError(f"dropout must be a number, but got dropout={self.dropout!r}.")
        if not is_rate(self.dropout):
            raise SpecError(f"dropout must be in [0, 1), but got dropout={self.dropout}.")

    def summary(self) -> str:
        """A short human-readable line, e.g. ``mlp5x5-64-32/max > plain3x3-64 | nin, bn``."""
        stages = " > ".join(stage.summary() for stage in self.stages)
        norm = "bn" if self.batch_norm else "no-bn"
        drop = f", drop{self.dropout:.2f}" if self.dropout > 0 else ""
        return f"{stages} | {self.head}, {norm}, {self.activation}{drop}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` turns it back into an equal spec."""
        return {
            "stages": [
                {**dataclasses.asdict(stage), "mlp_widths": list(stage.mlp_widths)}
                for stage in self.stages
            ],
            "head": self.head,
            "batch_norm": self.batch_norm,
            "activation": self.activation,
            "dropout": self.dropout,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchSpec:
        """Builds and validates a spec from :meth:`to_dict` output.

        Raises:
            SpecError: On unknown or missing keys and on impossible values.
        """
        if not isinstance(data, dict):
            raise SpecError(f"an ArchSpec dict must be a dict, but got {type(data).__name__}.")
        known = {"stages", "head", "batch_norm", "activation", "dropout"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"unknown ArchSpec keys {unknown}; known keys are {sorted(known)}.")
        if not isinstance(data.get("stages"), list):
            raise SpecError(f"stages must be a list, but got {data.get('stages')!r}.")
        stage_keys = {spec_field.name for spec_field in dataclasses.fields(StageSpec)}
        stages = []
        for index, stage in enumerate(data["stages"]):
            if not isinstance(stage, dict) or set(stage) - stage_keys:
                raise SpecError(f"stages[{index}] must have keys {sorted(stage_keys)}.")
            try:
                stages.append(StageSpec(**stage))
            except TypeError as error:
                raise SpecError(f"stages[{index}]: {error}.") from None
        rest = {key: value for key, value in data.items() if key != "stages"}
        return cls(stages=tuple(stages), **rest)


@dataclass(frozen=True)
class Hyperparameters:
    """Training hyperparameters of one trial.

    Args:
        optimizer: ``"sgd"`` (Nesterov momentum) or ``"adamw"``.
        learning_rate: Peak learning rate (cosine decay to 0 after a short warm-up).
        weight_decay: Decoupled (AdamW) or L2 (SGD) weight decay.
        batch_size: Images per step.
        label_smoothing: Cross-entropy label smoothing.
        momentum: SGD momentum (ignored by AdamW).
    """

    optimizer: str = "sgd"
    learning_rate: float = 0.05
    weight_decay: float = 5e-4
    batch_size: int = 128
    label_smoothing: float = 0.0
    momentum: float = 0.9

    def __post_init__(self) -> None:
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if not 0 < self.learning_rate < math.inf:
            raise SpecError(f"learning_rate must be > 0 and finite, but got {self.learning_rate}.")
        if not 0 <= self.weight_decay < math.inf:
            raise SpecError(f"weight_decay must be >= 0 and finite, but got {self.weight_decay}.")
        check_int("batch_size", self.batch_size, minimum=1, error=SpecError)
        if not is_rate(self.label_smoothing):
            raise SpecError(f"label_smoothing must be in [0, 1), but got {self.label_smoothing}.")
        if not is_rate(self.momentum):
            raise SpecError(f"momentum must be in [0, 1), but got {self.momentum}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hyperparameters:
        """Builds and validates hyperparameters from :meth:`to_dict` output.

        Raises:
            SpecError: On unknown keys and on impossible values.
        """
        if not isinstance(data, dict):
            raise SpecError(
                f"a Hyperparameters dict must be a dict, but got {type(data).__name__}."
            )
        known = {spec_field.name for spec_field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(
                f"unknown Hyperparameters keys {unknown}; known keys are {sorted(known)}."
            )
        return cls(**data)
