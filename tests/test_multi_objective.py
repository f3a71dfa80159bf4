"""Multi-objective search: the dominated-curve pruning rule and its Optuna glue, cost limits, a
real CLI run."""

from __future__ import annotations

import optuna
import pytest

from nin_search import UserError, load_study_config
from nin_search.config import OptunaConfig, StudyConfig
from nin_search.data import load_search_data
from nin_search.dominated import DominatedCurvePruner
from nin_search.objective import Objective
from nin_search.pruning import CurvePoint, DominatedPruner
from nin_search.sampling import MultiObjectiveTPESampler, make_pruner
from nin_search.study import open_study, optimize
from nin_search.trials import best_trials

from .conftest import REPO, run_cli, write_study

CHEAP_GOOD = CurvePoint(0, {"params": 1_000}, {1: 0.60, 2: 0.80, 3: 0.90})
CHEAP_OK = CurvePoint(1, {"params": 2_000}, {1: 0.55, 2: 0.75, 3: 0.85})
EXPENSIVE = CurvePoint(2, {"params": 90_000}, {1: 0.30, 2: 0.40, 3: 0.50})


def prune_epochs(pruner: DominatedPruner, trial: CurvePoint, others: list[CurvePoint]) -> list[int]:
    return [
        epoch
        for epoch, accuracy in trial.curve.items()
        if pruner.should_prune(epoch=epoch, accuracy=accuracy, costs=trial.costs, others=others)
    ]


def test_a_cheap_trial_with_a_good_curve_is_never_pruned():
    pruner = DominatedPruner(min_dominators=1, margin=0.0, n_warmup_steps=0)
    # Even against expensive trials that are far more accurate: they cost more.
    rich = CurvePoint(5, {"params": 500_000}, {1: 0.99, 2: 0.99, 3: 0.99})
    assert prune_epochs(pruner, CHEAP_GOOD, [CHEAP_OK, EXPENSIVE, rich]) == []


def test_an_expensive_trial_dominated_at_every_epoch_is_pruned_at_the_first_epoch_allowed():
    pruner = DominatedPruner(min_dominators=2, margin=0.01, n_warmup_steps=1)
    assert prune_epochs(pruner, EXPENSIVE, [CHEAP_GOOD, CHEAP_OK]) == [1, 2, 3]
    assert pruner.dominators(
        epoch=2, accuracy=0.40, costs=EXPENSIVE.costs, others=[CHEAP_GOOD, CHEAP_OK]
    ) == [0, 1]


def test_one_dominator_is_not_enough_evidence_when_two_are_required_and_margin_counts():
    pruner = DominatedPruner(min_dominators=2, margin=0.01, n_warmup_steps=1)
    assert prune_epochs(pruner, EXPENSIVE, [CHEAP_GOOD]) == []
    close = CurvePoint(3, {"params": 80_000}, {1: 0.595, 2: 0.795})
    # better by less than the margin: not dominated
    assert pruner.dominators(epoch=1, accuracy=0.595, costs=close.costs, others=[CHEAP_GOOD]) == []


def test_every_cost_must_be_no_higher_and_the_epoch_must_match():
    pruner = DominatedPruner(min_dominators=1, margin=0.0, n_warmup_steps=0)
    costs = {"params": 50_000, "macs": 10}
    cheaper_params_more_macs = CurvePoint(7, {"params": 10, "macs": 99}, {1: 0.9})
    assert (
        pruner.dominators(epoch=1, accuracy=0.1, costs=costs, others=[cheaper_params_more_macs])
        == []
    )
    assert pruner.dominators(
        epoch=2, accuracy=0.1, costs={"params": 5e4}, others=[CHEAP_GOOD, CHEAP_OK]
    ) == [0, 1]
    assert (
        pruner.dominators(epoch=4, accuracy=0.1, costs={"params": 5e4}, others=[CHEAP_GOOD]) == []
    )


def test_pruner_arguments_are_validated():
    with pytest.raises(ValueError, match="min_dominators=0"):
        DominatedPruner(min_dominators=0)
    with pytest.raises(UserError, match="pruner 'dominated'"):
        make_pruner(OptunaConfig(pruner="dominated", pruner_options={"patience": 2}), epochs=3)


def test_the_optuna_glue_records_curves_and_costs_and_prunes_by_the_rule():
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=MultiObjectiveTPESampler(seed=0)
    )
    pruner = DominatedCurvePruner(min_dominators=2, margin=0.0, n_warmup_steps=1)
    for n_params, curve in ((100, [0.5, 0.8]), (200, [0.6, 0.9])):
        trial = study.ask()
        for step, accuracy in enumerate(curve, start=1):
            assert pruner.should_prune(trial, step, accuracy, costs={"n_params": n_params}) is None
        study.tell(trial, (curve[-1], n_params))
    expensive = study.ask()
    assert pruner.should_prune(expensive, 1, 0.4, costs={"n_params": 300}) == [0, 1]
    study.tell(expensive, state=optuna.trial.TrialState.PRUNED)
    cheap = study.ask()  # nothing cheaper: never pruned, however bad
    assert pruner.should_prune(cheap, 1, 0.1, costs={"n_params": 50}) is None
    study.tell(cheap, state=optuna.trial.TrialState.PRUNED)
    # a pruned trial's curve and costs count as well
    assert pruner.should_prune(study.ask(), 1, 0.3, costs={"n_params": 400}) == [0, 1, 2]
    stored = study.trials[2]
    assert stored.intermediate_values == {1: 0.4} and stored.user_attrs["n_params"] == 300


def test_the_optuna_glue_refuses_what_it_does_not_support_before_recording_anything():
    costs = {"n_params": 10}
    pruner = DominatedCurvePruner()
    single = optuna.create_study(direction="maximize")
    with pytest.raises(ValueError, match="several objectives"):
        pruner.should_prune(single.ask(), 1, 0.5, costs=costs)
    minimized = optuna.create_study(directions=["minimize", "minimize"])
    with pytest.raises(ValueError, match=r"first objective maximized.*\['minimize', 'minimize'\]"):
        pruner.should_prune(minimized.ask(), 1, 0.5, costs=costs)
    plain_tpe = optuna.create_study(directions=["maximize", "minimize"])  # Optuna's default
    with pytest.raises(ValueError, match="MultiObjectiveTPESampler"):
        pruner.should_prune(plain_tpe.ask(), 1, 0.5, costs=costs)
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0)
    )
    trial = study.ask()
    for step, bad_costs, match in (
        (1, {}, "at least one cost"),
        (1, {"n_params": float("nan")}, "n_params=nan"),
        (-1, costs, "step=-1"),
    ):
        with pytest.raises(ValueError, match=match):
            pruner.should_prune(trial, step, 0.5, costs=bad_costs)
    assert study.trials[0].intermediate_values == {} and study.trials[0].user_attrs == {}
    with pytest.raises(ValueError, match="margin=1.5"):
        DominatedCurvePruner(margin=1.5)


def test_multi_objective_config_rules(tmp_path):
    with pytest.raises(UserError, match="do not support multi-objective"):
        load_study_config(write_study(tmp_path, "[study]\nobjectives = ['accuracy', 'params']\n"))
    with pytest.raises(UserError, match="must start with 'accuracy'"):
        load_study_config(write_study(tmp_path, "[study]\nobjectives = ['params']\n"))
    with pytest.raises(UserError, match="'dominated' is for multi-objective"):
        load_study_config(write_study(tmp_path, "[optuna]\npruner = 'dominated'\n"))
    config = load_study_config(REPO / "studies" / "digits-pareto.toml")
    assert config.multi_objective and config.objectives == ["accuracy", "params"]


def test_trials_over_a_cost_limit_stop_before_training_and_teach_the_sampler(tmp_path):
    config = StudyConfig.model_validate(
        {
            "study": {"name": "limits", "n_trials": 8, "baselines": True},
            "space": {"num_stages": 2, "widths": [4, 64], "mlp_widths": [4, 64]},
            "train": {"epochs": 1, "batch_size": [128], "device": "cpu"},
            "cost": {"max_params": 20_000, "max_latency_ms": 1_000.0, "latency_runs": 3},
            "optuna": {"pruner": "none"},
        }
    )
    data = load_search_data(config.data, device="cpu")
    storage = f"sqlite:///{tmp_path / 'l.db'}"
    study = open_study(config, storage_url=storage, study_name="limits")  # baselines unchecked
    optimize(study, Objective(config, data), n_trials=8)
    over = [t for t in study.trials if t.user_attrs.get("constraint_violation")]
    within = [t for t in study.trials if not t.user_attrs.get("constraint_violation")]
    assert over and within  # the widest baselines break the limit
    for trial in over:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert trial.intermediate_values == {}  # never trained
        assert trial.constraints["params"] > 0
        assert "params" in trial.user_attrs["constraint_violation"]
    for trial in within:
        assert trial.constraints["params"] <= 0 and trial.user_attrs["latency_ms"] > 0
    assert best_trials(study)[0] in within
    # optuna-dashboard reads the constraints' list: a trial over a limit is drawn infeasible.
    from optuna_dashboard._serializer import serialize_frozen_trial

    for trial in study.trials:
        shown = serialize_frozen_trial(0, trial, {})["constraints"]
        assert (max(shown) > 0) == (trial in over), (trial.number, shown)
    # Exported, a trial over a limit says it never trained: no accuracy, seed or precision.
    study.set_user_attr("data", data.info())  # what optimize records, for export
    result = run_cli("export", "--storage", storage, "--trial", str(over[0].number), "-o", "m.py",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    header = (tmp_path / "m.py").read_text()
    assert "Validation accuracy: none (never trained: params" in header
    assert "0.00%" not in header and "Trained with" not in header
    # Its weights and its retraining are refused, naming the limit it broke.
    number = str(over[0].number)
    result = run_cli("export", "--storage", storage, "--trial", number, "-o", "w.py",
                     "--weights", "w.safetensors", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and "broke the study's cost limits (params" in result.stderr
    result = run_cli("train", "--storage", storage, "--trial", number, "-o", "final",
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and "broke the study's cost limits (params" in result.stderr
    assert not (tmp_path / "final").exists()


# A two-objective study whose dominated pruner prunes readily (one dominator, no margin).
PARETO = """
[study]
name = "pareto"
seed = 3
n_trials = 8
objectives = ["accuracy", "params"]

[space]
num_stages = 2
widths = [4, 8, 48]
mlp_widths = [4, 8, 48]

[train]
epochs = 3
batch_size = [64]
device = "cpu"

[optuna]
pruner = "dominated"
pruner_options = { min_dominators = 1, margin = 0.0, n_warmup_steps = 1 }
"""


def test_a_real_two_objective_run_gives_a_pareto_front_and_prunes(tmp_path):
    study_file = write_study(tmp_path, PARETO.replace("n_trials = 8", "n_trials = 14"))
    result = run_cli("optimize", str(study_file), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Pareto front" in result.stdout
    study = optuna.load_study(
        study_name="pareto", storage=f"sqlite:///{tmp_path / 'nin_search.db'}"
    )
    assert study.metric_names == ["accuracy", "params"]  # optuna-dashboard's axis titles
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.PRUNED) >= 1
    assert study.best_trials
    for trial in study.trials:
        if trial.state == optuna.trial.TrialState.PRUNED:
            assert trial.user_attrs["prune_reason"].startswith("dominated at epoch")
            assert trial.intermediate_values  # the curve is stored for the dashboard
    best = run_cli("best", "--json", cwd=tmp_path)
    assert best.returncode == 0, best.stderr
    import json

    front = json.loads(best.stdout)["pareto_front"]
    assert [t["number"] for t in front] == sorted(
        (t.number for t in study.best_trials), key=lambda n: -study.trials[n].values[0]
    )
    exported = run_cli(
        "export", "-o", str(tmp_path / "m.py"), "--trial", str(front[-1]["number"]), cwd=tmp_path
    )
    assert exported.returncode == 0, exported.stderr
    # A pruned trial has no objective values with two objectives: its last epoch is shown.
    pruned = next(t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED)
    exported = run_cli("export", "-o", "p.py", "--trial", str(pruned.number), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    last = pruned.intermediate_values[max(pruned.intermediate_values)]
    assert (
        f"Validation accuracy: {100 * last:.2f}% (pruned after epoch "
        f"{max(pruned.intermediate_values)} of 3)" in (tmp_path / "p.py").read_text()
    )


def test_random_trials_of_a_multi_objective_study_train_in_full_when_the_study_says_so(tmp_path):
    text = PARETO.replace('name = "pareto"', 'name = "full"').replace(
        "n_trials = 8", "n_trials = 8\nrandom_trials = 8\nprune_random_trials = false"
    )
    study_file = write_study(tmp_path, text.replace("n_warmup_steps = 1", "n_warmup_steps = 0"))
    result = run_cli("optimize", str(study_file), "--workers", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="full", storage=f"sqlite:///{tmp_path / 'nin_search.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 8
    assert all(max(t.intermediate_values) == 3 for t in study.trials)  # curves kept for others


def test_a_plain_optuna_trial_that_dominates_every_network_hides_none_of_the_front():
    from nin_search import records

    study = optuna.create_study(directions=["maximize", "minimize"])
    distributions = {"x": optuna.distributions.FloatDistribution(0, 1)}
    arch = {records.ARCH: {"stages": []}}  # what nin-search records of every trained network
    for number, values in enumerate([(0.9, 500.0), (0.8, 100.0), (0.7, 300.0)]):
        study.add_trial(optuna.trial.create_trial(
            params={"x": number / 10}, distributions=distributions, values=list(values),
            user_attrs=arch,
        ))  # fmt: skip
    study.add_trial(optuna.trial.create_trial(values=[1.0, 1.0]))  # no network: dominates all
    assert [trial.number for trial in best_trials(study)] == [0, 1]


def test_best_lists_the_front_then_the_baselines_off_it_marked_as_such():
    from rich.console import Console

    from nin_search.cli._common import summary_table

    study = optuna.create_study(directions=["maximize", "minimize"])
    for accuracy, params, baseline in [(0.97, 28000, "nin"), (0.96, 900, "plain"),
                                       (0.99, 8000, None), (0.95, 40000, None)]:  # fmt: skip
        attrs = {"arch": {}, "arch_summary": "net", "params": params, "macs": 10 * params}
        if baseline:
            attrs["baseline"] = baseline
        study.add_trial(
            optuna.trial.create_trial(
                values=[accuracy, params],
                user_attrs=attrs,
            )
        )
    console = Console(width=200, record=True)
    console.print(summary_table(study))
    text = console.export_text()
    rows = [line for line in text.splitlines() if "#" in line and "Pareto" not in line]
    assert [row.split("│")[1].strip() for row in rows] == [
        "#2", "#1 (plain baseline)", "nin baseline #0 (off the front)",
    ]  # fmt: skip


def test_trials_marks_the_pareto_front_of_a_study_with_several_objectives():
    from rich.console import Console

    from nin_search.cli._common import leaderboard_table
    from nin_search.summary import trials_table
    from nin_search.trials import best_trials

    study = optuna.create_study(directions=["maximize", "minimize"])
    for accuracy, params in [(0.97, 28000), (0.99, 8000), (0.90, 900), (0.95, 40000)]:
        attrs = {"arch": {}, "arch_summary": "net", "params": params, "macs": 10 * params}
        study.add_trial(optuna.trial.create_trial(values=[accuracy, params], user_attrs=attrs))
    front = frozenset(trial.number for trial in best_trials(study))
    table = leaderboard_table("s", trials_table(study), total=4, sort="accuracy", front=front)
    console = Console(width=200, record=True)
    console.print(table)
    marked = {
        int(line.split()[0]): line.split()[1] == "yes"
        for line in console.export_text().splitlines()
        if line.strip()[:1].isdigit()
    }
    assert marked == {1: True, 2: True, 0: False, 3: False}
