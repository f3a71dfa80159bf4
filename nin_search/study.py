"""Storage URL, sampler, pruner, and creating/resuming/loading studies.

Nothing here writes to a database before every input has been validated: a bad storage URL,
a missing database, a study that does not exist or a changed search space raise
:class:`UserError` first.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from nin_search import __version__
from nin_search.config import OptunaConfig, StudyConfig
from nin_search.errors import UserError
from nin_search.records import (
    BASELINE,
    CREATED_BY,
    OPTUNA_ARTIFACT_PREFIX,
    REMOVED_WEIGHTS,
    SAMPLED_BY,
    WEIGHTS_ARTIFACT,
    created_by_nin_search,
    is_ablation_study_name,
)
from nin_search.space import baseline_params
from nin_search.storage import (
    check_storage_url,
    delete_trial_attrs,
    display_url,
    open_storage,
    use_wal,
)
from nin_search.vocabulary import BASELINES

__all__ = [
    "FINISHED_STATES",
    "KeepBestWeights",
    "accuracy_of",
    "artifact_dir_for",
    "baseline_trials",
    "best_trials",
    "check_storage_url",
    "check_study_name",
    "checkpoint_dir_for",
    "directions_of",
    "download_weights",
    "finished_trials",
    "forget_missing_weights",
    "is_feasible",
    "load_studies",
    "load_study",
    "make_artifact_store",
    "make_pruner",
    "make_sampler",
    "open_study",
    "optimize",
    "pick_trial",
    "prune_weights",
]

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
MAX_FAILURES_IN_A_ROW = 5  # a worker stops after this many failed trials in a row
MAX_STUDY_NAME = 200  # characters (Optuna stores up to 512)
MAX_FILE_NAME = 255  # bytes in one file name (the checkpoint folder is named after the study)
CREATION_WAIT = 10.0  # seconds to wait for a study that another process is creating


class _AccuracyDirection:
    """A view of a multi-objective study whose ``direction`` is the accuracy's."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    @property
    def direction(self) -> optuna.study.StudyDirection:
        return self._study.directions[0]


class MultiObjectiveTPESampler(optuna.samplers.TPESampler):
    """Optuna's TPE for studies with several objectives whose pruned trials have curves.

    TPE ranks pruned trials by their last intermediate value using ``study.direction``, which
    a multi-objective study does not have (Optuna never prunes those). nin-search does prune
    them (see :mod:`nin_search.pruning`), and their curves are validation accuracy, so TPE is
    shown the accuracy's direction for that ranking; nothing else changes.
    """

    def sample_relative(self, study, trial, search_space):  # type: ignore[no-untyped-def]
        return super().sample_relative(_AccuracyDirection(study), trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):  # type: ignore[no-untyped-def]
        return super().sample_independent(
            _AccuracyDirection(study), trial, param_name, param_distribution
        )


class RandomFirstSampler(optuna.samplers.BaseSampler):
    """Draws a study's first ``n_random`` trials uniformly at random, then defers to ``sampler``,
    and records on every trial how its parameters were chosen (user attr ``sampled_by``:
    ``"random"``, ``"model"`` or ``"enqueued"``).

    The random trials are the unbiased sample of the design space that the per-stage verdict
    compares plain and MLP conv on (Radosavovic et al., 2019); a model-based sampler's trials
    crowd where it already found good values and would confound that comparison. A trial
    re-queued after a crash keeps the origin of the trial it repeats.

    Args:
        sampler: The sampler for every trial after the random ones.
        n_random: How many trials of the study are drawn at random (counted over the study,
            so several workers and resumed runs share the budget).
        seed: Seed of the random draws.
    """

    def __init__(self, sampler: optuna.samplers.BaseSampler, *, n_random: int, seed: int) -> None:
        if isinstance(n_random, bool) or not isinstance(n_random, int) or n_random < 0:
            raise ValueError(f"n_random must be an integer >= 0, but got n_random={n_random!r}.")
        self.sampler = sampler
        self.n_random = n_random
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._origins: dict[int, str] = {}

    def _origin(self, study: optuna.Study, trial: FrozenTrial) -> str:
        if "fixed_params" in trial.system_attrs:
            return str(trial.user_attrs.get(SAMPLED_BY, "enqueued"))
        if isinstance(self.sampler, optuna.samplers.RandomSampler):
            return "random"
        drawn = sum(
            other.user_attrs.get(SAMPLED_BY) == "random" and other.state != TrialState.FAIL
            for other in study.get_trials(deepcopy=False)
            if other.number != trial.number
        )
        return "random" if drawn < self.n_random else "model"

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        origin = self._origin(study, trial)
        self._origins[trial._trial_id] = origin
        study._storage.set_trial_user_attr(trial._trial_id, SAMPLED_BY, origin)
        # The Trial the objective gets caches this FrozenTrial: let it see the attr too.
        trial.user_attrs[SAMPLED_BY] = origin
        self.sampler.before_trial(study, trial)

    def _drawn_at_random(self, trial: FrozenTrial) -> bool:
        return self._origins.get(trial._trial_id) == "random"

    def infer_relative_search_space(self, study, trial):  # type: ignore[no-untyped-def]
        if self._drawn_at_random(trial):
            return {}
        return self.sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):  # type: ignore[no-untyped-def]
        if self._drawn_at_random(trial):
            return {}
        return self.sampler.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):  # type: ignore[no-untyped-def]
        sampler = self._random if self._drawn_at_random(trial) else self.sampler
        return sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values):  # type: ignore[no-untyped-def]
        self._origins.pop(trial._trial_id, None)
        self.sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()
        self._random.reseed_rng()


def make_sampler(
    config: OptunaConfig, *, seed: int, multi_objective: bool = False, random_trials: int = 0
) -> optuna.samplers.BaseSampler:
    """The configured sampler, seeded, behind :class:`RandomFirstSampler` (the first
    ``random_trials`` trials at random). TPE is multivariate and grouped (the space is
    conditional) with the constant liar on (parallel workers then do not sample the same
    point)."""
    sampler: optuna.samplers.BaseSampler
    if config.sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    elif config.sampler == "nsgaii":
        sampler = optuna.samplers.NSGAIISampler(seed=seed)
    elif config.sampler == "gp":
        sampler = optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
    else:
        tpe = MultiObjectiveTPESampler if multi_objective else optuna.samplers.TPESampler
        sampler = tpe(seed=seed, multivariate=True, group=True, constant_liar=True)
    # Its own stream: TPE and GP draw their start-up trials from a RandomSampler seeded with
    # ``seed`` too, and the same seed would replay the same parameters there.
    digest = hashlib.sha256(f"{seed}|random-first".encode()).digest()
    return RandomFirstSampler(
        sampler, n_random=random_trials, seed=int.from_bytes(digest[:4], "little")
    )


def _pruner_defaults(name: str, epochs: int) -> dict[str, Any]:
    return {
        "median": {"n_startup_trials": 5, "n_warmup_steps": 2},
        "percentile": {"percentile": 25.0, "n_startup_trials": 5, "n_warmup_steps": 2},
        "hyperband": {"min_resource": 1, "max_resource": epochs, "reduction_factor": 3},
        "successive-halving": {"min_resource": 1, "reduction_factor": 3},
        "patient": {"patience": 2},
        "wilcoxon": {},
        "threshold": {},
        "none": {},
        "dominated": {},
    }[name]


def make_pruner(config: OptunaConfig, *, epochs: int) -> optuna.pruners.BasePruner:
    """The configured pruner; ``pruner_options`` override nin-search's defaults.

    Raises:
        UserError: For options the pruner does not take or values it refuses.
    """
    classes: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
        "median": optuna.pruners.MedianPruner,
        "percentile": optuna.pruners.PercentilePruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "successive-halving": optuna.pruners.SuccessiveHalvingPruner,
        "threshold": optuna.pruners.ThresholdPruner,
        "wilcoxon": optuna.pruners.WilcoxonPruner,
        "none": optuna.pruners.NopPruner,
        # Multi-objective: Optuna cannot prune there; the objective applies nin-search's
        # DominatedPruner itself (see nin_search.pruning).
        "dominated": optuna.pruners.NopPruner,
    }
    if config.pruner == "dominated":
        from nin_search.pruning import DominatedPruner

        try:
            DominatedPruner(**config.pruner_options)  # validates the options
        except (TypeError, ValueError) as error:
            raise UserError(f"optuna.pruner_options for pruner 'dominated': {error}") from None
        return optuna.pruners.NopPruner()
    options = {**_pruner_defaults(config.pruner, epochs), **config.pruner_options}
    if config.pruner == "threshold" and not {"lower", "upper"} & set(options):
        raise UserError(
            "pruner 'threshold' needs a bound: set optuna.pruner_options = { lower = 0.5 }"
        )
    try:
        if config.pruner == "patient":
            pruner = optuna.pruners.PatientPruner(optuna.pruners.MedianPruner(), **options)
        else:
            pruner = classes[config.pruner](**options)
        _rehearse(pruner, epochs=epochs)
    except (TypeError, ValueError, ZeroDivisionError, KeyError, IndexError) as error:
        raise UserError(
            f"optuna.pruner_options for pruner {config.pruner!r}: {error or type(error).__name__}"
            f" (with options {options}); see the pruner's parameters in Optuna's documentation"
        ) from None
    return pruner


def _rehearse(pruner: optuna.pruners.BasePruner, *, epochs: int) -> None:
    """Runs the pruner on a few made-up curves in memory: options that every trial would
    trip over (``max_resource = 0``, ...) fail here, before a study exists."""
    study = optuna.create_study(
        storage=optuna.storages.InMemoryStorage(), direction="maximize", pruner=pruner
    )
    for index in range(3):
        trial = study.ask()
        for epoch in range(1, epochs + 1):
            trial.report(0.1 * index + 0.01 * epoch, epoch)
            if trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, 0.1 * index + 0.01 * epochs)


def check_study_name(name: str) -> None:
    """A study name nin-search can store and name its checkpoint folder after.

    Raises:
        UserError: For an empty name, one over ``MAX_STUDY_NAME`` characters, or one whose
            checkpoint folder name would not fit in a file name.
    """
    if not name or not name.strip():
        raise UserError("the study name is empty; pass --study-name NAME")
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


def sampler_seed(study_seed: int, worker_index: int, trials_so_far: int) -> int:
    """The sampler seed of one worker's run: ``study.seed`` for the first run of a study's
    first worker, and distinct, reproducible seeds for every other worker and resumed run
    (else parallel workers and re-runs would sample the same parameters again)."""
    if worker_index == 0 and trials_so_far == 0:
        return study_seed
    digest = hashlib.sha256(f"{study_seed}|{worker_index}|{trials_so_far}".encode())
    return int.from_bytes(digest.digest()[:4], "little")


def directions_of(objectives: list[str]) -> list[str]:
    """Accuracy is maximised, every cost minimised."""
    return ["maximize" if name == "accuracy" else "minimize" for name in objectives]


def accuracy_of(trial: FrozenTrial) -> float | None:
    """A finished trial's validation accuracy (its first objective), else None."""
    return trial.values[0] if trial.values else None


def is_feasible(trial: FrozenTrial) -> bool:
    """No cost limit (``cost.max_*``) broken."""
    return not trial.user_attrs.get("constraint_violation")


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The best feasible trial, or the Pareto front (most accurate first) when the study has
    several objectives. Empty when nothing has completed."""
    if not any(
        is_feasible(t) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    ):
        return []
    if len(study.directions) == 1:
        return [study.best_trial]
    return sorted(study.best_trials, key=lambda t: (-t.values[0], t.number))


def artifact_dir_for(storage_url: str, configured: str | None = None) -> Path:
    """Where trained weights go: ``configured``, else beside the SQLite file, else ./."""
    if configured:
        return Path(configured).expanduser().resolve()
    parsed = make_url(storage_url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        database = Path(parsed.database).resolve()
        return database.with_name(f"{database.stem}-artifacts")
    return Path("nin_search-artifacts").resolve()


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


def _enqueue_baselines(study: optuna.Study, config: StudyConfig) -> None:
    for baseline in BASELINES:
        params = baseline_params(config.space, config.train, baseline)
        study.enqueue_trial(params, user_attrs={BASELINE: baseline})


def open_study(
    config: StudyConfig,
    *,
    storage_url: str,
    study_name: str,
    data_info: dict[str, Any] | None = None,
    worker_index: int = 0,
) -> optuna.Study:
    """Creates the study, or resumes it if it exists with the same search space.

    The worker that creates the study (the database's unique study name decides, so exactly
    one even when several start together) records the search space and enqueues the two
    baseline trials.

    Raises:
        UserError: For an unusable storage, or an existing study with another search space
            (nothing is written in that case).

    Args:
        config: The study config (its search space is recorded on creation).
        storage_url: An Optuna RDB URL.
        study_name: The study's name.
        data_info: ``in_channels``, ``num_classes``, ``image_size``, ``classes`` and
            ``preprocessing`` (``Preprocessing.to_dict()``) of the data, recorded on creation
            so that ``export`` and ``train`` need no study file.
        worker_index: This worker's index among those started together (seeds its sampler).
    """
    check_storage_url(storage_url, must_exist=False)
    check_study_name(study_name)
    pruner = make_pruner(config.optuna, epochs=config.train.epochs)
    storage = open_storage(storage_url, heartbeat=True)
    fingerprint = config.space_fingerprint()
    trials_so_far = 0
    if _study_exists(storage, study_name):
        _wait_until_created(storage, study_name, storage_url)
        existing = optuna.load_study(study_name=study_name, storage=storage)
        stored = existing.user_attrs
        trials_so_far = len(existing.get_trials(deepcopy=False))
        if stored.get("space") not in (None, fingerprint):
            difference = _describe_mismatch(stored["space"], fingerprint)
            raise UserError(
                f"study {study_name!r} was created with another search space ({difference}); "
                "use a new --study-name, or the original study file to resume it"
            )
    seed = sampler_seed(config.study.seed, worker_index, trials_so_far)
    sampler = make_sampler(
        config.optuna,
        seed=seed,
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
    # All or nothing: the marker goes last, and a failure on the way removes the study.
    try:
        study.set_user_attr("space", fingerprint)
        study.set_user_attr("config", config.model_dump(mode="json"))
        if data_info is not None:
            study.set_user_attr("data", data_info)
        if config.study.baselines:
            _enqueue_baselines(study, config)
        study.set_user_attr(CREATED_BY, __version__)
    except BaseException:
        with contextlib.suppress(Exception):
            optuna.delete_study(study_name=study_name, storage=storage)
        raise
    return study


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
        names = [name for name in names if not is_ablation_study_name(name)]
        if len(names) != 1:
            listed = ", ".join(names) or "none"
            raise UserError(f"pass --study-name: the storage holds these studies: {listed}")
        study_name = names[0]
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


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Completed and pruned trials (what ``--n-trials`` counts)."""
    return study.get_trials(deepcopy=False, states=FINISHED_STATES)


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
    study.optimize(
        objective,
        timeout=timeout,
        catch=(Exception,),
        callbacks=[
            optuna.study.MaxTrialsCallback(n_trials, states=FINISHED_STATES),
            _LocalQuota(remaining, max_failures=max_failures),
            *callbacks,
        ],
        gc_after_trial=False,
    )
    return len(study.get_trials(deepcopy=False)) - before


def baseline_trials(study: optuna.Study) -> dict[str, FrozenTrial]:
    """The study's reference trials by kind (``"nin"``, ``"plain"``), where they exist."""
    found: dict[str, FrozenTrial] = {}
    for trial in study.get_trials(deepcopy=False):
        kind = trial.user_attrs.get("baseline")
        if kind and kind not in found:
            found[kind] = trial
    return found


class KeepBestWeights:
    """Study callback: after every trial, keep only the best ``keep`` trials' weights."""

    def __init__(self, store: optuna.artifacts.FileSystemArtifactStore, *, keep: int) -> None:
        self.store = store
        self.keep = keep

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.COMPLETE:
            prune_weights(study, self.store, keep=self.keep)


def _forget_weights(study: optuna.Study, trial: FrozenTrial, artifact_id: str | None) -> None:
    """Removes a trial's artifact entry and ``weights_artifact`` attr: optuna-dashboard and
    ``optuna.artifacts.get_all_artifact_meta`` then list only weights that exist."""
    system_keys = [OPTUNA_ARTIFACT_PREFIX + artifact_id] if artifact_id else []
    delete_trial_attrs(
        study._storage, trial._trial_id, user_keys=[WEIGHTS_ARTIFACT], system_keys=system_keys
    )


def prune_weights(
    study: optuna.Study, store: optuna.artifacts.FileSystemArtifactStore, *, keep: int
) -> list[int]:
    """Deletes stored weights of completed trials outside the best ``keep`` (baselines stay).

    The weights file goes, and with it the trial's artifact entry (the ``artifacts:<id>``
    system attr that optuna-dashboard lists) and its ``weights_artifact`` user attr, so no
    listed artifact points at nothing. The numbers of the trials whose weights were deleted are
    recorded in the study user attr ``removed_weights`` (``download_weights`` says so).

    Returns:
        The trial numbers whose weights this call deleted.
    """
    from optuna.artifacts.exceptions import ArtifactNotFound

    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    ranked = sorted(completed, key=lambda t: t.values[0], reverse=True)
    front = {t.number for t in best_trials(study)} if len(study.directions) > 1 else set()
    already = set(study.user_attrs.get(REMOVED_WEIGHTS, []))
    removed = []
    for trial in ranked[keep:]:
        if trial.number in front:
            continue
        artifact_id = trial.user_attrs.get(WEIGHTS_ARTIFACT)
        if not artifact_id or trial.user_attrs.get("baseline") or trial.number in already:
            continue
        with contextlib.suppress(ArtifactNotFound):
            store.remove(artifact_id)
        _forget_weights(study, trial, artifact_id)
        removed.append(trial.number)
    if removed:
        study.set_user_attr(REMOVED_WEIGHTS, sorted(already | set(removed)))
    return removed


def forget_missing_weights(
    study: optuna.Study, store: optuna.artifacts.FileSystemArtifactStore
) -> list[int]:
    """Removes the artifact entries (and ``weights_artifact`` attrs) whose file is gone.

    Studies written before nin-search removed entries with the weights, and files deleted by
    hand, leave entries that optuna-dashboard lists but cannot serve (HTTP 500). This drops
    them and adds their trials to ``removed_weights``.

    Returns:
        The numbers of the trials whose entries were removed.
    """
    from optuna.artifacts.exceptions import ArtifactNotFound

    forgotten = []
    # Finished trials only: a running trial records an artifact before its file is written.
    finished = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    for trial in study.get_trials(deepcopy=False, states=finished):
        system_attrs = study._storage.get_trial_system_attrs(trial._trial_id)
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
            study._storage,
            trial._trial_id,
            user_keys=[WEIGHTS_ARTIFACT] if weights_gone else [],
            system_keys=missing,
        )
        forgotten.append(trial.number)
    if forgotten:
        already = set(study.user_attrs.get(REMOVED_WEIGHTS, []))
        study.set_user_attr(REMOVED_WEIGHTS, sorted(already | set(forgotten)))
    return forgotten


def pick_trial(study: optuna.Study, number: int | None) -> FrozenTrial:
    """Trial ``number``, or the best completed trial when ``number`` is None (with several
    objectives: the most accurate trial of the Pareto front).

    Raises:
        UserError: When the study has no completed trial, or ``number`` is not a trial of it.
    """
    trials = study.get_trials(deepcopy=False)
    if number is None:
        best = best_trials(study)
        if not best:
            raise UserError(
                f"study {study.study_name!r} has no completed trial within its limits yet; run "
                "`nin-search optimize` until one completes, or pass --trial N"
            )
        return best[0]
    if not 0 <= number < len(trials):
        raise UserError(
            f"trial {number} is out of range: study {study.study_name!r} has trials "
            f"0..{len(trials) - 1}; see `nin-search best`"
        )
    trial = trials[number]
    if "arch" not in trial.user_attrs:
        raise UserError(
            f"trial {number} has no architecture ({trial.state.name.lower()} before it was "
            "built); pick another --trial"
        )
    return trial


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
    if not artifact_id or removed:
        why = (
            "were deleted (only the best study.keep_weights are kept)"
            if removed
            else ("were never stored (only completed trials in the best study.keep_weights are)")
        )
        raise UserError(
            f"the weights of trial {trial.number} {why}; export without --weights, or retrain "
            f"it with `nin-search train --trial {trial.number}`"
        )
    try:
        optuna.artifacts.download_artifact(
            artifact_store=optuna.artifacts.FileSystemArtifactStore(str(artifact_dir)),
            file_path=str(path),
            artifact_id=artifact_id,
        )
    except ArtifactNotFound:
        raise UserError(
            f"the weights of trial {trial.number} are not in the artifact store {artifact_dir}; "
            "pass --artifacts with the folder that optimize used"
        ) from None
