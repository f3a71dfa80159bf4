"""Pruning in multi-objective studies: stop a trial whose curve is dominated by cheaper ones.

Optuna's pruners (and ``Trial.report``/``should_prune``) do not support multi-objective
studies. In NAS the costs (parameters, MACs, latency) are known before training and only the
accuracy evolves, so a trial can be compared epoch by epoch with the trials that cost no more:

    At epoch e, a trial is *dominated* when at least ``min_dominators`` finished trials cost no
    more on every cost objective and were more accurate at the same epoch e by more than
    ``margin``. A dominated trial is pruned: however it ends, cheaper trials already beat it.

A cheap trial with a good curve is never pruned (nothing cheaper beats it), and an expensive
trial is pruned only on evidence from several cheaper trials at the same epoch.
No optuna here: the rule works on plain numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nin_search.vocabulary import PRUNER_FACTORIES

__all__ = ["CurvePoint", "DominatedPruner"]

# nin-search's defaults, with the other pruners' (the ``dominated`` entry).
_DEFAULTS = PRUNER_FACTORIES["dominated"].defaults_for(epochs=0)


@dataclass(frozen=True)
class CurvePoint:
    """One finished trial as the rule sees it: its costs and its accuracy per epoch."""

    number: int
    costs: Mapping[str, float]
    curve: Mapping[int, float]


class DominatedPruner:
    """Prunes a trial whose accuracy at an epoch is beaten by enough cheaper-or-equal trials.

    The defaults are the ``dominated`` entry of :data:`nin_search.vocabulary.PRUNER_FACTORIES`.

    Args:
        min_dominators: How many cheaper-or-equal trials must beat it at the same epoch.
        margin: By how much (accuracy, in [0, 1]) they must beat it.
        n_warmup_steps: Epochs before which nothing is pruned.
    """

    def __init__(
        self,
        *,
        min_dominators: int = _DEFAULTS["min_dominators"],
        margin: float = _DEFAULTS["margin"],
        n_warmup_steps: int = _DEFAULTS["n_warmup_steps"],
    ) -> None:
        if min_dominators < 1:
            raise ValueError(
                f"min_dominators must be >= 1, but got min_dominators={min_dominators}."
            )
        if not 0.0 <= margin < 1.0:
            raise ValueError(f"margin must be in [0, 1), but got margin={margin}.")
        if n_warmup_steps < 0:
            raise ValueError(
                f"n_warmup_steps must be >= 0, but got n_warmup_steps={n_warmup_steps}."
            )
        self.min_dominators = min_dominators
        self.margin = margin
        self.n_warmup_steps = n_warmup_steps

    def dominators(
        self,
        *,
        epoch: int,
        accuracy: float,
        costs: Mapping[str, float],
        others: Iterable[CurvePoint],
    ) -> list[int]:
        """Numbers of the finished trials that dominate this one at ``epoch``."""
        found = []
        for other in others:
            if epoch not in other.curve:
                continue
            if any(other.costs.get(name, float("inf")) > cost for name, cost in costs.items()):
                continue
            if other.curve[epoch] > accuracy + self.margin:
                found.append(other.number)
        return found

    def should_prune(
        self,
        *,
        epoch: int,
        accuracy: float,
        costs: Mapping[str, float],
        others: Iterable[CurvePoint],
    ) -> list[int] | None:
        """The dominating trials' numbers when the trial should stop, else None."""
        if epoch < self.n_warmup_steps:
            return None
        found = self.dominators(epoch=epoch, accuracy=accuracy, costs=costs, others=others)
        return found if len(found) >= self.min_dominators else None
