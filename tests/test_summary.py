"""What scripts and people read about trials: ``best --json``, ``nin-search trials`` (table,
``--json``, ``--csv``) and output that never wraps when piped.

The leaderboard's order and flags are checked on a study built with Optuna's public API (every
trial state, exact values); the commands on a study written by the real CLI, read back with
plain ``optuna.load_study``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from nin_search import records
from nin_search.analysis import answer_lines, find_ablation_study, get_answer
from nin_search.errors import UserError
from nin_search.space import baseline_params
from nin_search.study import open_study
from nin_search.study_files import load_study_config
from nin_search.summary import TRIAL_KEYS, TrialLog, trial_summary, trials_csv, trials_table

from .conftest import TINY_DIGITS, run_cli, write_study
from .test_cli import checksum, in_process

optuna.logging.set_verbosity(optuna.logging.WARNING)

# The plain baseline of the tiny study has 7,034 parameters: over this limit, it never trains.
# Its baselines are enqueued at full width, as in a study made before nin-search narrowed them
# to the limits: the plain one (7,034 params) then breaks max_params.
LIMITED_DIGITS = TINY_DIGITS.replace("n_trials = 3", "n_trials = 3\nbaselines = false") + (
    "\n[cost]\nmax_params = 5000\n"
)


# ----------------------------------------------------------------------------------------------
# The leaderboard's rows, on a study with every kind of trial
# ----------------------------------------------------------------------------------------------


def _trial(state, *, value=None, curve=None, params=None, violation=None, summary="s"):
    attrs = {records.ARCH_SUMMARY: summary}
    if params is not None:
        attrs[records.PARAMS] = params
    if violation is not None:
        attrs[records.CONSTRAINT_VIOLATION] = violation
    return create_trial(
        state=state,
        value=value,
        params={"learning_rate": 0.01},
        distributions={"learning_rate": FloatDistribution(0.001, 0.1, log=True)},
        user_attrs=attrs,
        intermediate_values=curve or {},
    )


@pytest.fixture
def every_state() -> optuna.Study:
    """#0 complete 0.80; #1 pruned at epoch 2 with 0.85; #2 over a cost limit; #3 failed;
    #4 running at 0.60; #5 complete 0.70 without a parameter count; #6 pruned on NaN."""
    study = optuna.create_study(direction="maximize")
    for trial in [
        _trial(TrialState.COMPLETE, value=0.8, curve={1: 0.7, 2: 0.8}, params=5000),
        _trial(TrialState.PRUNED, curve={1: 0.5, 2: 0.85}, params=1000),
        _trial(TrialState.COMPLETE, value=0.0, params=9000, violation="params 9,000 > max 6,000"),
        _trial(TrialState.FAIL, curve={1: 0.9}, params=3000),
        _trial(TrialState.RUNNING, curve={1: 0.6}, params=2000),
        _trial(TrialState.COMPLETE, value=0.7, curve={1: 0.7}),
        _trial(TrialState.PRUNED, curve={1: math.nan}, params=4000),
    ]:
        study.add_trial(trial)
    return study


def _numbers(rows):
    return [row["number"] for row in rows]


def test_the_leaderboard_ranks_by_accuracy_pruned_trials_by_their_last_epoch(every_state):
    rows = trials_table(every_state)
    assert _numbers(rows) == [1, 0, 5, 4, 2, 3, 6]  # trials without an accuracy last
    by_number = {row["number"]: row for row in rows}
    assert by_number[1]["accuracy"] == 0.85 and not by_number[1]["accuracy_is_final"]
    assert by_number[0]["accuracy"] == 0.8 and by_number[0]["accuracy_is_final"]
    assert by_number[4]["accuracy"] == 0.6 and by_number[4]["state"] == "running"
    assert by_number[3]["accuracy"] is None  # failed: no accuracy, whatever it reported
    assert by_number[6]["accuracy"] is None  # its last epoch was NaN
    assert [by_number[n]["epochs"] for n in range(7)] == [2, 2, 0, 1, 1, 1, 1]


def test_a_trial_over_a_cost_limit_has_no_accuracy_and_says_which_limit(every_state):
    row = trial_summary(every_state.trials[2])
    assert row["state"] == "complete" and row["values"] == [0.0]  # what Optuna stored
    assert row["feasible"] is False and row["accuracy"] is None
    assert row["constraint_violation"] == "params 9,000 > max 6,000"
    assert trial_summary(every_state.trials[0])["feasible"] is True


def test_the_leaderboard_sorts_by_a_cost_smallest_first_and_filters_states(every_state):
    assert _numbers(trials_table(every_state, sort="params")) == [1, 4, 3, 6, 0, 2, 5]
    assert _numbers(trials_table(every_state, states=["complete"])) == [0, 5, 2]
    assert _numbers(trials_table(every_state, states=["pruned", "RUNNING "], top=2)) == [1, 4]
    with pytest.raises(UserError, match="has latency_ms"):  # none measured: says so
        trials_table(every_state, sort="latency_ms", top=1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sort": "speed"}, "--sort must be one of accuracy, params, macs, latency_ms"),
        ({"states": ["complete", "done"]}, "--state takes a comma-separated list of complete"),
        ({"states": []}, "--state takes"),
        ({"top": 0}, "--top must be at least 1, but got 0"),
    ],
)
def test_the_leaderboard_refuses_unknown_keys_and_states(every_state, options, message):
    with pytest.raises(UserError, match=message):
        trials_table(every_state, **options)


def test_trial_rows_are_plain_json_with_the_same_keys_as_csv_columns(every_state):
    rows = trials_table(every_state)
    assert all(tuple(row) == TRIAL_KEYS for row in rows)
    json.loads(json.dumps(rows, allow_nan=False))  # no NaN anywhere
    parsed = list(csv.DictReader(io.StringIO(trials_csv(rows))))
    assert [int(line["number"]) for line in parsed] == _numbers(rows)
    first = parsed[0]  # trial #1, pruned
    assert (first["state"], float(first["accuracy"]), first["accuracy_is_final"]) == (
        "pruned",
        0.85,
        "false",
    )
    assert json.loads(first["hyperparameters"]) == {"learning_rate": 0.01}
    assert parsed[4]["feasible"] == "false"  # trial #2
    assert parsed[4]["constraint_violation"] == "params 9,000 > max 6,000"
    assert parsed[4]["accuracy"] == ""


# ----------------------------------------------------------------------------------------------
# The commands, on a study written by the real CLI
# ----------------------------------------------------------------------------------------------


def run_piped(*args: str, cwd: Path, columns: int | None = None) -> subprocess.CompletedProcess:
    """``python -m nin_search ARGS`` with stdout and stderr piped, as in ``... | less``."""
    return run_cli(*args, cwd=cwd, columns=columns)


@pytest.fixture(scope="module")
def limited(tmp_path_factory) -> tuple[Path, optuna.Study]:
    """A 3-trial digits study with a parameter limit that the plain baseline breaks."""
    folder = tmp_path_factory.mktemp("limited")
    study_file = write_study(folder, LIMITED_DIGITS)
    config = load_study_config(study_file)
    storage_url = f"sqlite:///{folder / 'nin_search.db'}"
    created = open_study(config, storage_url=storage_url, study_name="tiny")
    for baseline in ("nin", "plain"):
        params = baseline_params(config.space, config.train, baseline)
        created.enqueue_trial(params, user_attrs={records.BASELINE: baseline})
    result = run_piped("optimize", str(study_file), cwd=folder)
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{folder / 'nin_search.db'}")
    return folder, study


def test_best_json_names_hyperparameters_flags_limits_and_carries_the_verdict(limited):
    folder, study = limited
    result = run_piped("best", "--json", cwd=folder)
    assert result.returncode == 0, result.stderr
    best = json.loads(result.stdout)
    assert tuple(best["best"]) == TRIAL_KEYS
    assert best["best"]["number"] == study.best_trial.number
    assert best["best"]["hyperparameters"] == study.best_trial.params
    assert best["best"]["num_params"] == study.best_trial.user_attrs["params"]
    assert best["best"]["accuracy"] == study.best_value and best["best"]["feasible"]
    plain = best["baselines"]["plain"]
    assert plain["number"] == 1 and plain["state"] == "complete"
    assert (plain["feasible"], plain["accuracy"]) == (False, None)
    assert plain["constraint_violation"] == "params 7,034 > max 5,000"
    # The commands the answer suggests name the study's storage and name, as `best` read them.
    where = f"--storage sqlite:///nin_search.db --study-name {study.study_name}"  # the default
    answer = get_answer(study, find_ablation_study(study), where=where)
    assert best["verdict"]["lines"] == answer_lines(answer)
    assert [stage["stage"] for stage in best["verdict"]["stages"]] == [
        stage.stage for stage in answer.stages
    ]
    design = best["verdict"]["stages"][0]["design_space"]
    assert design["naive_n_plain"] == answer.stages[0].design_space.naive_n_plain
    assert "curves" not in design


def test_trials_lists_every_trial_as_the_json_and_csv_rows_say(limited):
    folder, study = limited
    result = run_piped("trials", "--json", cwd=folder)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert sorted(_numbers(rows)) == [trial.number for trial in study.trials]
    for row in rows:
        trial = study.trials[row["number"]]
        assert tuple(row) == TRIAL_KEYS
        assert row["state"] == trial.state.name.lower()
        assert row["arch_summary"] == trial.user_attrs["arch_summary"]
        assert row["epochs"] == max(trial.intermediate_values, default=0)
        assert row["seconds"] == pytest.approx(trial.duration.total_seconds(), abs=0.01)
        if row["feasible"]:  # trained: its seed and precision, as the trial recorded them
            assert row["seed"] == trial.user_attrs[records.SEED]
            assert row["precision"] == trial.user_attrs[records.PRECISION]
            assert row["precision"] in ("fp32", "bf16")
    over = [row for row in rows if not row["feasible"]]  # no accuracy: listed last
    assert 1 in _numbers(over) and rows[-len(over) :] == over
    assert all(row["accuracy"] is None for row in over)
    accuracies = [row["accuracy"] for row in rows[: -len(over)]]
    assert None not in accuracies and accuracies == sorted(accuracies, reverse=True)
    table = run_piped("trials", "--csv", "--sort", "params", "--top", "2", cwd=folder)
    assert table.returncode == 0, table.stderr
    parsed = list(csv.DictReader(io.StringIO(table.stdout)))
    by_params = sorted(study.trials, key=lambda trial: trial.user_attrs["params"])
    assert [int(line["number"]) for line in parsed] == [t.number for t in by_params[:2]]


def test_piped_tables_keep_every_architecture_summary_on_one_line(limited):
    # Piped, rich would wrap at 80 columns: three summaries side by side are wider.
    folder, study = limited
    summaries = {trial.number: trial.user_attrs["arch_summary"] for trial in study.trials}
    shown = {study.best_trial.number, 0, 1}  # best, NIN and plain baselines
    assert sum(len(summaries[number]) for number in shown) > 80
    best = run_piped("best", cwd=folder)
    assert best.returncode == 0, best.stderr
    (row,) = [line for line in best.stdout.splitlines() if line.startswith("│ architecture")]
    for number in shown:
        assert summaries[number] in row, best.stdout
    board = run_piped("trials", cwd=folder)
    assert board.returncode == 0, board.stderr
    for number, summary in summaries.items():
        (line,) = [line for line in board.stdout.splitlines() if summary in line]
        assert line.split()[:2] == [str(number), study.trials[number].state.name.lower()]


def test_in_a_narrow_terminal_a_trial_stays_on_one_line_its_summary_cut_at_the_end(limited):
    folder, study = limited
    board = run_piped("trials", cwd=folder, columns=80)
    assert board.returncode == 0, board.stderr
    lines = board.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for trial in study.trials:
        summary = trial.user_attrs["arch_summary"]
        (line,) = [line for line in lines if line.split()[:1] == [str(trial.number)]]
        assert summary in line or any(
            f"{summary[:end]}…" in line for end in range(10, len(summary))
        ), line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--sort", "speed"), "--sort must be one of accuracy, params, macs, latency_ms"),
        (("--state", "complete,done"), "--state takes a comma-separated list of complete"),
        (("--csv", "--json"), "pass either --csv or --json, not both"),
        (("--top", "0"), "Invalid value for '--top'"),
        (("--study-name", "nope"), "no study named 'nope'"),
    ],
)
def test_bad_trials_options_are_one_line_and_exit_2(limited, monkeypatch, capsys, args, message):
    folder, _ = limited
    database = folder / "nin_search.db"
    before = checksum(database)
    code, out, err = in_process(
        monkeypatch, capsys, "trials", "--storage", f"sqlite:///{database}", *args
    )
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in out + err
    assert checksum(database) == before


def test_the_trial_log_writes_each_newly_finished_trial_once(every_state, tmp_path):
    log = TrialLog(every_state, tmp_path / "trials.jsonl")
    assert log.update(every_state) == []  # finished before the log: not written
    every_state.add_trial(_trial(TrialState.COMPLETE, value=0.9, curve={1: 0.9}, params=10))
    every_state.add_trial(_trial(TrialState.PRUNED, curve={1: 0.4}, params=20))
    assert [trial.number for trial in log.update(every_state)] == [7, 8]
    assert log.update(every_state) == []
    log.close()
    lines = [json.loads(line) for line in (tmp_path / "trials.jsonl").read_text().splitlines()]
    assert [(line["study"], line["number"], line["state"]) for line in lines] == [
        (every_state.study_name, 7, "complete"),
        (every_state.study_name, 8, "pruned"),
    ]
    assert all(tuple(line)[1:] == TRIAL_KEYS for line in lines)
    quiet = TrialLog(every_state, None)  # no file: only which trials are new
    every_state.add_trial(_trial(TrialState.FAIL, params=30))
    assert [trial.number for trial in quiet.update(every_state)] == [9]


def test_a_trial_s_seconds_read_the_same_in_every_output():
    import datetime

    from nin_search.cli._optimize import trial_line
    from nin_search.summary import trial_seconds

    start = datetime.datetime(2026, 1, 1)
    trial = optuna.trial.create_trial(value=0.5, user_attrs={})
    # 43.4468 s: rounded once to 0.01 (43.45) for --json, then to 0.1 by every display; the
    # optimize line rounded the raw duration (43.4) while `trials` showed 43.5.
    trial.datetime_start = start
    trial.datetime_complete = start + datetime.timedelta(seconds=43.4468)
    assert trial_seconds(trial) == 43.45
    assert trial_line(trial).endswith(f"{43.45:.1f} s")


def test_every_output_counts_a_trial_s_epochs_as_the_last_epoch_it_reported():
    from nin_search.cli._optimize import trial_line

    # A retry that took over from its checkpoint reports from epoch 3 on.
    trial = create_trial(
        state=TrialState.PRUNED,
        intermediate_values={3: 0.5, 4: 0.6},
        user_attrs={records.RESUMED_FROM_EPOCH: 2},
    )
    assert trial_summary(trial)["epochs"] == 4
    assert "pruned at epoch 4" in trial_line(trial) and "4 epochs" in trial_line(trial)


def test_trials_ranks_by_the_study_s_direction_as_best_does():
    from nin_search.trials import best_trials

    study = optuna.create_study(direction="minimize")
    for value in (0.5, 0.1, 0.3):
        study.add_trial(create_trial(value=value, user_attrs={records.ARCH: {}}))
    rows = trials_table(study)
    assert [row["number"] for row in rows] == [1, 2, 0]
    assert rows[0]["number"] == best_trials(study)[0].number


def test_trials_sorted_by_a_cost_no_trial_measured_says_why():
    study = optuna.create_study(direction="maximize")
    study.add_trial(create_trial(value=0.5, user_attrs={records.ARCH: {}, records.PARAMS: 10}))
    with pytest.raises(UserError, match="latency is measured only when it is an objective"):
        trials_table(study, sort="latency_ms")
    assert [row["number"] for row in trials_table(study, sort="params")] == [0]
    assert trials_table(optuna.create_study(), sort="latency_ms") == []  # no trial: no rows
