import typing

from nin_search import records, study_template, summary, vocabulary
from nin_search.cli import _common
from nin_search.config import (
    NATIVE_IMAGE_SIZES,
    CostConfig,
    DataConfig,
    SpaceConfig,
    StudySection,
    TrainConfig,
)
from nin_search.export._network import ACTIVATION_CODE, ACTIVATION_NAMES, HEAD_DOCS, POOL_CODE
from nin_search.layers import ACTIVATION_MODULES
from nin_search.report import _plot


def _accepted(model: type, field: str) -> tuple:
    """The names a config field accepts (a Literal, or a list of a Literal)."""
    annotation = model.model_fields[field].annotation
    while typing.get_origin(annotation) is not typing.Literal:
        annotation = typing.get_args(annotation)[0]
    return typing.get_args(annotation)


def test_the_study_file_accepts_exactly_the_vocabulary():
    assert _accepted(SpaceConfig, "stage_types") == vocabulary.STAGE_KINDS
    assert _accepted(SpaceConfig, "pool") == vocabulary.POOLS
    assert _accepted(SpaceConfig, "head") == vocabulary.HEADS
    assert _accepted(SpaceConfig, "activation") == vocabulary.ACTIVATIONS
    assert _accepted(TrainConfig, "optimizer") == vocabulary.OPTIMIZERS
    assert _accepted(DataConfig, "dataset") == vocabulary.DATASETS
    assert _accepted(StudySection, "objectives") == vocabulary.OBJECTIVES


def test_every_mapping_from_a_choice_is_keyed_by_the_vocabulary():
    assert set(ACTIVATION_MODULES) == set(vocabulary.ACTIVATIONS)
    assert set(ACTIVATION_CODE) == set(ACTIVATION_NAMES) == set(vocabulary.ACTIVATIONS)
    assert set(POOL_CODE) == set(vocabulary.POOLS)
    assert set(HEAD_DOCS) == set(vocabulary.HEADS)
    assert set(NATIVE_IMAGE_SIZES) == set(vocabulary.DATASETS)
    assert set(study_template._AUGMENT) == set(vocabulary.DATASETS)
    assert set(_common._ORDER) == set(summary.TRIAL_SORT_KEYS) == set(vocabulary.OBJECTIVES)
    assert set(_plot._COST_LABELS) == set(records.COSTS) == set(vocabulary.OBJECTIVES[1:])
    assert set(CostConfig().limits) <= set(records.COSTS)


def test_kernel_sizes_and_rates_follow_one_rule():
    assert [size for size in range(-1, 8) if vocabulary.is_odd_kernel_size(size)] == [1, 3, 5, 7]
    assert [vocabulary.is_rate(rate) for rate in (0.0, 0.5, 1.0, -0.1, float("nan"))] == [
        True,
        True,
        False,
        False,
        False,
    ]
