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

from typing import TYPE_CHECKING, Any

from nin_search.config import FloatRange, IntRange, SpaceConfig, TrainConfig
from nin_search.spec import ArchSpec, Hyperparameters, StageSpec

if TYPE_CHECKING:
    import optuna

__all__ = ["suggest_arch", "suggest_hyperparameters"]


def _suggest(trial: optuna.Trial, name: str, param: Any) -> Any:
    """Suggests ``name`` from a config value: scalar (fixed), list (choice) or range."""
    if isinstance(param, IntRange):
        return trial.suggest_int(name, param.low, param.high, log=param.log)
    if isinstance(param, FloatRange):
        return trial.suggest_float(name, param.low, param.high, log=param.log)
    if isinstance(param, list):
        return trial.suggest_categorical(name, param)
    return param


def _suggest_stage(trial: optuna.Trial, space: SpaceConfig, index: int, *, last: bool) -> StageSpec:
    prefix = f"s{index}"
    kind = _suggest(trial, f"{prefix}_type", space.stage_types)
    kernel_size = _suggest(trial, f"{prefix}_kernel_size", space.kernel_sizes)
    width = _suggest(trial, f"{prefix}_width", space.widths)
    mlp_widths: list[int] = []
    if kind == "mlp":
        depth = _suggest(trial, f"{prefix}_mlp_depth", space.mlp_depth)
        mlp_widths = [
            _suggest(trial, f"{prefix}_mlp{layer}_width", space.mlp_widths)
            for layer in range(1, depth + 1)
        ]
    pool = "none" if last else _suggest(trial, f"{prefix}_pool", space.pool)
    return StageSpec(
        kind=kind, kernel_size=kernel_size, width=width, mlp_widths=tuple(mlp_widths), pool=pool
    )


def suggest_arch(trial: optuna.Trial, space: SpaceConfig) -> ArchSpec:
    """Samples one architecture from ``space``.

    Args:
        trial: An Optuna trial (or ``FixedTrial`` to replay stored params).
        space: The study's search space.

    Returns:
        A validated :class:`ArchSpec`.
    """
    num_stages = _suggest(trial, "num_stages", space.num_stages)
    stages = [
        _suggest_stage(trial, space, index, last=index == num_stages - 1)
        for index in range(num_stages)
    ]
    return ArchSpec(
        stages=tuple(stages),
        dropout=float(_suggest(trial, "dropout", space.dropout)),
        head=_suggest(trial, "head", space.head),
        batch_norm=_suggest(trial, "batch_norm", space.batch_norm),
        activation=_suggest(trial, "activation", space.activation),
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
