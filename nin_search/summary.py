"""What the CLI writes for scripts, shaped in one place: ``best --json`` and ``history.json``.

One function per output; each returns plain JSON types. Nothing here prints.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nin_search.records import BASELINE, TrialRecord
from nin_search.trials import accuracy_of, baseline_trials, best_trials

__all__ = ["best_summary", "retrain_history"]


def _trial_summary(trial: FrozenTrial | None) -> dict[str, Any] | None:
    if trial is None:
        return None
    record = TrialRecord.from_trial(trial)
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "values": trial.values,
        "accuracy": accuracy_of(trial),
        "params": trial.params,
        "arch": record.arch,
        "arch_summary": record.arch_summary,
        "num_params": record.param_count,
        "macs": record.macs,
        "latency_ms": record.latency_ms,
    }


def best_summary(study: optuna.Study) -> dict[str, Any]:
    """``nin-search best --json``: trial counts per state, the best trial (the Pareto front
    with several objectives) and both baselines."""
    trials = study.get_trials(deepcopy=False)
    front = best_trials(study)
    baselines = baseline_trials(study)
    return {
        "study": study.study_name,
        "trials": {
            state.name.lower(): sum(t.state == state for t in trials) for state in TrialState
        },
        "best": _trial_summary(front[0] if front else None),
        "pareto_front": [_trial_summary(trial) for trial in front],
        "baselines": {kind: _trial_summary(baselines.get(kind)) for kind in ("nin", "plain")},
    }


def retrain_history(
    study_name: str,
    trial: FrozenTrial,
    result: Any,
    *,
    spec: Any,
    hyperparameters: Any,
    epochs: int,
    schedule: str,
    seed: int,
) -> dict[str, Any]:
    """``history.json`` of ``nin-search train``: what was retrained, how, and how well.

    Args:
        study_name: The study the trial belongs to.
        trial: The retrained trial.
        result: The :class:`nin_search.retrain.RetrainResult`.
        spec: The trial's :class:`~nin_search.spec.ArchSpec`.
        hyperparameters: Its :class:`~nin_search.spec.Hyperparameters`.
        epochs: Epochs trained.
        schedule: The learning-rate schedule.
        seed: The seed used.
    """
    return {
        "study": study_name,
        "trial": trial.number,
        "baseline": trial.user_attrs.get(BASELINE),
        "arch": spec.to_dict(),
        "arch_summary": spec.summary(),
        "hyperparameters": hyperparameters.to_dict(),
        "epochs": epochs,
        "schedule": schedule,
        "seed": seed,
        "num_train": result.num_train,
        "num_test": result.num_test,
        "search_val_accuracy": accuracy_of(trial),
        "test_accuracy": result.test_accuracy,
        "test_correct": result.test_correct,
        "classes": list(result.classes),
        "preprocessing": result.preprocessing.to_dict(),
        "history": result.history_dicts(),
    }
