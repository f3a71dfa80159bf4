"""Creating, resuming and loading studies, and running their trials.

Nothing here writes to a database before every input has been validated: a bad storage URL,
a missing database, a study that does not exist or a changed search space raise
:class:`UserError` first.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.trial import FrozenTrial, TrialState

from nin_search import __version__
from nin_search.artifacts import checkpoint_dir_for
from nin_search.baselines import enqueue_baselines
from nin_search.compat import set_study_system_attr, storage_of
from nin_search.config import CREATION_WAIT, MAX_FAILURES_IN_A_ROW, MAX_STUDY_NAME, StudyConfig
from nin_search.errors import UserError
from nin_search.image_files import composed
from nin_search.interrupts import held, raise_pending
from nin_search.records import (
    ABLATION_SUFFIX,
    CONFIG,
    CREATED_BY,
    DATA,
    PREPROCESSING,
    SPACE_FINGERPRINT,
    created_by_nin_search,
    is_ablation_study_name,
    system_attr_key,
)
from nin_search.sampling import make_pruner, make_sampler, sampler_seed
from nin_search.storage import check_storage_url, open_storage, use_wal
from nin_search.storage_messages import display_url
from nin_search.trials import FINISHED_STATES, directions_of, finished_trials, recorded_space

__all__ = [
    "check_study_name",
    "data_changes",
    "load_searched_study",
    "load_studies",
    "load_study",
    "open_study",
    "optimize",
    "quiet_optuna",
    "select_studies",
]

# A limit, not a tunable default: what the checkpoint folder's name must fit (config has the
# study name's).
MAX_FILE_NAME = 255  # bytes in one file name (the checkpoint folder is named after the study)


def quiet_optuna() -> None:
    """Optuna's INFO lines and ExperimentalWarnings off in this process: nin-search prints its
    own trial lines, and the experimental features it uses (heartbeats, the retry callback,
    TPE's ``group``) are its choice, not the user's to be warned about."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def check_study_name(name: str) -> None:
    """A study name nin-search can store and name its checkpoint folder after.

    Raises:
        UserError: For an empty name, a companion ablation study's name, one over
            ``MAX_STUDY_NAME`` characters, or one whose checkpoint folder name would not fit
            in a file name.
    """
    if not name or not name.strip():
        raise UserError("the study name is empty; pass --study-name NAME")
    if is_ablation_study_name(name):
        raise UserError(
            f"the study name {name!r} ends in {ABLATION_SUFFIX!r}, which names the ablation runs "
            f"of study {name.removesuffix(ABLATION_SUFFIX)!r}; pass another --study-name"
        )
    if len(name) > MAX_STUDY_NAME:
        raise UserError(
            f"the study name is {len(name)} characters long, over {MAX_STUDY_NAME}; "
            "pass a shorter --study-name"
        )
    folder = checkpoint_dir_for(Path("x-artifacts"), name).name
    if len(folder.encode()) > MAX_FILE_NAME:
        raise UserError(
            f"the study name {name[:20]!r}... makes a checkpoint folder name of "
            f"{len(folder.encode())} bytes, over the file system's {MAX_FILE_NAME}; pass a "
            "shorter --study-name"
        )


def _not_ours(study_name: str, storage_url: str) -> UserError:
    shown = display_url(storage_url)
    return UserError(
        f"study {study_name!r} in {shown} was not created by nin-search (it has no "
        f"{CREATED_BY!r} user attr); nin-search never adopts or reads another program's study: "
        f"pass another --study-name, or delete it (optuna delete-study --study-name "
        f"'{study_name}' --storage '{shown}') if it is a leftover"
    )


def _wait_until_created(
    storage: optuna.storages.BaseStorage, study_name: str, storage_url: str
) -> None:
    """Returns once the existing study carries nin-search's marker (written last when
    nin-search creates a study; another process may be creating it right now).

    Raises:
        UserError: For a study of another program (no marker, trials beyond the queued
            ones) or one whose creation never finished within ``CREATION_WAIT``.
    """
    deadline = time.monotonic() + CREATION_WAIT
    while True:
        try:
            study_id = storage.get_study_id_from_name(study_name)
        except KeyError:
            raise UserError(
                f"study {study_name!r} was being created by another process, which failed; "
                "run the command again"
            ) from None
        if created_by_nin_search(storage.get_study_user_attrs(study_id)):
            return
        trials = storage.get_all_trials(study_id, deepcopy=False)
        being_created = all(trial.state == TrialState.WAITING for trial in trials)
        if not being_created or time.monotonic() > deadline:
            raise _not_ours(study_name, storage_url)
        time.sleep(0.2)


def _study_exists(storage: optuna.storages.BaseStorage, name: str) -> bool:
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return False
    return True


def _describe_mismatch(stored: dict, current: dict) -> str:
    for section in sorted(set(stored) | set(current)):
        old, new = stored.get(section, {}), current.get(section, {})
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return f"{section}.{key} was {old.get(key)!r}, now {new.get(key)!r}"
    return "the search space differs"


def open_study(
    config: StudyConfig,
    *,
    storage_url: str,
    study_name: str,
    data_info: dict[str, Any] | None = None,
    worker_index: int = 0,
) -> optuna.Study:
    """Creates the study, or resumes it if it exists with the same search space and data.

    The worker that creates the study (the database's unique study name decides, so exactly
    one even when several start together) records the search space and enqueues the two
    baseline trials.

    Raises:
        UserError: For an unusable storage, or an existing study with another search space
            or other data (:func:`data_changes`; nothing is written in that case).

    Args:
        config: The study config (its search space is recorded on creation).
        storage_url: An Optuna RDB URL.
        study_name: The study's name.
        data_info: :meth:`SearchData.info` of the data: recorded on creation, so that
            ``export`` and ``train`` need no study file, and compared on resume. None (a
            worker started by a process that checked it) compares nothing.
        worker_index: This worker's index among those started together (seeds its sampler).
    """
    check_storage_url(storage_url, must_exist=False)
    check_study_name(study_name)
    pruner = make_pruner(config.optuna, epochs=config.train.epochs)
    storage = open_storage(storage_url, heartbeat=True)
    trials_so_far = _trials_so_far(
        storage, config, study_name=study_name, storage_url=storage_url, data_info=data_info
    )
    sampler = make_sampler(
        config.optuna,
        seed=sampler_seed(config.study.seed, worker_index, trials_so_far),
        multi_objective=config.multi_objective,
        random_trials=config.study.random_trials,
    )
    if storage_url.startswith("sqlite"):
        use_wal(storage_url)
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=study_name,
            directions=directions_of(config.objectives),
            sampler=sampler,
            pruner=pruner,
        )
    except optuna.exceptions.DuplicatedStudyError:
        _wait_until_created(storage, study_name, storage_url)  # by a worker started with us
        return optuna.load_study(
            study_name=study_name, storage=storage, sampler=sampler, pruner=pruner
        )
    _record_creation(study, config, data_info=data_info)
    return study


def _trials_so_far(
    storage: optuna.storages.BaseStorage,
    config: StudyConfig,
    *,
    study_name: str,
    storage_url: str,
    data_info: dict[str, Any] | None = None,
) -> int:
    """The number of trials of the existing study (0 when there is none yet).

    Raises:
        UserError: For a study of another program, or one created with another search space
            or on other data (its trials would not be comparable, nor its export right).
    """
    if not _study_exists(storage, study_name):
        return 0
    _wait_until_created(storage, study_name, storage_url)
    existing = optuna.load_study(study_name=study_name, storage=storage)
    stored = recorded_space(existing)
    fingerprint = config.space_fingerprint()
    if stored is None:
        raise UserError(
            f"study {study_name!r} records no search space: `nin-search optimize` did not "
            "create it (the plugin API or a script did), and its trials would not compare with "
            "this search's; pass another --study-name"
        )
    if stored != fingerprint:
        raise UserError(
            f"study {study_name!r} was created with another search space "
            f"({_describe_mismatch(stored, fingerprint)}); use a new --study-name, or the "
            "original study file to resume it"
        )
    changes = data_changes(existing.user_attrs.get(DATA), data_info)
    if changes:
        raise UserError(
            f"study {study_name!r} was searched on other data ({'; '.join(changes)}): its "
            "trials would not compare with new ones, nor would its exports be right; use a new "
            "--study-name for this data, or restore the data to resume the study"
        )
    return len(existing.get_trials(deepcopy=False))


def data_changes(stored: dict[str, Any] | None, current: dict[str, Any] | None) -> list[str]:
    """How the data ``current`` differs from the data a study recorded (``records.DATA``), in
    words: classes, image counts, channels, image size, normalisation. Keys either side lacks
    (studies of older versions) are not compared; the channel means and standard deviations
    are compared to 1e-4, as devices sum them in different orders."""
    if not stored or not current:
        return []
    changes = []
    for key, what in (("classes", "classes"), ("num_train", "train images"),
                      ("num_val", "validation images"), ("in_channels", "channels"),
                      ("image_size", "image size")):  # fmt: skip
        if key not in stored or key not in current:
            continue
        old, new = stored[key], current[key]
        if key == "classes":  # compared as folder names are read
            old, new = list(composed(old)), list(composed(new))
        if old != new:
            changes.append(f"{what} {_shorten(old)} then, {_shorten(new)} now")
    before, now = stored.get(PREPROCESSING) or {}, current.get(PREPROCESSING) or {}
    for key, what in (("mean", "channel means"), ("std", "channel standard deviations")):
        old, new = before.get(key), now.get(key)
        if old is None or new is None:
            continue
        if len(old) != len(new) or not all(
            math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6) for a, b in zip(old, new, strict=False)
        ):
            changes.append(f"{what} {_rounded(old)} then, {_rounded(new)} now")
    return changes


def _shorten(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 120 else f"{text[:117]}..."


def _rounded(values: list[float]) -> str:
    return "[" + ", ".join(f"{value:.4f}" for value in values) + "]"


def _record_creation(
    study: optuna.Study, config: StudyConfig, *, data_info: dict[str, Any] | None
) -> None:
    """Records the new study's space, config and data, and enqueues the baselines.

    All or nothing: nin-search's marker goes last, and a failure on the way removes the study
    (so a re-run creates it afresh rather than resuming a study without its baselines).
    """
    try:
        # System attrs: kept out of the user attrs `optuna studies` and optuna-dashboard list.
        fingerprint = config.space_fingerprint()
        set_study_system_attr(study, system_attr_key(SPACE_FINGERPRINT), fingerprint)
        set_study_system_attr(study, system_attr_key(CONFIG), config.model_dump(mode="json"))
        if data_info is not None:
            study.set_user_attr(DATA, data_info)
        with warnings.catch_warnings():  # experimental in Optuna; the dashboard's axis titles
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(config.objectives))
        if config.study.baselines:
            enqueue_baselines(study, config, data_info)
        study.set_user_attr(CREATED_BY, __version__)
    except BaseException:
        with contextlib.suppress(Exception):
            optuna.delete_study(study_name=study.study_name, storage=storage_of(study))
        raise


def load_study(storage_url: str, study_name: str | None, *, read_only: bool = True) -> optuna.Study:
    """Loads an existing nin-search study; with no name, the storage's only study.

    Args:
        storage_url: An Optuna RDB URL.
        study_name: The study's name; None for the storage's only study.
        read_only: Open a SQLite storage read-only (every command but ``dashboard``, which
            writes study notes). Either way no table is ever created.

    Raises:
        UserError: For a missing, empty or foreign database, an unknown study name (the
            message lists the study names that exist), or a study nin-search did not create.
    """
    check_storage_url(storage_url, must_exist=True)
    storage = open_storage(storage_url, heartbeat=False, create=False, read_only=read_only)
    try:
        names = optuna.get_all_study_names(storage=storage)
    except sqlalchemy.exc.SQLAlchemyError as error:
        raise UserError(
            f"cannot read storage {display_url(storage_url)!r}: {error.orig or error}"
        ) from None
    if study_name is None:
        searched = [name for name in names if not is_ablation_study_name(name)]
        if not searched and names:
            raise UserError(
                f"the storage holds no searched study, only ablation runs ({', '.join(names)}) "
                "whose searched study is gone; pass --study-name to read one of them with "
                "`nin-search dashboard`, or run `nin-search optimize`"
            )
        if len(searched) != 1:
            listed = ", ".join(searched) or "none"
            raise UserError(f"pass --study-name: the storage holds these studies: {listed}")
        study_name = searched[0]
    if study_name not in names:
        listed = ", ".join(names) or "none"
        raise UserError(
            f"no study named {study_name!r} in {display_url(storage_url)}; "
            f"existing studies: {listed}"
        )
    study = optuna.load_study(study_name=study_name, storage=storage)
    if not created_by_nin_search(study.user_attrs):
        raise _not_ours(study_name, storage_url)
    return study


def load_searched_study(
    storage_url: str, study_name: str | None, *, read_only: bool = True
) -> optuna.Study:
    """A study of ``optimize`` (whose trials best, trials, report, ablate, export, train and
    predict read): :func:`load_study`, refusing a companion ablation study by name.

    Raises:
        UserError: As :func:`load_study`, and for a companion ablation study (its runs are
            variants of the searched study's trials, not a search).
    """
    if study_name is not None and is_ablation_study_name(study_name):
        searched = study_name.removesuffix(ABLATION_SUFFIX)
        raise UserError(
            f"study {study_name!r} holds the ablation runs of study {searched!r}; pass "
            f"--study-name {searched!r}"
        )
    return load_study(storage_url, study_name, read_only=read_only)


def load_studies(storage_url: str, *, read_only: bool = True) -> list[optuna.Study]:
    """Every searched study nin-search created in an existing storage (other programs' studies
    and the companion ablation studies are left out).

    Raises:
        UserError: For a missing, empty or foreign database or an unusable storage.
    """
    check_storage_url(storage_url, must_exist=True)
    storage = open_storage(storage_url, heartbeat=False, create=False, read_only=read_only)
    names = [
        study.study_name
        for study in storage.get_all_studies()
        if created_by_nin_search(study.user_attrs) and not is_ablation_study_name(study.study_name)
    ]
    return [optuna.load_study(study_name=name, storage=storage) for name in names]


class _LocalQuota:
    """Stops ``study.optimize`` after this call finished ``quota`` trials (completed or
    pruned), or after ``max_failures`` failed trials in a row (a broken setup, not one bad
    architecture)."""

    def __init__(self, quota: int, *, max_failures: int) -> None:
        self.quota = quota
        self.max_failures = max_failures
        self.finished = 0
        self.failures_in_a_row = 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state in FINISHED_STATES:
            self.finished += 1
            self.failures_in_a_row = 0
        elif trial.state == TrialState.FAIL:
            self.failures_in_a_row += 1
        if self.finished >= self.quota or self.failures_in_a_row >= self.max_failures:
            study.stop()


def select_studies(
    storage_url: str, names: Sequence[str] | None = None, *, every: bool = False
) -> list[optuna.Study]:
    """The searched studies a command reads (``report``): those ``names`` (each once), every
    one with ``every``, else the storage's only one.

    Raises:
        UserError: For names and ``every`` together, a name that is not a searched study, an
            empty storage, or several studies and neither names nor ``every``.
    """
    if names:
        if every:
            raise UserError("pass either --study-name or --all, not both")
        return [load_searched_study(storage_url, name) for name in dict.fromkeys(names)]
    studies = load_studies(storage_url)  # searched studies only
    if every:
        if not studies:
            raise UserError("the storage holds no searched study; run `nin-search optimize`")
        return studies
    if not studies:  # says why: no study, or only another program's
        return [load_searched_study(storage_url, None)]
    if len(studies) != 1:
        listed = ", ".join(study.study_name for study in studies)
        raise UserError(
            f"pass --study-name (repeat it to pool studies) or --all: the storage holds these "
            f"searched studies: {listed}"
        )
    return studies


def optimize(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    *,
    n_trials: int,
    quota: int | None = None,
    timeout: float | None = None,
    callbacks: Iterable[Callable[[optuna.Study, FrozenTrial], None]] = (),
    max_failures: int = MAX_FAILURES_IN_A_ROW,
) -> int:
    """Runs trials until the study holds ``n_trials`` finished (completed or pruned) trials.

    ``n_trials`` is the study's target, not a count for this call: re-running the same
    command after a crash or Ctrl-C runs only the missing trials. Failed trials do not count;
    a trial that raises is recorded as failed (reason in its ``fail_reason`` user attr) and
    the run goes on.

    Args:
        study: The study.
        objective: The objective.
        n_trials: The study's target number of finished trials.
        quota: At most this many finished trials in this call (one worker's share).
        timeout: Stop starting trials after this many seconds.
        callbacks: Called after every trial.
        max_failures: Stop after this many failed trials in a row.

    Returns:
        The number of trials this call ran.
    """
    remaining = n_trials - len(finished_trials(study))
    if quota is not None:
        remaining = min(remaining, quota)
    if remaining <= 0:
        return 0
    before = len(study.get_trials(deepcopy=False))
    with held():  # Ctrl-C and SIGTERM never land in Optuna's bookkeeping (nin_search.interrupts)
        study.optimize(
            objective,
            timeout=timeout,
            catch=(Exception,),
            callbacks=[
                optuna.study.MaxTrialsCallback(n_trials, states=FINISHED_STATES),
                _LocalQuota(remaining, max_failures=max_failures),
                *callbacks,
                raise_pending,  # last: the trial is recorded and its weights kept
            ],
            gc_after_trial=False,
        )
    return len(study.get_trials(deepcopy=False)) - before
