"""Optuna's private API, in one place: what nin-search needs that Optuna does not publish.

Everything else goes through Optuna's public API. Each function below says which private
name it reads and why no public one serves; when Optuna changes one of them, this is the
only module to fix (checked against Optuna 4.x and 5.0).

* ``Study._storage``: ``optuna.Study`` has no public accessor for its storage. nin-search
  needs it to open a companion study in the same storage, to write attrs of trials other
  than the running one (a dead worker's), to delete attrs (:func:`delete_trial_attrs`), and
  to read and write study system attrs (Optuna 5 removed ``Study.system_attrs`` and
  ``Study.set_system_attr``; the storage's methods for them are public).
* ``Trial._trial_id`` / ``FrozenTrial._trial_id``: every ``BaseStorage`` method takes the
  storage's trial id, which neither trial class publishes. The public way round
  (``storage.get_trial_id_from_study_id_trial_number``) costs a database query per call, on
  the per-epoch path of every worker; both classes have carried ``_trial_id`` since Optuna 1.
* ``Trial.storage``: set in ``Trial.__init__`` but not documented; used to record a
  multi-objective trial's curve, which ``Trial.report`` refuses.
* ``optuna.storages._rdb.models`` and ``_CachedStorage._backend``: Optuna's storages cannot
  delete an attr, so :func:`delete_trial_attrs` deletes the rows itself.
* Trial system attrs Optuna writes for itself: ``failed_trial`` (the trial a heartbeat retry
  repeats; ``RetryFailedTrialCallback.retried_trial_number`` reads it but is experimental and
  warns on every call), ``fail_reason`` (why an objective's exception failed a trial) and
  ``fixed_params`` (set by ``enqueue_trial``): :func:`optuna_retried_trial`,
  :func:`optuna_fail_reason`, :func:`is_enqueued`.

* The trial system attr ``constraints`` (a list): how Optuna before 5.0 stored constraints,
  and the only form optuna-dashboard (0.21) reads; Optuna 5's ``Trial.set_constraint``
  stores ``constraints:<name>``, which the dashboard ignores, drawing trials over a cost
  limit as feasible. :func:`set_constraints` writes both.

The study's id uses the public ``BaseStorage.get_study_id_from_name``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import optuna
import sqlalchemy
from optuna.trial import FrozenTrial

__all__ = [
    "OPTUNA_SCHEMA_TABLES",
    "delete_trial_attrs",
    "is_enqueued",
    "optuna_fail_reason",
    "optuna_retried_trial",
    "pareto_front",
    "record_intermediate_value",
    "set_constraints",
    "set_study_system_attr",
    "storage_of",
    "study_id_of",
    "study_system_attrs",
    "trial_id_of",
]


def _schema_tables() -> frozenset[str]:
    from optuna.storages._rdb import models

    return frozenset(models.BaseModel.metadata.tables)


# Every table of Optuna's RDB schema (this Optuna version's models): a database holding only
# some of them is an Optuna storage that another process is still creating.
OPTUNA_SCHEMA_TABLES = _schema_tables()


def optuna_retried_trial(trial: FrozenTrial) -> int | None:
    """The trial Optuna's heartbeat retry (``RetryFailedTrialCallback``) repeats, if any."""
    return trial.system_attrs.get("failed_trial")


def optuna_fail_reason(trial: FrozenTrial) -> str | None:
    """Why Optuna failed the trial (the objective's exception, in words), if it says."""
    return trial.system_attrs.get("fail_reason")


def is_enqueued(trial: FrozenTrial) -> bool:
    """Whether the trial's parameters came from ``enqueue_trial`` (not from the sampler)."""
    return "fixed_params" in trial.system_attrs


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage ``study`` reads and writes (Optuna's cache around the RDB storage)."""
    return study._storage


def study_id_of(study: optuna.Study) -> int:
    """The study's id in its storage (as optuna-dashboard's URLs show it)."""
    return storage_of(study).get_study_id_from_name(study.study_name)


def study_system_attrs(study: optuna.Study) -> dict[str, Any]:
    """The study's system attrs (``BaseStorage.get_study_system_attrs``)."""
    return storage_of(study).get_study_system_attrs(study_id_of(study))


def set_study_system_attr(study: optuna.Study, key: str, value: Any) -> None:
    """Stores one study system attr (``BaseStorage.set_study_system_attr``); ``value`` must be
    JSON-serializable."""
    storage_of(study).set_study_system_attr(study_id_of(study), key, value)


def trial_id_of(trial: optuna.Trial | FrozenTrial) -> int:
    """The trial's id in its storage (what every ``BaseStorage`` method takes)."""
    return trial._trial_id


def pareto_front(
    trials: Sequence[FrozenTrial], directions: Sequence[optuna.study.StudyDirection]
) -> list[FrozenTrial]:
    """The trials none of ``trials`` dominates: ``Study.best_trials`` over a chosen subset
    (Optuna's own rule, which has no public form that takes the trials)."""
    from optuna.study._multi_objective import _get_pareto_front_trials_by_trials

    return _get_pareto_front_trials_by_trials(trials, directions)


def set_constraints(trial: optuna.Trial, constraints: dict[str, float]) -> None:
    """Records each constraint (<= 0 is feasible) with ``Trial.set_constraint`` under its name,
    and the values again as the list optuna-dashboard reads, so that it marks a trial over a
    limit infeasible. Optuna reads both (``FrozenTrial.constraints`` then holds each value
    twice, under its name and its index: the same feasibility, every violation doubled)."""
    for name, value in constraints.items():
        trial.set_constraint(name, float(value))
    values = [float(value) for value in constraints.values()]
    trial.storage.set_trial_system_attr(trial_id_of(trial), "constraints", values)


def record_intermediate_value(trial: optuna.Trial, step: int, value: float) -> None:
    """Stores one point of ``trial``'s curve where ``Trial.report`` refuses to (a study with
    several objectives): optuna-dashboard draws it and nin-search's DominatedPruner reads it."""
    trial.storage.set_trial_intermediate_value(trial_id_of(trial), step, value)


def delete_trial_attrs(
    storage: optuna.storages.BaseStorage,
    trial_id: int,
    *,
    user_keys: Iterable[str] = (),
    system_keys: Iterable[str] = (),
) -> None:
    """Deletes user and system attrs of a trial, finished or not (RDB storages).

    Optuna's API never changes a finished trial and cannot delete an attr at all (its
    storages cache finished trials), so the rows go straight from the RDB tables, in one
    transaction. A process that cached the trial earlier keeps its copy until it reloads the
    study; readers that load it afresh (every nin-search command, optuna-dashboard within
    seconds) no longer see the attrs.

    Args:
        storage: The study's storage (an ``RDBStorage``, or Optuna's cache around one).
        trial_id: The trial's storage id (:func:`trial_id_of`).
        user_keys: User attr keys to delete (missing ones are ignored).
        system_keys: System attr keys to delete (missing ones are ignored).

    Raises:
        TypeError: For a storage that is not an RDB storage.
    """
    from optuna.storages._rdb import models

    backend = getattr(storage, "_backend", storage)  # under Optuna's cache
    if not isinstance(backend, optuna.storages.RDBStorage):
        raise TypeError(f"delete_trial_attrs needs an RDBStorage, but got {storage!r}.")
    with backend.engine.begin() as connection:
        for model, keys in (
            (models.TrialUserAttributeModel, list(user_keys)),
            (models.TrialSystemAttributeModel, list(system_keys)),
        ):
            table = model.__table__
            if keys:
                connection.execute(
                    sqlalchemy.delete(table).where(
                        table.c.trial_id == trial_id, table.c.key.in_(keys)
                    )
                )
