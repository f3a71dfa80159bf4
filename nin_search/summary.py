"""What the CLI writes for scripts, shaped in one place: ``best --json``, ``trials``
(``--json``, ``--csv`` and the rows of its table) and ``history.json``.

One function per output; each returns plain JSON types (never NaN). Nothing here prints.
Every trial is described by :func:`trial_summary`, so ``best --json`` and ``trials --json``
use the same keys, and one word means one thing: ``hyperparameters`` are Optuna's suggested
parameters (a dict), ``num_params`` the parameter count.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nin_search.errors import UserError
from nin_search.outputs import JsonLines
from nin_search.records import BASELINE, LATENCY_MS, TrialRecord
from nin_search.trials import baseline_trials, best_trials, epochs_reached, validation_accuracy
from nin_search.vocabulary import ACCURACY, BASELINES, OBJECTIVES

__all__ = [
    "TRIAL_KEYS",
    "TRIAL_SORT_KEYS",
    "TRIAL_STATES",
    "TrialLog",
    "best_summary",
    "retrain_history",
    "trial_seconds",
    "trial_summary",
    "trials_csv",
    "trials_table",
]

# `trials --sort`: accuracy (most accurate first) or a cost (smallest first).
TRIAL_SORT_KEYS = OBJECTIVES
# `trials --state`: Optuna's trial states by their lower-case names, finished ones first.
TRIAL_STATES = {
    state.name.lower(): state
    for state in (
        TrialState.COMPLETE,
        TrialState.PRUNED,
        TrialState.FAIL,
        TrialState.RUNNING,
        TrialState.WAITING,
    )
}
# The keys of every trial object (trial_summary), in order: the columns of `trials --csv`.
TRIAL_KEYS = (
    "number",
    "state",
    "feasible",
    "constraint_violation",
    "accuracy",
    "accuracy_is_final",
    "values",
    "hyperparameters",
    "arch",
    "arch_summary",
    "num_params",
    "macs",
    "latency_ms",
    "baseline",
    "epochs",
    "seconds",
    "seed",
    "precision",
)
# The accuracy a pruned or running trial is listed by: its last reported epoch's.


def _finite(value: Any) -> float | None:
    """A finite number as a float, else ``None`` (JSON has no NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def trial_seconds(trial: FrozenTrial) -> float | None:
    """How long a finished trial ran, in seconds (0.01 s steps); ``None`` while it runs. Every
    output that shows a duration rounds this one, so the same trial reads the same."""
    duration = trial.duration
    return None if duration is None else round(duration.total_seconds(), 2)


def trial_summary(trial: FrozenTrial) -> dict[str, Any]:
    """One trial for scripts (``best --json``, ``trials --json`` and ``--csv``).

    Keys: ``number``; ``state`` (complete, pruned, fail, running, waiting); ``feasible``
    (within the study's cost limits) and ``constraint_violation`` (which limit it broke, else
    ``None``); ``accuracy`` (validation accuracy in [0, 1]: a completed trial's final value,
    a pruned or running trial's last reported epoch, ``None`` for a trial over a limit, a
    failed one or one with nothing reported) and ``accuracy_is_final`` (whether it is the
    final value of a completed trial); ``values`` (the objective values as Optuna stores them:
    an infeasible trial's are placeholders); ``hyperparameters`` (Optuna's suggested
    parameters); ``arch``, ``arch_summary``, ``num_params``, ``macs``, ``latency_ms``
    (``None`` when not recorded); ``baseline`` (``"nin"``, ``"plain"`` or ``None``);
    ``epochs`` (how many epochs it reported) and ``seconds`` (its duration; ``None`` while
    it runs); ``seed`` (its training seed) and ``precision`` (what it trained and was
    validated in: ``fp32``, ``bf16`` or ``fp16``; ``None`` when not recorded).
    """
    record = TrialRecord.from_trial(trial)
    accuracy, is_final = validation_accuracy(trial)
    return {
        "number": trial.number,
        "state": trial.state.name.lower(),
        "feasible": record.feasible,
        "constraint_violation": record.constraint_violation,
        "accuracy": accuracy,
        "accuracy_is_final": is_final,
        "values": None if trial.values is None else [_finite(value) for value in trial.values],
        "hyperparameters": dict(trial.params),
        "arch": record.arch,
        "arch_summary": record.arch_summary,
        "num_params": record.param_count,
        "macs": record.macs,
        "latency_ms": record.latency_ms,
        "baseline": record.baseline,
        "epochs": epochs_reached(trial),
        "seconds": trial_seconds(trial),
        "seed": record.seed,
        "precision": record.precision,
    }


class TrialLog:
    """The newly finished trials of a study, each once, appended to a JSON-lines file
    (``--log-file``: the :func:`trial_summary` keys plus ``study``) when ``path`` is given.

    Call :meth:`update` as often as wanted (e.g. as ``run_search``'s ``on_trial`` and
    ``on_poll``): it returns (and writes) the trials finished since the last call, in trial
    order; trials finished before the log was made are not. Close it at the end::

        log = TrialLog(study, plan.log_file)
        try:
            run_search(plan, study, data, on_trial=lambda s, _: log.update(s), on_poll=log.update)
            log.update(study)
        finally:
            log.close()
    """

    def __init__(self, study: optuna.Study, path: Path | None) -> None:
        self._lines = None if path is None else JsonLines(path)
        self._seen = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}

    def update(self, study: optuna.Study) -> list[FrozenTrial]:
        """Writes the trials that finished since the last call; returns them, in order."""
        new = sorted(
            (
                trial
                for trial in study.get_trials(deepcopy=False)
                if trial.state.is_finished() and trial.number not in self._seen
            ),
            key=lambda trial: trial.number,
        )
        for trial in new:
            self._seen.add(trial.number)
            if self._lines is not None:
                self._lines.write({"study": study.study_name, **trial_summary(trial)})
        return new

    def close(self) -> None:
        if self._lines is not None:
            self._lines.close()


def _optional_summary(trial: FrozenTrial | None) -> dict[str, Any] | None:
    return None if trial is None else trial_summary(trial)


def _plain(value: Any) -> Any:
    """The analysis's named tuples as JSON types: dicts, lists, finite floats (EDF curves,
    which are figure data, left out)."""
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {key: _plain(item) for key, item in value._asdict().items() if key != "curves"}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if isinstance(value, float):
        return _finite(value)
    return value


def _verdict(study: optuna.Study, where: str) -> dict[str, Any]:
    """The answer per stage (:func:`nin_search.analysis.get_answer`), structured, and its
    lines as ``optimize`` and ``report`` print them."""
    # Imported here: the analysis loads SciPy (about 1 s), which only the verdict needs.
    from nin_search import analysis

    answer = analysis.get_answer(study, analysis.find_ablation_study(study), where=where)
    return {
        "confidence": answer.confidence,
        "has_ablation_study": answer.has_ablation_study,
        "stages": _plain(answer.stages),
        "lines": analysis.answer_lines(answer),
    }


def best_summary(study: optuna.Study, *, where: str = "") -> dict[str, Any]:
    """``nin-search best --json``: trial counts per state, the best trial (the Pareto front
    with several objectives), both baselines (each a :func:`trial_summary`) and the verdict:
    the answer per stage, structured (``stages``) and in words (``lines``; ``where``: the
    study's options for the commands it suggests)."""
    trials = study.get_trials(deepcopy=False)
    front = best_trials(study)
    baselines = baseline_trials(study)
    return {
        "study": study.study_name,
        "trials": {
            state.name.lower(): sum(t.state == state for t in trials) for state in TrialState
        },
        "best": _optional_summary(front[0] if front else None),
        "pareto_front": [trial_summary(trial) for trial in front],
        "baselines": {kind: _optional_summary(baselines.get(kind)) for kind in BASELINES},
        "verdict": _verdict(study, where),
    }


def _parse_states(states: Sequence[str] | None) -> tuple[TrialState, ...]:
    if states is None:
        return tuple(TRIAL_STATES.values())
    names = [name.strip().lower() for name in states]
    unknown = [name for name in names if name not in TRIAL_STATES]
    if unknown or not names:
        raise UserError(
            f"--state takes a comma-separated list of {', '.join(TRIAL_STATES)}, but got "
            f"{','.join(states)!r}"
            + (f" ({', '.join(map(repr, unknown))} unknown)" if unknown else "")
        )
    return tuple(TRIAL_STATES[name] for name in dict.fromkeys(names))


def _row_key(sort: str) -> str:
    """The key of a :func:`trial_summary` row that ``--sort`` names (``params``: ``num_params``)."""
    return "num_params" if sort == "params" else sort


def _sort_key(sort: str, *, maximize: bool = True) -> Any:
    """Rows with the value first (accuracy: best first, as the study's first direction says,
    as ``best`` picks; a cost: smallest first), then rows without it; ties by trial number."""
    name = _row_key(sort)
    sign = -1 if sort == "accuracy" and maximize else 1
    return lambda row: (
        row[name] is None,
        0 if row[name] is None else sign * row[name],
        row["number"],
    )


def trials_table(
    study: optuna.Study,
    *,
    top: int | None = None,
    sort: str = "accuracy",
    states: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """``nin-search trials``: the leaderboard, one :func:`trial_summary` per trial.

    Args:
        study: A nin-search study.
        top: Keep the first ``top`` rows (>= 1); ``None`` for all.
        sort: One of TRIAL_SORT_KEYS: ``accuracy`` (highest first; pruned and running trials
            by their last reported epoch) or a cost, ``params``, ``macs`` or ``latency_ms``
            (smallest first). Rows without the value come last; ties go by trial number.
        states: Keep trials in these states (names of TRIAL_STATES); ``None`` for all.

    Raises:
        UserError: For an unknown sort key or state, ``top`` < 1, or a sort by a cost no
            trial has (latency, in a study that never measured it).
    """
    if sort not in TRIAL_SORT_KEYS:
        raise UserError(f"--sort must be one of {', '.join(TRIAL_SORT_KEYS)}, but got {sort!r}")
    if top is not None and top < 1:
        raise UserError(f"--top must be at least 1, but got {top}")
    wanted = _parse_states(states)
    rows = [trial_summary(trial) for trial in study.get_trials(deepcopy=False, states=wanted)]
    if sort != ACCURACY and rows and all(row[_row_key(sort)] is None for row in rows):
        raise UserError(
            f"no trial of study {study.study_name!r} has {sort}: latency is measured only when "
            "it is an objective or a limit (study.objectives, cost.max_latency_ms); sort by "
            "accuracy, params or macs"
            if sort == LATENCY_MS
            else f"no trial of study {study.study_name!r} has {sort}; sort by accuracy"
        )
    maximize = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    rows.sort(key=_sort_key(sort, maximize=maximize))
    return rows if top is None else rows[:top]


def trials_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`trials_table` as CSV (the csv module's dialect, ``\\n`` line ends):
    a header of the :func:`trial_summary` keys, then one line per trial; ``values``,
    ``hyperparameters`` and ``arch`` as compact JSON, ``None`` as an empty field."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=TRIAL_KEYS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: _csv_value(row[name]) for name in TRIAL_KEYS})
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return value


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
        "precision": result.precision,
        "num_train": result.num_train,
        "num_test": result.num_test,
        "search_val_accuracy": validation_accuracy(trial)[0],
        "test_accuracy": result.test_accuracy,
        "test_correct": result.test_correct,
        "classes": list(result.classes),
        "preprocessing": result.preprocessing.to_dict(),
        "history": result.history_dicts(),
    }
