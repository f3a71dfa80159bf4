"""The optimizer and the learning-rate schedule of a training run, built from Hyperparameters.

Public so that a user's own training loop trains exactly as a trial does: ``build_optimizer(model,
hparams)``, then ``build_scheduler(optimizer, total_steps=...)`` stepped once per batch. No optuna.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from nin_search.config import WARMUP_FRACTION
from nin_search.errors import check_int
from nin_search.spec import Hyperparameters

__all__ = ["build_optimizer", "build_scheduler", "learning_rate_factor"]


def build_optimizer(
    model: nn.Module, hparams: Hyperparameters, *, fused: bool = False
) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum or AdamW, as ``hparams`` says.

    Args:
        model: The network whose parameters are trained.
        hparams: Optimizer name, learning rate, weight decay and momentum.
        fused: One CUDA kernel per step; GradScaler then passes it the scale and the inf flag
            instead of syncing on them every step. CUDA only.

    Returns:
        The optimizer, at the peak learning rate (the scheduler scales it).
    """
    options = {"fused": True} if fused else {}
    if hparams.optimizer == "adamw":
        return torch.optim.AdamW(
            model.parameters(),
            lr=hparams.learning_rate,
            weight_decay=hparams.weight_decay,
            **options,
        )
    return torch.optim.SGD(
        model.parameters(),
        lr=hparams.learning_rate,
        momentum=hparams.momentum,
        nesterov=hparams.momentum > 0,
        weight_decay=hparams.weight_decay,
        **options,
    )


def _warmup_cosine(total_steps: int) -> Callable[[int], float]:
    warmup = max(1, int(total_steps * WARMUP_FRACTION))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _step_decay(total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        return 0.1 ** ((step >= total_steps // 2) + (step >= 3 * total_steps // 4))

    return factor


def learning_rate_factor(schedule: str, total_steps: int) -> Callable[[int], float]:
    """The multiplier of the peak learning rate at each step (0-based) of ``total_steps``.

    Raises:
        ValueError: For a schedule that is not one of :data:`SCHEDULES`.
    """
    if schedule == "step":
        return _step_decay(total_steps)
    if schedule == "cosine":
        return _warmup_cosine(total_steps)
    raise ValueError(f"schedule must be 'cosine' or 'step', but got schedule={schedule!r}.")


def build_scheduler(
    optimizer: torch.optim.Optimizer, *, schedule: str = "cosine", total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """The per-step learning-rate schedule: call ``scheduler.step()`` after every batch.

    Args:
        optimizer: From :func:`build_optimizer`.
        schedule: ``"cosine"`` (linear warm-up over ``WARMUP_FRACTION`` of the steps, then
            cosine decay to 0) or ``"step"`` (x0.1 at 50% and 75% of the steps).
        total_steps: Batches in the whole run (steps per epoch x epochs).
    """
    check_int("total_steps", total_steps, minimum=1)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, learning_rate_factor(schedule, total_steps))
