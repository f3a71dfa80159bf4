"""OptunaHub package ``pruners/dominated``: pruning for studies with several objectives.

A thin wrapper: the rule (:class:`DominatedPruner`, on plain numbers), its Optuna glue
(:class:`DominatedCurvePruner`) and TPE fixed for pruned multi-objective trials
(:class:`MultiObjectiveTPESampler`) live in nin-search, so this package and nin-search's own
multi-objective searches prune by the same code. See README.md.
"""

from __future__ import annotations

try:
    from nin_search.dominated import DominatedCurvePruner
    from nin_search.pruning import CurvePoint, DominatedPruner
    from nin_search.sampling import MultiObjectiveTPESampler
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "pruners/dominated needs nin-search: pip install nin-search "
        "(or pip install -r requirements.txt in this package's folder)"
    ) from error

__all__ = ["CurvePoint", "DominatedCurvePruner", "DominatedPruner", "MultiObjectiveTPESampler"]
