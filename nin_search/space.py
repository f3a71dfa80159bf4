"""The search space: the only module that calls ``trial.suggest_*``.

Parameter names carry the stage index, and conditional parameters exist only when used::

    num_stages                      (when searched)
    s0_type                         "plain" | "mlp"
    s0_kernel_size, s0_width
    s0_mlp_depth                    (mlp stages only)
    s0_mlp1_width .. s0_mlpN_width  (mlp stages only, N = s0_mlp_depth)
    s0_pool                         (every stage but the last)
    dropout, head, batch_norm, activation
    optimizer, learning_rate, weight_decay, batch_size, label_smoothing

Replaying a trial's params with ``optuna.trial.FixedTrial(params)`` rebuilds the same spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from nin_search.config import TrainConfig
from nin_search.config_space import NIN_REFERENCE, FloatRange, IntRange, SpaceConfig, choices_of
from nin_search.spec import ArchSpec, Hyperparameters, StageSpec
from nin_search.vocabulary import BASELINE_KINDS, BASELINES, MLP, NO_POOL, STAGE_KINDS

if TYPE_CHECKING:
    import optuna

__all__ = [
    "StageParams",
    "baseline_params",
    "stages_from_params",
    "suggest_arch",
    "suggest_hyperparameters",
]


def _suggest(trial: optuna.Trial, name: str, param: Any) -> Any:
    """Suggests ``name`` from a config value: scalar (fixed), list (choice) or range."""
    if isinstance(param, IntRange):
        return trial.suggest_int(name, param.low, param.high, log=param.log)
    if isinstance(param, FloatRange):
        return trial.suggest_float(name, param.low, param.high, log=param.log)
    if isinstance(param, list):
        return trial.suggest_categorical(name, param)
    return param


def _stage_prefix(prefix: str, index: int) -> str:
    """``"s0"`` (``"encoder_s0"`` with ``prefix="encoder_"``): the start of a stage's params."""
    return f"{prefix}s{index}"


def _suggest_stage(
    trial: optuna.Trial, space: SpaceConfig, index: int, *, last: bool, prefix: str = ""
) -> StageSpec:
    prefix = _stage_prefix(prefix, index)
    kind = _suggest(trial, f"{prefix}_type", space.stage_types)
    kernel_size = _suggest(trial, f"{prefix}_kernel_size", space.kernel_sizes)
    width = _suggest(trial, f"{prefix}_width", space.widths)
    mlp_widths: list[int] = []
    if kind == MLP:
        depth = _suggest(trial, f"{prefix}_mlp_depth", space.mlp_depth)
        mlp_widths = [
            _suggest(trial, f"{prefix}_mlp{layer}_width", space.mlp_widths)
            for layer in range(1, depth + 1)
        ]
    pool = NO_POOL if last else _suggest(trial, f"{prefix}_pool", space.pool)
    return StageSpec(
        kind=kind, kernel_size=kernel_size, width=width, mlp_widths=tuple(mlp_widths), pool=pool
    )


class StageParams(NamedTuple):
    """What a trial's params say of one stage; ``None`` where a value is not a param (fixed
    in the space) or was never suggested (the trial stopped first)."""

    kind: str
    kernel_size: int | None
    width: int | None
    mlp_widths: tuple[int | None, ...]
    pool: str | None


def stages_from_params(params: Mapping[str, Any], *, prefix: str = "") -> list[StageParams]:
    """The stages a trial's params describe, read by the names :func:`suggest_arch` gives them
    (for a trial with no stored ``arch``: one that stopped early, or a plugin study's). Stops
    at the first stage whose kind is missing.

    Args:
        params: ``trial.params``.
        prefix: The ``prefix`` that was passed to :func:`suggest_arch`.
    """
    num_stages = params.get(f"{prefix}num_stages")
    if not isinstance(num_stages, int):
        num_stages = 0
        while f"{_stage_prefix(prefix, num_stages)}_type" in params:
            num_stages += 1
    stages = []
    for index in range(num_stages):
        name = _stage_prefix(prefix, index)
        kind = params.get(f"{name}_type")
        if kind not in STAGE_KINDS:
            break
        depth = params.get(f"{name}_mlp_depth", 0) if kind == MLP else 0
        last = index == num_stages - 1
        stages.append(
            StageParams(
                kind,
                params.get(f"{name}_kernel_size"),
                params.get(f"{name}_width"),
                tuple(params.get(f"{name}_mlp{layer}_width") for layer in range(1, depth + 1)),
                params.get(f"{name}_pool", NO_POOL if last else None),
            )
        )
    return stages


def suggest_arch(trial: optuna.Trial, space: SpaceConfig, prefix: str = "") -> ArchSpec:
    """Samples one architecture from ``space``.

    Args:
        trial: An Optuna trial (or ``FixedTrial`` to replay stored params).
        space: The search space.
        prefix: Put before every parameter name (``"encoder_"`` gives ``encoder_num_stages``,
            ``encoder_s0_type``, ...), so that two networks searched in one trial do not
            share parameters. The default ``""`` gives the names nin-search's own studies use
            (the report and the CLI read those).

    Returns:
        A validated :class:`ArchSpec`.

    Raises:
        TypeError: If ``prefix`` is not a string.
    """
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a string, but got prefix={prefix!r}.")
    num_stages = _suggest(trial, f"{prefix}num_stages", space.num_stages)
    stages = [
        _suggest_stage(trial, space, index, last=index == num_stages - 1, prefix=prefix)
        for index in range(num_stages)
    ]
    return ArchSpec(
        stages=tuple(stages),
        dropout=float(_suggest(trial, f"{prefix}dropout", space.dropout)),
        head=_suggest(trial, f"{prefix}head", space.head),
        batch_norm=_suggest(trial, f"{prefix}batch_norm", space.batch_norm),
        activation=_suggest(trial, f"{prefix}activation", space.activation),
    )


def suggest_hyperparameters(trial: optuna.Trial, train: TrainConfig) -> Hyperparameters:
    """Samples the training hyperparameters of one trial."""
    return Hyperparameters(
        optimizer=_suggest(trial, "optimizer", train.optimizer),
        learning_rate=float(_suggest(trial, "learning_rate", train.learning_rate)),
        weight_decay=float(_suggest(trial, "weight_decay", train.weight_decay)),
        batch_size=_suggest(trial, "batch_size", train.batch_size),
        label_smoothing=float(_suggest(trial, "label_smoothing", train.label_smoothing)),
        momentum=train.momentum,
    )


def _resolve(param: Any, reference: Any) -> Any:
    """``reference`` made a value of the searchable ``param``: clipped into a range, itself when
    a list holds it, else the list's nearest number (its first choice when not numbers)."""
    if isinstance(param, IntRange):
        return int(min(max(round(reference), param.low), param.high))
    if isinstance(param, FloatRange):
        return float(min(max(reference, param.low), param.high))
    if reference in param:
        return param[param.index(reference)]  # the list's own value (64, not 64.0)
    if all(isinstance(value, (int, float)) for value in [reference, *param]):
        return min(param, key=lambda value: (abs(value - reference), value))
    return param[0]


def _middle(param: Any) -> Any:
    """The middle of a range (geometric when log-scaled) or of a sorted choice list."""
    if isinstance(param, (IntRange, FloatRange)):
        value = (param.low * param.high) ** 0.5 if param.log else (param.low + param.high) / 2
        return round(value) if isinstance(param, IntRange) else value
    ordered = sorted(param)
    return ordered[(len(ordered) - 1) // 2]


def _searched(param: Any) -> bool:
    """A list or a range is a parameter; a scalar is fixed (``suggest_arch`` fills it in)."""
    return isinstance(param, (list, IntRange, FloatRange))


class _Baseline:
    """The params of one baseline trial, gathered field by field; fixed fields are skipped."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def near(self, name: str, param: Any, reference: Any) -> Any:
        """Sets ``name`` to ``reference`` resolved in ``param``; returns the value used."""
        if not _searched(param):
            return param
        self.params[name] = _resolve(param, reference)
        return self.params[name]

    def middle(self, name: str, param: Any) -> None:
        if _searched(param):
            self.params[name] = _middle(param)


def _baseline_stage(
    baseline: _Baseline,
    space: SpaceConfig,
    index: int,
    *,
    kind: str,
    last: bool,
    width_scale: float,
) -> None:
    """One stage of a baseline: the reference stage (the last one repeated in deeper spaces),
    widths scaled by the space's widest over the reference's widest (times ``width_scale``)."""
    stages = NIN_REFERENCE.stages
    reference = stages[min(index, len(stages) - 1)]
    prefix = f"s{index}"
    kind = baseline.near(f"{prefix}_type", space.stage_types, kind)
    baseline.near(f"{prefix}_kernel_size", space.kernel_sizes, reference.kernel_size)
    widest = width_scale * max(choices_of(space.widths))
    widest_mlp = width_scale * max(choices_of(space.mlp_widths))
    ratio = reference.width / NIN_REFERENCE.widest
    baseline.near(f"{prefix}_width", space.widths, ratio * widest)
    if kind == MLP:
        depth = baseline.near(f"{prefix}_mlp_depth", space.mlp_depth, len(reference.mlp_widths))
        for layer in range(1, depth + 1):
            width = reference.mlp_widths[min(layer, len(reference.mlp_widths)) - 1]
            ratio = width / NIN_REFERENCE.widest
            baseline.near(f"{prefix}_mlp{layer}_width", space.mlp_widths, ratio * widest_mlp)
    if not last:
        pool = "max" if reference.pool == NO_POOL else reference.pool
        baseline.near(f"{prefix}_pool", space.pool, pool)


def baseline_params(
    space: SpaceConfig, train: TrainConfig, baseline: str, *, width_scale: float = 1.0
) -> dict[str, Any]:
    """Parameters of a reference trial inside ``space``, for ``enqueue_trial``.

    ``baseline="nin"`` is :data:`~nin_search.config_space.NIN_REFERENCE` (every stage MLP conv;
    NIN's kernel sizes, 1x1 depths, poolings and dropout; widths scaled to the study's widths),
    and ``baseline="plain"`` the same network with every 1x1 layer removed. Each field given as
    a list or range gets the reference value resolved in it (clipped into a range; the nearest
    or first choice of a list); fixed fields are not parameters. Learning rate, weight decay
    and batch size take the middle of their range, so both differ only in the 1x1 layers.
    ``width_scale`` < 1 narrows every width by that factor before it is resolved in the space
    (how a study's cost limits are met: ``baselines.baselines_within_limits``).

    Raises:
        ValueError: If ``baseline`` is unknown.
    """
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {BASELINES}, but got baseline={baseline!r}.")
    params = _Baseline()
    num_stages = params.near("num_stages", space.num_stages, len(NIN_REFERENCE.stages))
    kind = BASELINE_KINDS[baseline]
    for index in range(num_stages):
        last = index == num_stages - 1
        _baseline_stage(params, space, index, kind=kind, last=last, width_scale=width_scale)
    reference = NIN_REFERENCE
    params.near("dropout", space.dropout, reference.dropout)
    params.near("head", space.head, reference.head)
    params.near("batch_norm", space.batch_norm, reference.batch_norm)
    params.near("activation", space.activation, reference.activation)
    params.near("optimizer", train.optimizer, reference.optimizer)
    params.middle("learning_rate", train.learning_rate)
    params.middle("weight_decay", train.weight_decay)
    params.middle("batch_size", train.batch_size)
    params.near("label_smoothing", train.label_smoothing, reference.label_smoothing)
    return params.params
