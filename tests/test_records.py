"""The trial record: one schema for the user attrs nin-search writes and reads."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from nin_search import records
from nin_search.records import TrialRecord

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_a_record_written_by_a_trial_reads_back_the_same_through_an_in_memory_study() -> None:
    study = optuna.create_study(direction="maximize")

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_int("num_stages", 1, 3)
        records.write(
            trial,
            costs={records.PARAMS: 1234, records.MACS: 56789, records.LATENCY_MS: 1.5},
            arch={"stages": []},
            arch_summary="plain3x3-64 | nin",
            seed=7,
            baseline="nin",
            sampled_by="random",
            weights_artifact="abc",
            worker={"host": "here", "pid": 1},
        )
        return 0.75

    study.optimize(objective, n_trials=1)
    record = TrialRecord.from_trial(study.trials[0])
    assert record.number == 0
    assert record.state == TrialState.COMPLETE
    assert record.values == (0.75,)
    assert record.accuracy == 0.75
    assert set(record.params) == {"num_stages"}
    assert record.arch == {"stages": []}
    assert record.arch_summary == "plain3x3-64 | nin"
    assert (record.param_count, record.macs, record.latency_ms) == (1234, 56789, 1.5)
    assert record.cost(records.PARAMS) == 1234
    assert record.seed == 7
    assert record.baseline == "nin"
    assert record.sampled_by == "random"
    assert record.weights_artifact == "abc"
    assert record.worker == {"host": "here", "pid": 1}
    assert record.feasible
    assert record.constraint_violation is None


def test_enqueued_ablation_attrs_read_back_as_the_record_fields() -> None:
    study = optuna.create_study(direction="maximize")
    attrs = records.user_attrs(
        ablation_source=3, ablation_stage=1, ablation_variant="flipped", ablation_seed=0, seed=9
    )
    study.enqueue_trial({}, user_attrs=attrs)
    study.optimize(lambda trial: 0.5, n_trials=1)
    record = TrialRecord.from_trial(study.trials[0])
    assert (record.ablation_source, record.ablation_stage) == (3, 1)
    assert (record.ablation_variant, record.ablation_seed, record.seed) == ("flipped", 0, 9)


def test_a_trial_without_attrs_reads_as_none_fields_never_zero() -> None:
    study = optuna.create_study()
    study.optimize(lambda trial: 0.5, n_trials=1)
    record = TrialRecord.from_trial(study.trials[0])
    named = {field for field in TrialRecord.__dataclass_fields__} - {
        "number",
        "state",
        "values",
        "params",
    }
    assert all(getattr(record, name) is None for name in named)
    assert record.param_count is None and record.macs is None
    assert record.feasible


def test_unusable_attr_values_read_as_none() -> None:
    study = optuna.create_study()
    study.enqueue_trial(
        {},
        user_attrs={
            records.PARAMS: "many",
            records.MACS: True,
            records.ABLATION_STAGE: 1.0,
            records.ARCH: "not a dict",
        },
    )
    study.optimize(lambda trial: float("nan"), n_trials=1)
    record = TrialRecord.from_trial(study.trials[0])
    assert record.param_count is None and record.macs is None
    assert record.ablation_stage is None and record.arch is None
    assert record.accuracy is None


def test_a_constraint_violation_makes_the_record_infeasible() -> None:
    study = optuna.create_study()
    study.optimize(
        lambda trial: records.write(trial, constraint_violation="params 9 > max 1") or 0.0,
        n_trials=1,
    )
    record = TrialRecord.from_trial(study.trials[0])
    assert not record.feasible
    assert record.constraint_violation == "params 9 > max 1"


def test_writing_an_unknown_field_or_cost_quotes_it_and_writes_nothing() -> None:
    with pytest.raises(TypeError, match="colour='red'"):
        records.user_attrs(colour="red")
    with pytest.raises(TypeError, match="flops=3"):
        records.user_attrs(costs={"flops": 3})


def test_the_records_module_imports_neither_torch_nor_optuna() -> None:
    import subprocess
    import sys

    code = (
        "import sys, nin_search.records; "
        "print(any(name in sys.modules for name in ('torch', 'optuna')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_a_running_trial_reads_its_attrs_with_no_state_or_values() -> None:
    study = optuna.create_study()
    seen = []

    def objective(trial: optuna.Trial) -> float:
        records.write(trial, sampled_by="random", baseline="plain")
        seen.append(TrialRecord.from_trial(trial))
        return 0.0

    study.optimize(objective, n_trials=1)
    assert seen[0].sampled_by == "random" and seen[0].baseline == "plain"
    assert seen[0].state is None and seen[0].values is None


def _rendered(table) -> str:
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(table)
    return console.export_text()


@pytest.mark.parametrize("directions", [["maximize"], ["maximize", "minimize"]])
def test_best_shows_a_dash_for_costs_a_trial_of_a_plain_optuna_objective_did_not_record(
    directions,
):
    # A study made with the public API in the user's own objective may record its networks
    # but lack the cost attrs: the table says "-" (unknown), never "0".
    from nin_search import presets
    from nin_search.cli._common import summary_table

    def objective(trial: optuna.Trial) -> tuple[float, ...]:
        trial.set_user_attr(records.ARCH, presets.plain_cifar10().to_dict())
        return (0.5,) * len(directions)

    study = optuna.create_study(directions=directions)
    study.optimize(objective, n_trials=1)
    row = {
        line.split("│")[1].strip(): line
        for line in _rendered(summary_table(study)).splitlines()
        if line.count("│") > 2
    }
    if len(directions) == 1:
        cells = [cell.strip() for cell in row["params"].split("│")]
        assert cells[2] == "-", row["params"]
        assert [cell.strip() for cell in row["MACs / image"].split("│")][2] == "-"
    else:
        cells = [cell.strip() for cell in row["#0"].split("│")]
        assert cells[3:5] == ["-", "-"], cells
