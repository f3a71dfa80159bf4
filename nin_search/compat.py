"""Optuna's private API, in one place: what nin-search needs that Optuna does not publish.

Everything else goes through Optuna's public API. Each function below says which private
name it reads and why no public one serves; when Optuna changes one of them, this is the
only module to fix (checked against Optuna 4.x and 5.0).

* ``Study._storage``: ``optuna.Study`` has no public accessor for its storage. nin-search
  needs it to open a companion study in the same storage, to write attrs of trials other
  than the running one (a dead worker's), and to delete attrs (:mod:`nin_search.storage`).
* ``Trial._trial_id`` / ``FrozenTrial._trial_id``: every ``BaseStorage`` method takes the
  storage's trial id, which neither trial class publishes. The public way round
  (``storage.get_trial_id_from_study_id_trial_number``) costs a database query per call, on
  the per-epoch path of every worker; both classes have carried ``_trial_id`` since Optuna 1.
* ``Trial.storage``: set in ``Trial.__init__`` but not documented; used to record a
  multi-objective trial's curve, which ``Trial.report`` refuses.
* ``optuna.storages._rdb.models`` and ``_CachedStorage._backend``: Optuna's storages cannot
  delete an attr, so :func:`nin_search.storage.delete_trial_attrs` deletes the rows itself.

The study's id uses the public ``BaseStorage.get_study_id_from_name``.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial

__all__ = [
    "rdb_storage_of",
    "record_intermediate_value",
    "storage_of",
    "study_id_of",
    "trial_attribute_tables",
    "trial_id_of",
]


def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage ``study`` reads and writes (Optuna's cache around the RDB storage)."""
    return study._storage


def study_id_of(study: optuna.Study) -> int:
    """The study's id in its storage (as optuna-dashboard's URLs show it)."""
    return storage_of(study).get_study_id_from_name(study.study_name)


def trial_id_of(trial: optuna.Trial | FrozenTrial) -> int:
    """The trial's id in its storage (what every ``BaseStorage`` method takes)."""
    return trial._trial_id


def record_intermediate_value(trial: optuna.Trial, step: int, value: float) -> None:
    """Stores one point of ``trial``'s curve where ``Trial.report`` refuses to (a study with
    several objectives): optuna-dashboard draws it and nin-search's DominatedPruner reads it."""
    trial.storage.set_trial_intermediate_value(trial_id_of(trial), step, value)


def rdb_storage_of(storage: optuna.storages.BaseStorage) -> optuna.storages.RDBStorage | None:
    """The RDB storage under Optuna's cache (``_CachedStorage._backend``), or None when
    ``storage`` is not an RDB storage."""
    backend = getattr(storage, "_backend", storage)
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def trial_attribute_tables() -> dict[str, Any]:
    """The SQLAlchemy tables of trial attrs in an RDB storage: ``"user"`` and ``"system"``."""
    from optuna.storages._rdb import models

    return {
        "user": models.TrialUserAttributeModel.__table__,
        "system": models.TrialSystemAttributeModel.__table__,
    }
