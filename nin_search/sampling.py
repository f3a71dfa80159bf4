"""Samplers and pruners: how a study draws its trials and stops the unpromising ones.

Optuna's samplers and pruners are built from nin-search's tables (``optuna.sampler`` and
``optuna.pruner`` name an entry); :class:`RandomFirstSampler` puts the first trials of a study
at random, and :class:`MultiObjectiveTPESampler` lets TPE learn from pruned trials of a study
with several objectives.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nin_search.compat import is_enqueued, storage_of, trial_id_of
from nin_search.config import OptunaConfig
from nin_search.errors import UserError, check_int
from nin_search.records import ENQUEUED, MODEL, RANDOM, SAMPLED_BY
from nin_search.vocabulary import PRUNER_FACTORIES, SAMPLER_FACTORIES

__all__ = [
    "MultiObjectiveTPESampler",
    "RandomFirstSampler",
    "make_pruner",
    "make_sampler",
    "patient_median_pruner",
    "resolve",
    "sampler_seed",
    "threshold_pruner",
]


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
    them (see :mod:`nin_search.dominated`), and their curves are validation accuracy, so TPE is
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
        check_int("n_random", n_random, minimum=0)
        self.sampler = sampler
        self.n_random = n_random
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._origins: dict[int, str] = {}

    def _origin(self, study: optuna.Study, trial: FrozenTrial) -> str:
        if is_enqueued(trial):
            return str(trial.user_attrs.get(SAMPLED_BY, ENQUEUED))
        if isinstance(self.sampler, optuna.samplers.RandomSampler):
            return RANDOM
        drawn = sum(
            other.user_attrs.get(SAMPLED_BY) == RANDOM and other.state != TrialState.FAIL
            for other in study.get_trials(deepcopy=False)
            if other.number != trial.number
        )
        return RANDOM if drawn < self.n_random else MODEL

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        origin = self._origin(study, trial)
        self._origins[trial_id_of(trial)] = origin
        storage_of(study).set_trial_user_attr(trial_id_of(trial), SAMPLED_BY, origin)
        # The Trial the objective gets caches this FrozenTrial: let it see the attr too.
        trial.user_attrs[SAMPLED_BY] = origin
        self.sampler.before_trial(study, trial)

    def _drawn_at_random(self, trial: FrozenTrial) -> bool:
        return self._origins.get(trial_id_of(trial)) == RANDOM

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
        self._origins.pop(trial_id_of(trial), None)
        self.sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()
        self._random.reseed_rng()


def resolve(path: str) -> Callable[..., Any]:
    """The class or function named ``"module:attribute"`` (a factory of vocabulary's tables)."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


def make_sampler(
    config: OptunaConfig, *, seed: int, multi_objective: bool = False, random_trials: int = 0
) -> optuna.samplers.BaseSampler:
    """The configured sampler (``SAMPLER_FACTORIES``), seeded, behind
    :class:`RandomFirstSampler` (the first ``random_trials`` trials at random)."""
    factory = SAMPLER_FACTORIES[config.sampler]
    path = (multi_objective and factory.multi_objective_path) or factory.path
    sampler = resolve(path)(seed=seed, **factory.defaults_for(0))
    # Its own stream: TPE and GP draw their start-up trials from a RandomSampler seeded with
    # ``seed`` too, and the same seed would replay the same parameters there.
    digest = hashlib.sha256(f"{seed}|random-first".encode()).digest()
    return RandomFirstSampler(
        sampler, n_random=random_trials, seed=int.from_bytes(digest[:4], "little")
    )


def patient_median_pruner(**options: Any) -> optuna.pruners.PatientPruner:
    """Optuna's PatientPruner around a MedianPruner (``patient`` in the study file)."""
    return optuna.pruners.PatientPruner(optuna.pruners.MedianPruner(), **options)


def threshold_pruner(**options: Any) -> optuna.pruners.ThresholdPruner:
    """Optuna's ThresholdPruner, which needs a bound (``threshold`` in the study file)."""
    if not {"lower", "upper"} & set(options):
        raise UserError(
            "pruner 'threshold' needs a bound: set optuna.pruner_options = { lower = 0.5 }"
        )
    return optuna.pruners.ThresholdPruner(**options)


def make_pruner(config: OptunaConfig, *, epochs: int) -> optuna.pruners.BasePruner:
    """The configured pruner (``PRUNER_FACTORIES``); ``pruner_options`` override its defaults.

    nin-search's own rule (``dominated``) is applied by the objective, since Optuna cannot
    prune a study with several objectives: it is built here only to check its options, and
    the study gets a NopPruner.

    Raises:
        UserError: For options the pruner does not take or values it refuses.
    """
    factory = PRUNER_FACTORIES[config.pruner]
    options = {**factory.defaults_for(epochs), **config.pruner_options}
    _check_resources(config.pruner, options, epochs=epochs)
    try:
        pruner = resolve(factory.path)(**options)
        if not isinstance(pruner, optuna.pruners.BasePruner):
            return optuna.pruners.NopPruner()
        _rehearse(pruner, epochs=epochs)
    except (TypeError, ValueError, ZeroDivisionError, KeyError, IndexError) as error:
        raise UserError(
            f"optuna.pruner_options for pruner {config.pruner!r}: {error or type(error).__name__}"
            f" (with options {options}); see the parameters of {factory.path.replace(':', '.')}"
        ) from None
    return pruner


def _check_resources(pruner: str, options: dict, *, epochs: int) -> None:
    """Hyperband's and successive halving's resources are epochs: a budget below one epoch
    would fail inside Optuna with "math domain error"; say what it means instead."""
    low, high = options.get("min_resource"), options.get("max_resource")
    if isinstance(high, int) and not isinstance(high, bool) and high < 1:
        raise UserError(
            f"optuna.pruner_options for pruner {pruner!r}: max_resource = {high} is the most "
            f"epochs a trial may train, so it must be at least 1; e.g. max_resource = {epochs}"
        )
    if isinstance(low, int) and not isinstance(low, bool) and low < 1:
        raise UserError(
            f"optuna.pruner_options for pruner {pruner!r}: min_resource = {low} is the epochs "
            "every trial trains before it may be stopped, so it must be at least 1"
        )


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


def sampler_seed(study_seed: int, worker_index: int, trials_so_far: int) -> int:
    """The sampler seed of one worker's run: ``study.seed`` for the first run of a study's
    first worker, and distinct, reproducible seeds for every other worker and resumed run
    (else parallel workers and re-runs would sample the same parameters again)."""
    if worker_index == 0 and trials_so_far == 0:
        return study_seed
    digest = hashlib.sha256(f"{study_seed}|{worker_index}|{trials_so_far}".encode())
    return int.from_bytes(digest.digest()[:4], "little")
