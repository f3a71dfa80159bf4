"""What users of Optuna's and typer's CLIs expect: -h, --version, whole command descriptions,
examples that parse, a line per finished trial, --quiet / --no-progress, a useful Next list."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import optuna
import pytest
import typer

from nin_search import __version__
from nin_search.cli import EXAMPLES, app

from .conftest import TINY_DIGITS, run_cli, write_study
from .test_cli import in_process


def test_dash_h_is_help_and_version_prints_the_version(monkeypatch, capsys):
    for command in ([], ["best"], ["optimize"]):
        long = in_process(monkeypatch, capsys, *command, "--help")
        short = in_process(monkeypatch, capsys, *command, "-h")
        assert short == long and long[0] == 0 and "Usage: nin-search" in long[1]
    assert in_process(monkeypatch, capsys, "--version") == (0, f"nin-search {__version__}\n", "")


def test_a_wrong_option_points_at_the_right_help(monkeypatch, capsys):
    code, _, err = in_process(monkeypatch, capsys, "best", "--bogus")
    assert code == 2 and err.strip().endswith("(see: nin-search best --help)")
    code, _, err = in_process(monkeypatch, capsys, "--versio")
    assert code == 2 and err.strip().endswith("(see: nin-search --help)")
    code, _, err = in_process(monkeypatch, capsys, "bogus")
    assert code == 2 and "No such command" in err and err.strip().endswith("nin-search --help)")


def test_the_command_list_shows_whole_descriptions(monkeypatch, capsys):
    _, out, _ = in_process(monkeypatch, capsys, "--help")
    listing = " ".join(out.split("Commands:")[1].split())
    assert "..." not in listing
    for info in app.registered_commands:
        first_paragraph = " ".join(info.callback.__doc__.strip().split("\n\n")[0].split())
        assert first_paragraph in listing


def test_the_defaults_the_cli_states_are_the_library_s():
    # The CLI restates them (it imports neither the library nor pydantic before a command
    # runs, so that --help is instant); these are the values the library uses.
    import inspect

    from nin_search.config import AblationConfig
    from nin_search.predict import predict_images
    from nin_search.summary import trials_table

    group = typer.main.get_command(app)

    def default(command: str, option: str) -> object:
        return next(p for p in group.commands[command].params if option in p.opts).default

    def library(function: object, name: str) -> object:
        return inspect.signature(function).parameters[name].default

    assert default("predict", "--top-k") == library(predict_images, "top_k")
    assert default("trials", "--sort") == library(trials_table, "sort")
    helps = {p.opts[0]: p.help for p in group.commands["ablate"].params if p.opts}
    assert f"ablation.top, {AblationConfig().top}]" in " ".join(helps["--top"].split())
    assert f"ablation.seeds, {AblationConfig().seeds}]" in " ".join(helps["--seeds"].split())


def test_every_command_has_examples_that_parse():
    group = typer.main.get_command(app)
    names = set(group.commands)
    assert set(EXAMPLES) == names
    for name, lines in EXAMPLES.items():
        command = group.commands[name]
        assert "Examples:" in (command.epilog or "")
        for line in lines:
            words = shlex.split(line, comments=True)
            assert words[:2] == ["nin-search", name], line
            arguments = [word for word in words[2:] if word != ">"]
            arguments = arguments[: arguments.index("trials.csv")] if ">" in line else arguments
            with typer.Context(group) as parent:
                command.make_context(name, arguments, parent=parent)  # raises on a bad option


def test_optimize_prints_a_line_per_trial_and_the_next_commands(tmp_path):
    study_file = write_study(tmp_path, TINY_DIGITS + "\n[ablation]\nafter_search = false\n")
    missing = run_cli("optimize", str(study_file), "--log-file", "no/such/t.jsonl", cwd=tmp_path)
    assert missing.returncode == 2 and "--log-file does not exist" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "nin_search.db").exists()  # checked before anything was written
    first = run_cli(
        "optimize", str(study_file), "--no-progress", "--log-file", "t.jsonl", cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    storage = f"sqlite:///{tmp_path / 'nin_search.db'}"
    trials = optuna.load_study(study_name="tiny", storage=storage).get_trials()
    lines = [line for line in first.stderr.splitlines() if line.startswith("trial #")]
    assert len(lines) == len(trials) == 3
    for trial, line in zip(trials, lines, strict=True):
        state = "complete" if trial.state.name == "COMPLETE" else "pruned at epoch"
        assert line.startswith(f"trial #{trial.number}  {state}")
        assert trial.user_attrs["arch_summary"] in line
        assert f"{trial.user_attrs['params']:,} params" in line
        assert re.search(r"\d+ epochs?  \d+\.\d s$", line)
    assert "━" not in first.stderr  # no progress bar
    logged = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [(row["study"], row["number"], row["state"]) for row in logged] == [
        ("tiny", trial.number, trial.state.name.lower()) for trial in trials
    ]
    for row, trial in zip(logged, trials, strict=True):
        assert row["num_params"] == trial.user_attrs["params"]
        assert row["epochs"] == len(trial.intermediate_values)
        last = trial.intermediate_values[max(trial.intermediate_values)]
        assert row["accuracy"] == pytest.approx(trial.value if trial.value is not None else last)
    next_steps = first.stdout.split("Next:")[1]
    for command in ("report", "trials", "export", "train", "ablate"):
        assert f"nin-search {command} --storage sqlite:///nin_search.db --study-name tiny" in (
            next_steps
        )
    assert "optuna-dashboard sqlite:///nin_search.db" in next_steps
    assert "other machines trained" not in next_steps  # one machine: every weight is here
    assert "recovered" not in first.stderr  # nothing was recovered: nothing said

    # The target is reached: said, with the command that raises it.
    again = run_cli("optimize", str(study_file), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already has 3 finished trials" in again.stderr
    assert f"nin-search optimize {study_file} --n-trials 13" in again.stderr

    quiet = run_cli(
        "optimize", str(study_file), "--n-trials", "4", "-q", "--log-file", "t.jsonl", cwd=tmp_path
    )
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) == 4  # appended
    assert "Next:" not in quiet.stdout and "study 'tiny'" in quiet.stdout
    assert len(optuna.load_study(study_name="tiny", storage=storage).get_trials()) == 4


def test_the_readme_signature_of_every_command_names_every_option():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    headings = dict(re.findall(r"^### `nin-search (\w+)(.*)`$", readme, flags=re.MULTILINE))
    group = typer.main.get_command(app)
    assert set(headings) == set(group.commands)
    for name, command in group.commands.items():
        words = set(re.findall(r"-{1,2}[\w-]+", headings[name]))
        for parameter in command.params:
            if parameter.param_type_name != "option" or parameter.hidden:
                continue
            if "--help" in parameter.opts:
                continue
            assert words & set(parameter.opts), f"README: nin-search {name} lacks {parameter.opts}"


def test_optimize_runs_one_worker_per_cpu_core_by_default(tmp_path, monkeypatch):
    from nin_search import devices, search
    from nin_search.config import default_config

    monkeypatch.setattr(devices, "usable_cpu_cores", lambda: 3)
    config = default_config()
    config = config.model_copy(update={"train": config.train.model_copy(update={"device": "cpu"})})
    storage = f"sqlite:///{tmp_path / 'w.db'}"
    plan = search.plan_search(config, storage_url=storage, study_name="w", workers=None)
    assert plan.workers == 3 and plan.load_device == "cpu"
    assert search.plan_search(config, storage_url=storage, study_name="w").workers == 1  # API
    assert search.plan_search(config, storage_url=storage, study_name="w", workers=2).workers == 2


def test_the_workers_default_can_come_from_the_environment(tmp_path, monkeypatch):
    ablated = "\n[ablation]\nafter_search = true\nseeds = 1\n"
    study = TINY_DIGITS.replace("n_trials = 3", "n_trials = 2") + ablated
    study_file = write_study(tmp_path, study)
    monkeypatch.setenv("NIN_SEARCH_WORKERS", "2")
    result = run_cli("optimize", str(study_file), "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 worker(s) on cpu" in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("trial #")]) == 2
    # The ablation after the search trains in the same workers, a line per finished run.
    assert "to train in 2 worker(s) on cpu" in result.stderr
    runs = optuna.load_study(
        study_name="tiny:ablation", storage=f"sqlite:///{tmp_path / 'nin_search.db'}"
    ).get_trials()
    assert runs and all(run.state == optuna.trial.TrialState.COMPLETE for run in runs)
    lines = [line for line in result.stderr.splitlines() if line.startswith("ablation run #")]
    assert len(lines) == len(runs)


def test_the_ablation_after_a_search_follows_no_progress_and_quiet(tmp_path):
    ablated = TINY_DIGITS + "\n[ablation]\nafter_search = true\nseeds = 1\n"
    study_file = write_study(tmp_path, ablated)
    plain = run_cli("optimize", str(study_file), "--no-progress", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "━" not in plain.stderr  # no progress bar, the search's or the ablation's
    storage = f"sqlite:///{tmp_path / 'nin_search.db'}"
    runs = optuna.load_study(study_name="tiny:ablation", storage=storage).get_trials()
    lines = [line for line in plain.stderr.splitlines() if line.startswith("ablation run #")]
    assert len(lines) == len(runs) >= 3  # a line per finished run, as for the trials
    assert all(re.search(r"  complete  \d+\.\d\d%  2 epochs  \d+\.\d s$", line) for line in lines)
    # `ablate` (no --no-progress to pass) prints the same line per run, under its bars.
    more = run_cli(
        "ablate", "--seeds", "2", "--storage", storage, "--study-name", "tiny", cwd=tmp_path
    )
    assert more.returncode == 0, more.stderr
    added = len(optuna.load_study(study_name="tiny:ablation", storage=storage).get_trials())
    more_lines = [line for line in more.stderr.splitlines() if line.startswith("ablation run #")]
    assert len(more_lines) == added - len(runs) >= 3

    quiet_file = write_study(tmp_path, ablated.replace('name = "tiny"', 'name = "quiet"'), "q.toml")
    quiet = run_cli("optimize", str(quiet_file), "-q", cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert "Answer" in quiet.stdout


def test_a_run_stopped_by_the_timeout_says_so_and_how_to_go_on(tmp_path):
    write_study(tmp_path, TINY_DIGITS.replace("n_trials = 3", "n_trials = 3\ntimeout = 0.001"))
    result = run_cli("optimize", "study.toml", "--workers", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(
        r"stopped at the timeout \(0\.001 s\) with [12] of 3 trials finished; run the same "
        r"command again to go on",
        " ".join(result.stderr.split()),
    ), result.stderr
