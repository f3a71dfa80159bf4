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

from nin_search.config import FloatRange, IntRange, SpaceConfig, TrainConfig, choices_of
from nin_search.spec import ArchSpec, Hyperparameters, StageSpec

if TYPE_CHECKING:
    import optuna

__all__ = ["baseline_params", "suggest_arch", "suggest_hyperparameters"]


def _suggest(trial: optuna.Trial, name: str, param: Any) -> Any:
    """Suggests ``name`` from a config value: scalar (fixed), list (choice) or range."""
    if isinstance(param, IntRange):
        return trial.suggest_int(name, param.low, param.high, log=param.log)
    if isinstance(param, FloatRange):
        return trial.suggest_float(name, param.low, param.high, log=param.log)
    if isinstance(param, list):
        return trial.suggest_categorical(name, param)
    return param


def _suggest_stage(
    trial: optuna.Trial, space: SpaceConfig, index: int, *, last: bool, prefix: str = ""
) -> StageSpec:
    prefix = f"{prefix}s{index}"
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


# The NIN CIFAR-10 network, per stage: kernel size, 1x1 widths relative to the conv width
# (192), and the pooling after the stage. Deeper studies repeat the last stage.
_NIN_STAGES = (
    (5, (160 / 192, 96 / 192), "max"),
    (5, (1.0, 1.0), "avg"),
    (3, (1.0,), "none"),
)
_NIN_DROPOUT = 0.5


def _nearest(param: Any, target: float) -> Any:
    """The value of a searchable ``param`` closest to ``target`` (clipped into a range)."""
    if isinstance(param, IntRange):
        return int(min(max(round(target), param.low), param.high))
    if isinstance(param, FloatRange):
        return float(min(max(target, param.low), param.high))
    if isinstance(param, list):
        return min(param, key=lambda value: (abs(value - target), value))
    return param


def _prefer(choices: Any, preferred: Any) -> Any:
    if not isinstance(choices, list):
        return choices
    return preferred if preferred in choices else choices[0]


def _middle(param: Any) -> Any:
    """The middle of a range (geometric when log-scaled) or of a sorted choice list."""
    if isinstance(param, (IntRange, FloatRange)):
        value = (param.low * param.high) ** 0.5 if param.log else (param.low + param.high) / 2
        return round(value) if isinstance(param, IntRange) else value
    if isinstance(param, list):
        ordered = sorted(param)
        return ordered[(len(ordered) - 1) // 2]
    return param


def baseline_params(space: SpaceConfig, train: TrainConfig, kind: str) -> dict[str, Any]:
    """Parameters of a reference trial inside ``space``, for ``enqueue_trial``.

    ``kind="nin"`` is the NIN-shaped network (every stage MLP conv; NIN's kernel sizes,
    1x1 depths, poolings and dropout; widths scaled to the study's width choices), and
    ``kind="plain"`` the same network with every 1x1 layer removed. Both use the same
    middle-of-the-range training hyperparameters, so they differ only in the 1x1 layers.

    Raises:
        ValueError: If ``kind`` is unknown.
    """
    if kind not in ("nin", "plain"):
        raise ValueError(f"kind must be 'nin' or 'plain', but got kind={kind!r}.")
    params: dict[str, Any] = {}
    num_stages = _nearest(space.num_stages, len(_NIN_STAGES))
    if not isinstance(space.num_stages, int):
        params["num_stages"] = num_stages
    widest = max(choices_of(space.widths))
    widest_mlp = max(choices_of(space.mlp_widths))
    for index in range(num_stages):
        kernel_size, ratios, pool = _NIN_STAGES[min(index, len(_NIN_STAGES) - 1)]
        prefix = f"s{index}"
        params[f"{prefix}_type"] = _prefer(space.stage_types, "mlp" if kind == "nin" else "plain")
        params[f"{prefix}_kernel_size"] = _nearest(space.kernel_sizes, kernel_size)
        params[f"{prefix}_width"] = _nearest(space.widths, widest)
        if params[f"{prefix}_type"] == "mlp":
            depth = _nearest(space.mlp_depth, len(ratios))
            params[f"{prefix}_mlp_depth"] = depth
            for layer in range(1, depth + 1):
                ratio = ratios[min(layer, len(ratios)) - 1]
                params[f"{prefix}_mlp{layer}_width"] = _nearest(
                    space.mlp_widths, ratio * widest_mlp
                )
        if index < num_stages - 1:
            params[f"{prefix}_pool"] = _prefer(space.pool, "max" if pool == "none" else pool)
    params["dropout"] = _nearest(space.dropout, _NIN_DROPOUT)
    params["head"] = _prefer(space.head, "nin")
    params["batch_norm"] = _prefer(space.batch_norm, False)
    params["activation"] = _prefer(space.activation, "relu")
    params["optimizer"] = _prefer(train.optimizer, "sgd")
    params["learning_rate"] = _middle(train.learning_rate)
    params["weight_decay"] = _middle(train.weight_decay)
    params["batch_size"] = _middle(train.batch_size)
    params["label_smoothing"] = _prefer(train.label_smoothing, 0.0)
    # Fixed (scalar) values are not parameters: drop them, suggest_arch fills them in.
    fixed = {
        "dropout": space.dropout,
        "learning_rate": train.learning_rate,
        "weight_decay": train.weight_decay,
        "batch_size": train.batch_size,
        "label_smoothing": train.label_smoothing,
    }
    for name, param in fixed.items():
        if not isinstance(param, (list, IntRange, FloatRange)):
            params.pop(name)
    return params
