"""The dominated-curve rule for any Optuna study with several objectives.

Optuna's ``Trial.report`` and ``Trial.should_prune`` raise for a study with several objectives
(optuna#3450), so no Optuna pruner can stop its trials. :class:`DominatedCurvePruner` is the glue
between such a study and :class:`nin_search.pruning.DominatedPruner`, the rule on plain numbers:
it stores each step's value as the trial's intermediate value (optuna-dashboard draws it) and the
trial's costs as user attrs (a pruned trial has no objective values to read them from), reads the
study's finished trials back (:func:`nin_search.trials.curve_points`) and asks the rule.

Supported directions: the first objective is maximized (accuracy, or any score that rises as
training goes on) and every other one is minimized (costs known before training: parameters,
MACs, latency). Any other study gets a ValueError.

Samplers: Optuna's ``TPESampler`` (the default) fails once a trial of a study with several
objectives is pruned with a curve (it ranks pruned trials by ``study.direction``, which such a
study lacks); :class:`nin_search.sampling.MultiObjectiveTPESampler` is TPE with that fixed, and
``RandomSampler`` and ``NSGAIISampler`` work as they are. A study with a plain ``TPESampler`` gets
a ValueError that says so, before anything is recorded.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import optuna
from optuna.study import StudyDirection

from nin_search.compat import record_intermediate_value
from nin_search.errors import check_int
from nin_search.pruning import DominatedPruner
from nin_search.sampling import MultiObjectiveTPESampler
from nin_search.trials import curve_points
from nin_search.vocabulary import PRUNER_FACTORIES

__all__ = ["DominatedCurvePruner"]

# nin-search's defaults, the same as DominatedPruner's (the ``dominated`` entry).
_DEFAULTS = PRUNER_FACTORIES["dominated"].defaults_for(epochs=0)


def _check_directions(study: optuna.Study) -> None:
    directions = study.directions
    names = [direction.name.lower() for direction in directions]
    if len(directions) < 2:
        raise ValueError(
            f"DominatedCurvePruner is for studies with several objectives, but got directions "
            f"{names}; with one objective, use trial.report and an Optuna pruner."
        )
    if directions[0] != StudyDirection.MAXIMIZE or any(
        direction != StudyDirection.MINIMIZE for direction in directions[1:]
    ):
        raise ValueError(
            "DominatedCurvePruner needs the first objective maximized (accuracy) and every "
            f"other one minimized (costs), but got directions {names}; negate an objective "
            "to turn it round."
        )


def _check_sampler(study: optuna.Study) -> None:
    sampler = study.sampler
    if isinstance(sampler, optuna.samplers.TPESampler) and not isinstance(
        sampler, MultiObjectiveTPESampler
    ):
        raise ValueError(
            "Optuna's TPESampler fails on pruned trials of a study with several objectives; "
            "create the study with MultiObjectiveTPESampler (the same arguments), NSGAIISampler "
            "or RandomSampler."
        )


def _checked_costs(costs: Mapping[str, float]) -> dict[str, float]:
    """The costs as plain ints and floats (what user attrs store), checked."""
    if not costs:
        raise ValueError(
            "costs must name at least one cost known before training, e.g. "
            "costs={'n_params': 1234}, but got costs={}."
        )
    checked = {}
    for name, cost in costs.items():
        if isinstance(cost, bool) or not isinstance(cost, numbers.Real) or not math.isfinite(cost):
            raise ValueError(f"every cost must be a finite number, but got {name}={cost!r}.")
        checked[name] = int(cost) if isinstance(cost, numbers.Integral) else float(cost)
    return checked


class DominatedCurvePruner:
    """Stops a trial of a multi-objective study once cheaper finished trials beat it.

    At step ``e`` a trial is pruned when at least ``min_dominators`` finished (completed or
    pruned) trials cost no more on every cost and were more accurate at the same step ``e`` by
    more than ``margin``. Call :meth:`should_prune` where a single-objective objective would call
    ``trial.report`` and ``trial.should_prune``::

        pruner = DominatedCurvePruner(min_dominators=2, margin=0.01)

        def objective(trial):
            model = ...
            costs = {"n_params": count_params(model)}  # known before training
            for epoch in range(1, epochs + 1):
                accuracy = train_one_epoch(model)
                if pruner.should_prune(trial, epoch, accuracy, costs=costs):
                    raise optuna.TrialPruned()
            return accuracy, costs["n_params"]

        study = optuna.create_study(
            directions=["maximize", "minimize"], sampler=MultiObjectiveTPESampler(seed=0)
        )

    Args:
        min_dominators: How many cheaper-or-equal trials must beat it at the same step.
        margin: By how much (in the first objective's units) they must beat it.
        n_warmup_steps: Steps before which nothing is pruned.

    Raises:
        ValueError: For an option the rule refuses (quoted in the message).
    """

    def __init__(
        self,
        *,
        min_dominators: int = _DEFAULTS["min_dominators"],
        margin: float = _DEFAULTS["margin"],
        n_warmup_steps: int = _DEFAULTS["n_warmup_steps"],
    ) -> None:
        self.rule = DominatedPruner(
            min_dominators=min_dominators, margin=margin, n_warmup_steps=n_warmup_steps
        )

    def should_prune(
        self, trial: optuna.Trial, step: int, value: float, *, costs: Mapping[str, float]
    ) -> list[int] | None:
        """Records ``value`` at ``step`` and says whether the trial should stop.

        Args:
            trial: The running trial of a study with directions ``["maximize", "minimize",
                ...]``.
            step: The step (epoch) ``value`` was measured at, >= 0; trials are compared at equal
                steps.
            value: The first objective's value at ``step`` (e.g. validation accuracy). Stored as
                the trial's intermediate value, as ``trial.report`` would.
            costs: The trial's costs by name, known before training (e.g. ``{"n_params":
                1234}``); stored as user attrs of those names, where later trials read them. Pass
                the same names in every trial.

        Returns:
            The numbers of the finished trials that dominate this one when it should stop (then
            raise ``optuna.TrialPruned``), else None.

        Raises:
            ValueError: For a study with other directions or Optuna's plain TPESampler, a
                negative step, or no or non-finite costs.
        """
        _check_directions(trial.study)
        _check_sampler(trial.study)
        check_int("step", step, minimum=0)
        costs = _checked_costs(costs)
        record_intermediate_value(trial, step, float(value))
        stored = trial.user_attrs
        for name, cost in costs.items():
            if stored.get(name) != cost:
                trial.set_user_attr(name, cost)
        return self.rule.should_prune(
            epoch=step,
            accuracy=float(value),
            costs=costs,
            others=curve_points(trial.study, costs),
        )
