import optuna
import pytest

from nin_search import default_config, suggest_arch, suggest_hyperparameters
from nin_search.config import SpaceConfig

SPACE = SpaceConfig(num_stages=[1, 2, 3], mlp_depth=[1, 2, 3])


def sample(space: SpaceConfig, seed: int) -> tuple[dict, object]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = study.ask()
    spec = suggest_arch(trial, space)
    return trial.params, spec


@pytest.mark.parametrize("seed", range(25))
def test_conditional_parameters_exist_only_when_used(seed):
    params, spec = sample(SPACE, seed)
    assert params["num_stages"] == len(spec.stages)
    for index, stage in enumerate(spec.stages):
        assert params[f"s{index}_type"] in ("plain", "mlp")
        assert params[f"s{index}_type"] == stage.kind
        if stage.kind == "plain":
            assert f"s{index}_mlp_depth" not in params
            assert not any(k.startswith(f"s{index}_mlp") for k in params)
        else:
            depth = params[f"s{index}_mlp_depth"]
            assert depth == len(stage.mlp_widths)
            assert [params[f"s{index}_mlp{layer}_width"] for layer in range(1, depth + 1)] == list(
                stage.mlp_widths
            )
            assert f"s{index}_mlp{depth + 1}_width" not in params
        assert (f"s{index}_pool" in params) == (index < len(spec.stages) - 1)
    assert not any(k.startswith(f"s{len(spec.stages)}_") for k in params)


def test_both_stage_types_and_all_depths_are_reachable():
    kinds, depths = set(), set()
    for seed in range(40):
        params, _ = sample(SPACE, seed)
        kinds.add(params["s0_type"])
        depths.update(v for k, v in params.items() if k.endswith("_mlp_depth"))
    assert kinds == {"plain", "mlp"}
    assert depths == {1, 2, 3}


@pytest.mark.parametrize("seed", range(10))
def test_fixed_trial_replay_rebuilds_the_same_spec(seed):
    params, spec = sample(SPACE, seed)
    assert suggest_arch(optuna.trial.FixedTrial(params), SPACE) == spec


def test_scalar_values_are_fixed_and_not_searched():
    space = SpaceConfig(num_stages=2, stage_types=["mlp"], widths=32, mlp_depth=1, dropout=0.0)
    params, spec = sample(space, 0)
    assert "num_stages" not in params
    assert "s0_width" not in params and "dropout" not in params
    assert [stage.width for stage in spec.stages] == [32, 32]


def test_training_hyperparameters_are_suggested_from_the_train_config():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    hparams = suggest_hyperparameters(trial, default_config().train)
    assert set(trial.params) == {
        "optimizer",
        "learning_rate",
        "weight_decay",
        "batch_size",
        "label_smoothing",
    }
    assert hparams.optimizer == trial.params["optimizer"]
    assert 1e-3 <= hparams.learning_rate <= 0.2
    dist = trial.distributions["learning_rate"]
    assert dist.log


def test_a_prefix_keeps_two_searched_networks_in_one_trial_apart():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=4))
    trial = study.ask()
    first = suggest_arch(trial, SPACE, prefix="first_")
    second = suggest_arch(trial, SPACE, prefix="second_")
    assert all(name.startswith(("first_", "second_")) for name in trial.params)
    assert trial.params["first_num_stages"] == len(first.stages)
    assert trial.params["second_num_stages"] == len(second.stages)
    own = {name.removeprefix("second_"): v for name, v in trial.params.items() if "second_" in name}
    assert suggest_arch(optuna.trial.FixedTrial(own), SPACE) == second  # same names, unprefixed
    with pytest.raises(TypeError, match="prefix=3"):
        suggest_arch(trial, SPACE, prefix=3)


@pytest.mark.parametrize("prefix", ["", "encoder_"])
@pytest.mark.parametrize("seed", range(10))
def test_the_stages_read_back_from_params_are_the_suggested_ones(seed, prefix):
    from nin_search.space import stages_from_params

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = study.ask()
    spec = suggest_arch(trial, SPACE, prefix=prefix)
    stages = stages_from_params(trial.params, prefix=prefix)
    assert [tuple(stage) for stage in stages] == [
        (s.kind, s.kernel_size, s.width, s.mlp_widths, s.pool) for s in spec.stages
    ]
    # A trial that stopped before its last stage's kind: the stages it has.
    partial = {k: v for k, v in trial.params.items() if not k.startswith(f"{prefix}s1_")}
    assert len(stages_from_params(partial, prefix=prefix)) == min(len(spec.stages), 1)
