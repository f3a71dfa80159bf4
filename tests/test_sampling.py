"""Samplers and pruners: every entry of vocabulary's tables is built, and config accepts
exactly their names."""

from __future__ import annotations

import typing

import optuna
import pytest

from nin_search.config import PRUNERS, SAMPLERS, OptunaConfig, StudyConfig
from nin_search.pruning import DominatedPruner
from nin_search.sampling import (
    MultiObjectiveTPESampler,
    RandomFirstSampler,
    make_pruner,
    make_sampler,
    resolve,
)
from nin_search.vocabulary import PRUNER_FACTORIES, SAMPLER_FACTORIES, Factory

# Options a pruner cannot do without (nin-search has no default for them).
REQUIRED_OPTIONS = {"threshold": {"lower": 0.1}}


def test_config_accepts_exactly_the_names_of_the_tables():
    assert set(SAMPLERS) == set(SAMPLER_FACTORIES)
    assert set(PRUNERS) == set(PRUNER_FACTORIES)
    assert set(typing.get_args(OptunaConfig.model_fields["sampler"].annotation)) == set(SAMPLERS)
    assert set(typing.get_args(OptunaConfig.model_fields["pruner"].annotation)) == set(PRUNERS)


@pytest.mark.parametrize("name", sorted(SAMPLER_FACTORIES))
@pytest.mark.parametrize("multi_objective", [False, True])
def test_every_sampler_entry_is_built_behind_the_random_first_sampler(name, multi_objective):
    sampler = make_sampler(OptunaConfig(sampler=name), seed=3, multi_objective=multi_objective)
    assert isinstance(sampler, RandomFirstSampler)
    assert isinstance(sampler.sampler, optuna.samplers.BaseSampler)
    factory = SAMPLER_FACTORIES[name]
    path = (multi_objective and factory.multi_objective_path) or factory.path
    assert type(sampler.sampler) is resolve(path)


def test_tpe_of_a_study_with_several_objectives_ranks_pruned_trials_by_accuracy():
    sampler = make_sampler(OptunaConfig(sampler="tpe"), seed=0, multi_objective=True)
    assert isinstance(sampler.sampler, MultiObjectiveTPESampler)


@pytest.mark.parametrize("name", sorted(PRUNER_FACTORIES))
def test_every_pruner_entry_is_built_with_its_defaults(name):
    config = OptunaConfig(pruner=name, pruner_options=REQUIRED_OPTIONS.get(name, {}))
    assert isinstance(make_pruner(config, epochs=4), optuna.pruners.BasePruner)
    built = resolve(PRUNER_FACTORIES[name].path)(
        **PRUNER_FACTORIES[name].defaults_for(4), **REQUIRED_OPTIONS.get(name, {})
    )
    assert built is not None


def test_the_dominated_rule_is_applied_by_the_objective_and_the_study_gets_no_pruner():
    assert isinstance(
        make_pruner(OptunaConfig(pruner="dominated"), epochs=3), optuna.pruners.NopPruner
    )
    rule = DominatedPruner()
    defaults = PRUNER_FACTORIES["dominated"].defaults_for(3)
    assert (rule.min_dominators, rule.margin, rule.n_warmup_steps) == (
        defaults["min_dominators"],
        defaults["margin"],
        defaults["n_warmup_steps"],
    )


def test_a_multi_objective_study_accepts_dominated_and_a_single_objective_one_refuses_it():
    StudyConfig.model_validate(
        {"study": {"objectives": ["accuracy", "params"]}, "optuna": {"pruner": "dominated"}}
    )
    with pytest.raises(Exception, match="'dominated' is for multi-objective"):
        StudyConfig.model_validate({"optuna": {"pruner": "dominated"}})


def test_hyperband_defaults_follow_the_epochs_per_trial():
    assert PRUNER_FACTORIES["hyperband"].defaults_for(7)["max_resource"] == 7


def test_a_factory_path_names_a_module_and_an_attribute():
    with pytest.raises(ValueError, match="path='optuna.pruners.MedianPruner'"):
        Factory("optuna.pruners.MedianPruner")
