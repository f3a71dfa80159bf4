"""What a paired ablation trains: its runs (jobs), their seeds, the trials they ablate, and the
companion study ``<name>:ablation`` they are queued in.

For each source trial (the best, or the best k) and each of its stages, three networks are
trained with the same S fresh seeds (not the searched run's: :func:`ablation_seed`): the
original, the stage flipped (MLP conv <-> plain) and the flip at the original's parameter
count (:mod:`nin_search.variants`). Everything else is the source trial's: other stages,
hyperparameters, epochs, data split. Each run is a trial of the companion study in the same
storage, naming its source trial, stage, variant and seed index in user attrs, so
optuna-dashboard shows them, and a re-run queues only what did not complete.
:mod:`nin_search.ablation` runs them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any, NamedTuple

import optuna
from optuna.trial import FixedTrial, FrozenTrial, TrialState

from nin_search import __version__, records
from nin_search.compat import storage_of
from nin_search.config import StudyConfig
from nin_search.errors import UserError, check_int
from nin_search.model import count_params
from nin_search.records import TrialRecord, ablation_study_name
from nin_search.recovery import fail_dead_local_trials
from nin_search.space import suggest_hyperparameters
from nin_search.spec import ArchSpec, Hyperparameters
from nin_search.storage import open_storage
from nin_search.trials import best_trials, is_feasible, is_searched, pick_trial
from nin_search.variants import ablation_variants

__all__ = [
    "AblationJob",
    "AblationPlan",
    "ablation_seed",
    "load_ablation_study",
    "open_ablation_study",
    "plan_ablation",
    "queue_ablation",
    "source_trials",
]


class AblationJob(NamedTuple):
    """One network of the ablation trained with one seed: one trial of the companion study."""

    source: int  # searched trial number
    stage: int  # changed stage; ORIGINAL_STAGE for the original
    variant: str  # "original", "flipped" or "matched"
    seed_index: int  # 1..S, the same for every variant (paired)
    seed: int
    arch: ArchSpec
    hparams: Hyperparameters
    also_matched: bool = False  # a flipped network that is its own matched one (none trained)

    @property
    def key(self) -> tuple[int, int, str, int]:
        return (self.source, self.stage, self.variant, self.seed_index)

    def user_attrs(self, params: int) -> dict[str, Any]:
        """The trial's user attrs (:class:`~nin_search.records.TrialRecord` fields); ``params``
        is the network's parameter count."""
        return records.user_attrs(
            ablation_source=self.source,
            ablation_stage=self.stage,
            ablation_variant=self.variant,
            ablation_seed=self.seed_index,
            seed=self.seed,
            arch=self.arch.to_dict(),
            arch_summary=self.arch.summary(),
            hparams=self.hparams.to_dict(),
            param_count=params,
            ablation_also_matched=True if self.also_matched else None,
        )


class AblationPlan(NamedTuple):
    """What an ablation run has to do: ``total`` jobs, ``done`` of them completed before,
    ``queued`` enqueued now or still waiting from an earlier run. ``others`` runs of another
    plan wait in the same queue (an earlier ``ablate --trial``/``--top`` that was stopped, or
    another machine's), of the source trials ``other_sources``: the queue is shared, so they
    are trained too."""

    total: int
    done: int
    queued: int
    others: int = 0
    other_sources: tuple[int, ...] = ()

    @property
    def to_train(self) -> int:
        """The runs waiting in the queue: this plan's and the others'."""
        return self.queued + self.others


def ablation_seed(source_seed: int, seed_index: int) -> int:
    """Seed ``seed_index`` (1..S) of a source trial's ablation, derived from the source trial's
    seed and never equal to it: the searched run itself was picked as the best on the same
    validation images, so replaying it would favour the original (the winner's curse)."""
    check_int("seed_index", seed_index, minimum=1)
    text = f"{source_seed}|ablation|{seed_index}"
    while True:
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")
        if seed != source_seed:  # a 1 in 2**32 collision: hash again
            return seed
        text += "|again"


def source_trials(study: optuna.Study, *, trial_number: int | None, top: int) -> list[FrozenTrial]:
    """The trials to ablate: ``trial_number``, else the first ``top`` completed trials within
    the study's limits, most accurate first (with several objectives: the Pareto front's trials,
    most accurate first, then the others).

    Raises:
        UserError: For a trial that does not exist or was not completed, or a study with no
            completed trial.
    """
    if trial_number is not None:
        trial = pick_trial(study, trial_number)
        record = TrialRecord.from_trial(trial)
        if not record.feasible:
            raise UserError(
                f"trial {trial_number} broke the study's cost limits ("
                f"{record.constraint_violation}) and never trained; ablate a trial within "
                "them (see `nin-search best`)"
            )
        if trial.state != TrialState.COMPLETE:
            raise UserError(
                f"trial {trial_number} did not complete ({trial.state.name.lower()}); ablate "
                "a completed trial (see `nin-search best`)"
            )
        return [trial]
    # Completed, within the limits, with a network: the best (several objectives: the Pareto
    # front, most accurate first), then the others, most accurate first.
    front = best_trials(study)
    if not front:
        pick_trial(study, None)  # raises the "no completed trial yet" error
    on_front = {trial.number for trial in front}
    rest = [
        trial
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if trial.number not in on_front and is_feasible(trial) and is_searched(trial)
    ]
    rest.sort(key=lambda trial: (-trial.values[0], trial.number))
    return [*front, *rest][:top]


def plan_ablation(
    sources: Iterable[FrozenTrial],
    config: StudyConfig,
    *,
    seeds: int,
    in_channels: int,
    num_classes: int,
) -> list[AblationJob]:
    """Every job of the ablation of ``sources``, seed index by seed index (so that an
    interrupted run has whole paired sets first).

    Raises:
        ValueError: If ``seeds`` is not an integer >= 1.
    """
    check_int("seeds", seeds, minimum=1)
    jobs = []
    for trial in sources:
        record = TrialRecord.from_trial(trial)
        arch = ArchSpec.from_dict(trial.user_attrs[records.ARCH])
        hparams = suggest_hyperparameters(FixedTrial(trial.params), config.train)
        variants = ablation_variants(arch, in_channels=in_channels, num_classes=num_classes)
        source_seed = record.seed if record.seed is not None else 0
        for seed_index in range(1, seeds + 1):
            seed = ablation_seed(source_seed, seed_index)
            jobs.extend(
                AblationJob(
                    trial.number,
                    variant.stage,
                    variant.name,
                    seed_index,
                    seed,
                    variant.arch,
                    hparams,
                    also_matched=variant.also_matched,
                )
                for variant in variants
            )
    return jobs


def _runs_only() -> dict[str, Any]:
    """The sampler and pruner of a companion study: nothing is sampled (every run is
    enqueued) and no run is pruned (each is one paired measurement)."""
    return {"sampler": optuna.samplers.RandomSampler(seed=0), "pruner": optuna.pruners.NopPruner()}


def open_ablation_study(study: optuna.Study) -> optuna.Study:
    """The companion study of ``study`` in the same storage, created when missing."""
    name = ablation_study_name(study.study_name)
    ablation = optuna.create_study(
        storage=storage_of(study),
        study_name=name,
        direction="maximize",
        load_if_exists=True,
        **_runs_only(),
    )
    if records.CREATED_BY not in ablation.user_attrs:
        ablation.set_user_attr(records.SOURCE_STUDY, study.study_name)
        ablation.set_user_attr(records.CREATED_BY, __version__)  # last: the study is complete
    return ablation


def queue_ablation(
    ablation: optuna.Study, jobs: list[AblationJob], *, in_channels: int, num_classes: int
) -> AblationPlan:
    """Enqueues the jobs that neither completed nor wait in the queue already.

    Trials of this machine whose process died are failed first, so that they are queued again.
    """
    fail_dead_local_trials(ablation)
    runs = [TrialRecord.from_trial(t) for t in ablation.get_trials(deepcopy=False)]
    done = {run.ablation_key for run in runs if run.state == TrialState.COMPLETE}
    waiting = [run for run in runs if run.state == TrialState.WAITING]
    waiting_keys = {run.ablation_key for run in waiting}
    keys = {job.key for job in jobs}
    queued = len(keys & waiting_keys)
    for job in jobs:
        if job.key in done or job.key in waiting_keys:
            continue
        params = count_params(job.arch, in_channels=in_channels, num_classes=num_classes)
        ablation.enqueue_trial({}, user_attrs=job.user_attrs(params))
        queued += 1
    others = [run for run in waiting if run.ablation_key not in keys]
    sources = {run.ablation_source for run in others}
    return AblationPlan(
        total=len(jobs),
        done=len(keys & done),
        queued=queued,
        others=len(others),
        other_sources=tuple(sorted(source for source in sources if source is not None)),
    )


def load_ablation_study(storage_url: str, name: str) -> optuna.Study:
    """The companion study ``name`` (it exists: :func:`open_ablation_study` wrote it), as an
    ablation worker opens it: with the companion's sampler and pruner, not Optuna's defaults
    (whose median pruner would prune paired runs)."""
    storage = open_storage(storage_url, heartbeat=False, create=False)
    return optuna.load_study(study_name=name, storage=storage, **_runs_only())
