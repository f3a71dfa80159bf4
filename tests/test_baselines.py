"""The baseline trials a new study enqueues: the reference network resolved in any space."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest

from nin_search import suggest_arch, suggest_hyperparameters
from nin_search.config import StudyConfig
from nin_search.config_space import FloatRange, IntRange
from nin_search.space import baseline_params
from nin_search.study import open_study

RANGED = StudyConfig.model_validate(
    {
        "study": {"name": "ranged"},
        "space": {
            "num_stages": {"low": 2, "high": 3},
            "widths": {"low": 8, "high": 24},
            "mlp_depth": [1, 3],
            "mlp_widths": {"low": 4, "high": 12, "log": True},
            "dropout": {"low": 0.1, "high": 0.3},
        },
        "train": {
            "learning_rate": {"low": 0.01, "high": 0.1, "log": True},
            "weight_decay": [1e-4, 1e-3],
            "batch_size": {"low": 16, "high": 64},
            "label_smoothing": {"low": 0.05, "high": 0.2},
            "device": "cpu",
        },
        "optuna": {"pruner": "none"},
    }
)
FIXED = StudyConfig.model_validate(
    {
        "study": {"name": "fixed"},
        "space": {"widths": 32, "mlp_depth": 2, "mlp_widths": 16, "dropout": 0.2},
        "train": {"label_smoothing": 0.1, "batch_size": 64, "device": "cpu"},
        "optuna": {"pruner": "none"},
    }
)


def _space_of(config: StudyConfig, name: str) -> object:
    """The searchable value a param name is drawn from (``s1_mlp2_width`` -> mlp_widths)."""
    field = name.split("_", 1)[1] if name.startswith("s") and name[1].isdigit() else name
    field = "mlp_widths" if field.startswith("mlp") and field.endswith("_width") else field
    field = {"type": "stage_types", "kernel_size": "kernel_sizes", "width": "widths"}.get(
        field, field
    )
    return getattr(config.space, field, None) or getattr(config.train, field)


def _inside(value: object, param: object) -> bool:
    if isinstance(param, (IntRange, FloatRange)):
        return param.low <= value <= param.high and (
            isinstance(param, FloatRange) or isinstance(value, int)
        )
    return value in param


def _waiting(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(states=(optuna.trial.TrialState.WAITING,))


def test_a_study_with_ranged_hyperparameters_enqueues_json_baselines_inside_its_space(tmp_path):
    storage = f"sqlite:///{tmp_path / 'r.db'}"
    study = open_study(RANGED, storage_url=storage, study_name="ranged")
    waiting = _waiting(study)
    assert [trial.user_attrs["baseline"] for trial in waiting] == ["nin", "plain"]
    for trial in waiting:
        params = trial.system_attrs["fixed_params"]
        assert json.loads(json.dumps(params)) == params
        outside = {
            name: value
            for name, value in params.items()
            if not _inside(value, _space_of(RANGED, name))
        }
        assert outside == {}
        assert params["label_smoothing"] == 0.05  # NIN's 0.0, clipped into the range
        assert params["dropout"] == 0.3  # NIN's 0.5, clipped
        assert math.isclose(params["learning_rate"], math.sqrt(0.01 * 0.1))


def test_fixed_values_are_not_enqueued_as_params():
    for baseline in ("nin", "plain"):
        params = baseline_params(FIXED.space, FIXED.train, baseline)
        fixed = [name for name in params if name.endswith(("_width", "_mlp_depth"))]
        assert fixed == []
        assert not {"dropout", "label_smoothing", "batch_size"} & set(params)
        trial = optuna.trial.FixedTrial(params)
        spec = suggest_arch(trial, FIXED.space)
        assert {stage.width for stage in spec.stages} == {32} and spec.dropout == 0.2
        assert suggest_hyperparameters(trial, FIXED.train).label_smoothing == 0.1
    nin = suggest_arch(
        optuna.trial.FixedTrial(baseline_params(FIXED.space, FIXED.train, "nin")), FIXED.space
    )
    assert [stage.mlp_widths for stage in nin.stages] == [(16, 16)] * 3


def test_a_failed_baseline_enqueue_leaves_no_study_and_a_rerun_enqueues_them(tmp_path, monkeypatch):
    storage = f"sqlite:///{tmp_path / 'f.db'}"

    def enqueue_trial(*args: object, **kwargs: object) -> None:
        raise TypeError("Object of type FloatRange is not JSON serializable")

    monkeypatch.setattr(optuna.Study, "enqueue_trial", enqueue_trial)
    with pytest.raises(TypeError):
        open_study(RANGED, storage_url=storage, study_name="ranged")
    assert optuna.get_all_study_names(storage) == []
    monkeypatch.undo()
    study = open_study(RANGED, storage_url=storage, study_name="ranged")
    assert [trial.user_attrs["baseline"] for trial in _waiting(study)] == ["nin", "plain"]


DIGITS_SHAPE = {"in_channels": 1, "num_classes": 10, "image_size": 8}


def _costs(config: StudyConfig, params: dict) -> tuple[int, int]:
    from nin_search.model import count_macs, count_params

    arch = suggest_arch(optuna.trial.FixedTrial(params), config.space)
    shape = {"in_channels": 1, "num_classes": 10}
    return count_params(arch, **shape), count_macs(arch, image_size=8, **shape)


def _pareto(**cost: int) -> StudyConfig:
    from nin_search.study_files import load_study_config

    config = load_study_config(Path(__file__).parents[1] / "studies" / "digits-pareto.toml")
    return config.model_copy(update={"cost": config.cost.model_copy(update=cost)})


def test_baselines_are_narrowed_together_to_fit_the_cost_limits():
    from nin_search.baselines import baselines_within_limits

    config = _pareto(max_params=60_000)
    full = {b: baseline_params(config.space, config.train, b) for b in ("nin", "plain")}
    assert max(_costs(config, params)[0] for params in full.values()) > 60_000  # the problem
    params, note = baselines_within_limits(config, DIGITS_SHAPE)
    assert set(params) == {"nin", "plain"}
    assert all(_costs(config, values)[0] <= 60_000 for values in params.values())
    assert note.startswith("baselines narrowed") and "cost.max_params = 60,000" in note
    # Narrowed by the same factor: the plain baseline is the NIN one without its 1x1 layers.
    nin, plain = params["nin"], params["plain"]
    shared = {k: v for k, v in nin.items() if "mlp" not in k and not k.endswith("_type")}
    assert shared == {k: v for k, v in plain.items() if not k.endswith("_type")}
    # The MAC limit is honoured the same way.
    params, _ = baselines_within_limits(_pareto(max_macs=300_000), DIGITS_SHAPE)
    assert params and all(_costs(config, v)[1] <= 300_000 for v in params.values())


def test_baselines_within_the_limits_are_unchanged_and_impossible_ones_are_skipped(tmp_path):
    from nin_search.baselines import baselines_within_limits
    from nin_search.records import BASELINES_NOTE

    roomy = _pareto(max_params=10_000_000)
    params, note = baselines_within_limits(roomy, DIGITS_SHAPE)
    assert note is None
    assert params == {b: baseline_params(roomy.space, roomy.train, b) for b in ("nin", "plain")}
    tiny = _pareto(max_params=100)
    assert baselines_within_limits(tiny, DIGITS_SHAPE)[0] == {}
    study = open_study(
        tiny,
        storage_url=f"sqlite:///{tmp_path / 's.db'}",
        study_name="tiny-limit",
        data_info=DIGITS_SHAPE,
    )
    assert _waiting(study) == []
    assert study.user_attrs[BASELINES_NOTE].startswith("baselines skipped")
    assert "cost.max_params = 100" in study.user_attrs[BASELINES_NOTE]


@pytest.mark.parametrize(("kinds", "kept"), [(["mlp"], "nin"), (["plain"], "plain")])
def test_a_space_of_one_stage_type_gets_only_the_baseline_it_can_express(kinds, kept):
    from nin_search.baselines import baselines_within_limits

    config = StudyConfig.model_validate({"space": {"stage_types": kinds}})
    params, note = baselines_within_limits(config, DIGITS_SHAPE)
    assert list(params) == [kept]
    assert note.startswith(f"only the {kept} baseline: space.stage_types = {kinds}")
    stages = [k for k in params[kept] if k.endswith("_type")]
    assert stages and all(params[kept][k] == kinds[0] for k in stages)
