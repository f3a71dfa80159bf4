"""Trained weights and mid-trial checkpoints: where they go, which are kept, how to get one.

Weights are Optuna artifacts (a ``FileSystemArtifactStore``); checkpoints sit in a folder
beside the store, one per study.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from nin_search.compat import delete_trial_attrs, storage_of, trial_id_of
from nin_search.errors import UserError
from nin_search.outputs import check_folder, check_input_folder
from nin_search.records import (
    BASELINE,
    CONSTRAINT_VIOLATION,
    OPTUNA_ARTIFACT_PREFIX,
    REMOVED_WEIGHTS,
    WEIGHTS_ARTIFACT,
    TrialRecord,
    weights_store_here,
)
from nin_search.trials import best_trials, recorded_config

__all__ = [
    "READ_ARTIFACTS_FIX",
    "KeepBestWeights",
    "artifact_dir_for",
    "check_artifact_folders",
    "checkpoint_dir_for",
    "download_weights",
    "forget_missing_weights",
    "make_artifact_store",
    "prune_weights",
    "study_artifact_dir",
    "weights_stored_elsewhere",
]

# What a command that reads stored weights says about a bad --artifact-dir.
READ_ARTIFACTS_FIX = "pass the artifact folder `nin-search optimize` wrote the weights to"


def artifact_dir_for(storage_url: str, configured: str | None = None) -> Path:
    """Where trained weights go: ``configured``, else beside the SQLite file, else ./."""
    if configured:
        return Path(configured).expanduser().resolve()
    parsed = make_url(storage_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        database = Path(parsed.database).resolve()
        return database.with_name(f"{database.stem}-artifacts")
    return Path("nin_search-artifacts").resolve()


def study_artifact_dir(study: optuna.Study, storage_url: str, artifacts: Path | None) -> Path:
    """``artifacts``, else the study's configured artifact folder, else beside the database.

    Raises:
        UserError: When ``artifacts`` (given by the user) is not an existing folder.
    """
    if artifacts is not None:
        check_input_folder("--artifact-dir", Path(artifacts), READ_ARTIFACTS_FIX)
    configured = (recorded_config(study) or {}).get("optuna", {}).get("artifact_dir")
    return artifact_dir_for(storage_url, str(artifacts) if artifacts else configured)


def check_artifact_folders(artifact_dir: Path, study_name: str) -> None:
    """Checks, before a study is written, that the artifact store and the study's checkpoint
    folder beside it exist or can be created, and can be written.

    Raises:
        UserError: For a file in their place, a missing folder to hold the store, or a folder
            that cannot be written.
    """
    check_folder("--artifact-dir", artifact_dir)
    check_folder(
        "the checkpoint folder", checkpoint_dir_for(artifact_dir, study_name), parents=True
    )


def checkpoint_dir_for(artifact_dir: Path, study_name: str) -> Path:
    """Mid-trial checkpoints, beside the artifact store (which holds only artifacts):
    ``nin_search-artifacts`` -> ``nin_search-checkpoints/<study>``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in study_name)
    if safe in (".", ".."):  # not the folder itself or its parent
        safe = safe.replace(".", "_")
    base = artifact_dir.name.removesuffix("-artifacts")
    return artifact_dir.with_name(f"{base}-checkpoints") / safe


def make_artifact_store(directory: Path) -> optuna.artifacts.FileSystemArtifactStore:
    directory.mkdir(parents=True, exist_ok=True)
    return optuna.artifacts.FileSystemArtifactStore(str(directory))


class KeepBestWeights:
    """Study callback: after every trial, keep only the best ``keep`` trials' weights (those
    in ``artifact_dir``: other machines' folders are theirs to trim)."""

    def __init__(self, artifact_dir: Path, *, keep: int) -> None:
        self.artifact_dir = artifact_dir
        self.keep = keep

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.COMPLETE:
            prune_weights(study, self.artifact_dir, keep=self.keep)


def stored_here(trial: FrozenTrial, artifact_dir: Path) -> bool:
    """Whether ``trial``'s weights were stored in ``artifact_dir`` on this machine (user attr
    ``weights_store``; trials of older versions, which lack it, count as stored here).

    Each machine searching a shared study stores weights in its own artifact folder unless
    they share one: a file missing from this folder is lost only if it was stored here.
    """
    store = TrialRecord.from_trial(trial).weights_store
    if store is None:
        return True
    here = weights_store_here(artifact_dir)
    return {key: store.get(key) for key in here} == here


def weights_stored_elsewhere(study: optuna.Study, artifact_dir: Path) -> list[str]:
    """Where the study's weights that are not in ``artifact_dir`` on this machine are:
    ``"FOLDER on HOST"`` for each other machine's (or folder's) store, in trial order."""
    places: dict[str, None] = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        record = TrialRecord.from_trial(trial)
        if record.weights_artifact is None or stored_here(trial, artifact_dir):
            continue
        store = record.weights_store or {}
        places[f"{store.get('dir')} on {store.get('host')}"] = None
    return list(places)


def _forget_weights(study: optuna.Study, trial: FrozenTrial, artifact_id: str | None) -> None:
    """Removes a trial's artifact entry and ``weights_artifact`` attr: optuna-dashboard and
    ``optuna.artifacts.get_all_artifact_meta`` then list only weights that exist."""
    system_keys = [OPTUNA_ARTIFACT_PREFIX + artifact_id] if artifact_id else []
    delete_trial_attrs(
        storage_of(study), trial_id_of(trial), user_keys=[WEIGHTS_ARTIFACT], system_keys=system_keys
    )


def prune_weights(study: optuna.Study, artifact_dir: Path, *, keep: int) -> list[int]:
    """Deletes stored weights of completed trials outside the best ``keep`` (baselines stay)
    that are in ``artifact_dir`` on this machine (:func:`stored_here`).

    The weights file goes, and with it the trial's artifact entry (the ``artifacts:<id>``
    system attr that optuna-dashboard lists) and its ``weights_artifact`` user attr, so no
    listed artifact points at nothing. The numbers of the trials whose weights were deleted are
    recorded in the study user attr ``removed_weights`` (``download_weights`` says so).

    Returns:
        The trial numbers whose weights this call deleted.
    """
    from optuna.artifacts.exceptions import ArtifactNotFound

    store = optuna.artifacts.FileSystemArtifactStore(str(artifact_dir))
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    ranked = sorted(completed, key=lambda t: t.values[0], reverse=True)
    front = {t.number for t in best_trials(study)} if len(study.directions) > 1 else set()
    already = set(study.user_attrs.get(REMOVED_WEIGHTS, []))
    removed = []
    for trial in ranked[keep:]:
        if trial.number in front:
            continue
        artifact_id = trial.user_attrs.get(WEIGHTS_ARTIFACT)
        if not artifact_id or trial.user_attrs.get(BASELINE) or trial.number in already:
            continue
        if not stored_here(trial, artifact_dir):
            continue
        with contextlib.suppress(ArtifactNotFound):
            store.remove(artifact_id)
        _forget_weights(study, trial, artifact_id)
        removed.append(trial.number)
    if removed:
        study.set_user_attr(REMOVED_WEIGHTS, sorted(already | set(removed)))
    return removed


def forget_missing_weights(study: optuna.Study, artifact_dir: Path) -> list[int]:
    """Removes the artifact entries (and ``weights_artifact`` attrs) whose file is gone from
    ``artifact_dir``, where they were stored (:func:`stored_here`).

    Studies written before nin-search removed entries with the weights, and files deleted by
    hand, leave entries that optuna-dashboard lists but cannot serve (HTTP 500). This drops
    them and adds their trials to ``removed_weights``. Weights another machine (or another
    artifact folder) stored are not lost because they are not here, and are left alone.

    Returns:
        The numbers of the trials whose entries were removed.
    """
    from optuna.artifacts.exceptions import ArtifactNotFound

    store = optuna.artifacts.FileSystemArtifactStore(str(artifact_dir))
    forgotten = []
    # Finished trials only: a running trial records an artifact before its file is written.
    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    for trial in study.get_trials(deepcopy=False, states=finished):
        if not stored_here(trial, artifact_dir):
            continue
        system_attrs = storage_of(study).get_trial_system_attrs(trial_id_of(trial))
        listed = [key for key in system_attrs if key.startswith(OPTUNA_ARTIFACT_PREFIX)]
        missing = []
        for key in listed:
            try:
                store.open_reader(key.removeprefix(OPTUNA_ARTIFACT_PREFIX)).close()
            except ArtifactNotFound:
                missing.append(key)
        weights_id = trial.user_attrs.get(WEIGHTS_ARTIFACT)
        weights_gone = weights_id is not None and OPTUNA_ARTIFACT_PREFIX + weights_id in missing
        if not missing:
            continue
        delete_trial_attrs(
            storage_of(study),
            trial_id_of(trial),
            user_keys=[WEIGHTS_ARTIFACT] if weights_gone else [],
            system_keys=missing,
        )
        forgotten.append(trial.number)
    if forgotten:
        already = set(study.user_attrs.get(REMOVED_WEIGHTS, []))
        study.set_user_attr(REMOVED_WEIGHTS, sorted(already | set(forgotten)))
    return forgotten


def download_weights(
    study: optuna.Study,
    trial: FrozenTrial,
    artifact_dir: Path,
    path: Path,
) -> None:
    """Copies a trial's trained weights from the artifact store to ``path``.

    Raises:
        UserError: When the trial has no stored weights (not completed, or outside the
            best ``keep_weights`` and deleted).
    """
    from optuna.artifacts.exceptions import ArtifactNotFound

    artifact_id = trial.user_attrs.get(WEIGHTS_ARTIFACT)
    removed = trial.number in study.user_attrs.get(REMOVED_WEIGHTS, [])
    violation = trial.user_attrs.get(CONSTRAINT_VIOLATION)
    if violation:
        raise UserError(
            f"trial {trial.number} broke the study's cost limits ({violation}) and never "
            "trained, so it has no weights; `export` without --weights writes its architecture"
        )
    if not artifact_id or removed:
        kept = (
            "the best study.keep_weights and the Pareto front are kept"
            if len(study.directions) > 1
            else "the best study.keep_weights are kept"
        )
        why = (
            f"were deleted (only {kept})"
            if removed
            else f"were never stored (only completed trials are, and of them {kept})"
        )
        raise UserError(
            f"the weights of trial {trial.number} {why}; retrain it with `nin-search train "
            f"--trial {trial.number}` and this command's --storage and --study-name (`export` "
            "without --weights writes its architecture alone)"
        )
    try:
        optuna.artifacts.download_artifact(
            artifact_store=optuna.artifacts.FileSystemArtifactStore(str(artifact_dir)),
            file_path=str(path),
            artifact_id=artifact_id,
        )
    except ArtifactNotFound:
        store = TrialRecord.from_trial(trial).weights_store
        if not stored_here(trial, artifact_dir) and store is not None:
            raise UserError(
                f"the weights of trial {trial.number} are in {store.get('dir')} on "
                f"{store.get('host')}, the artifact folder of the optimize that trained it, not "
                f"in {artifact_dir}; export there, pass --artifact-dir with a copy of that "
                "folder, or let every machine share one folder (--artifact-dir on a shared "
                "file system)"
            ) from None
        raise UserError(
            f"the weights of trial {trial.number} are not in the artifact store {artifact_dir}; "
            "pass --artifact-dir with the folder that optimize used"
        ) from None
