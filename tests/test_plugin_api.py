"""README "Python API": the plugin example runs exactly as written, and the CLI reads its study."""

import json
import re

import numpy as np
import optuna
import pytest

from nin_search import REQUIRED_USER_ATTRS, DeviceData, TrainSettings, records
from nin_search.report import write_report

from .conftest import REPO, run_cli

MARKED = re.compile(r"<!-- plugin-example -->\n```python\n(.*?)```\n<!-- /plugin-example -->", re.S)


def readme_example() -> str:
    found = MARKED.findall((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(found) == 1, "README.md must hold exactly one marked plugin example"
    return found[0]


def url_of(folder) -> str:
    return f"sqlite:///{folder / 'my_search.db'}"  # the example's study, wherever the test runs


@pytest.fixture(scope="module")
def plugin_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugin")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        exec(compile(readme_example(), "README.md:plugin-example", "exec"), {"__name__": "plugin"})
    return folder


def test_the_readme_example_writes_a_study_with_the_attrs_the_cli_needs(plugin_study):
    study = optuna.load_study(study_name="my-search", storage=url_of(plugin_study))
    assert study.user_attrs[records.CREATED_BY]
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 3
    for trial in trials:
        assert set(REQUIRED_USER_ATTRS) <= set(trial.user_attrs)
        assert trial.params["net_num_stages"] in (1, 2)  # the prefix is on every name
        assert all(name.startswith("net_") or name == "learning_rate" for name in trial.params)
        assert len(trial.intermediate_values) == 2  # reported every epoch
        assert 0.0 <= trial.value <= 1.0


def test_nin_search_best_and_report_read_the_plugin_study(plugin_study):
    result = run_cli("best", "--storage", url_of(plugin_study), "--json", cwd=plugin_study)
    assert result.returncode == 0, result.stderr
    best = json.loads(result.stdout)["best"]
    study = optuna.load_study(study_name="my-search", storage=url_of(plugin_study))
    assert best["number"] == study.best_trial.number
    assert best["arch"] == study.best_trial.user_attrs[records.ARCH]
    assert best["num_params"] == study.best_trial.user_attrs[records.PARAMS] > 0
    table = run_cli("best", "--storage", url_of(plugin_study), cwd=plugin_study)
    assert table.returncode == 0, table.stderr
    rate = study.best_trial.params["learning_rate"]
    # No optimizer or batch size among the plugin's params: "-" keeps each value in its place.
    assert re.search(rf"opt, lr, batch\s+│\s+-, {rate:.3g}, -\s", table.stdout), table.stdout
    write_report(study, plugin_study / "report.html")
    assert (plugin_study / "report.html").stat().st_size > 0


def test_plain_tensors_are_checked_and_quoted():
    with pytest.raises(ValueError, match=r"shape=\(5, 8, 8\)"):
        DeviceData.from_tensors(np.zeros((5, 8, 8)), np.zeros((5,), int))
    with pytest.raises(ValueError, match=r"labels must be 5 integer class indices"):
        DeviceData.from_tensors(np.zeros((5, 1, 8, 8)), np.zeros((4,), int))
    with pytest.raises(ValueError, match="holds no image"):
        DeviceData.from_tensors(np.zeros((0, 1, 8, 8)), np.zeros((0,), int))
    with pytest.raises(ValueError, match="epochs=0"):
        TrainSettings(epochs=0)
    with pytest.raises(ValueError, match="schedule='linear'"):
        TrainSettings(schedule="linear")


def test_the_readme_example_prunes_a_diverged_trial_and_goes_on(tmp_path, monkeypatch):
    # The example with a learning rate that makes the loss NaN: the trial is pruned, the
    # study goes on (a NonFiniteLossError would end study.optimize).
    code = readme_example().replace('"learning_rate", 0.01, 0.1', '"learning_rate", 1e6, 1e7')
    assert code != readme_example()
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md:plugin-example", "exec"), {"__name__": "plugin"})
    study = optuna.load_study(study_name="my-search", storage=url_of(tmp_path))
    assert [trial.state for trial in study.trials] == [optuna.trial.TrialState.PRUNED] * 3


def test_the_package_lists_only_its_public_names():
    import nin_search

    assert set(dir(nin_search)) == {"__version__", *nin_search.__all__}
    assert all(getattr(nin_search, name) is not None for name in nin_search.__all__)


def test_the_answer_of_a_study_whose_trials_lack_the_attrs_says_which_attrs():
    from nin_search.analysis import answer_lines, get_answer

    study = optuna.create_study(direction="maximize")
    for value in (0.5, 0.7):
        study.add_trial(optuna.trial.create_trial(value=value))
    (_, line) = answer_lines(get_answer(study))
    assert "none of its 2 finished trials records its architecture" in line
    assert "REQUIRED_USER_ATTRS" in line
    (_, line) = answer_lines(get_answer(optuna.create_study()))
    assert "no finished trials yet" in line


def test_every_public_class_has_its_own_docstring():
    import inspect

    import nin_search

    for name in nin_search.__all__:
        value = getattr(nin_search, name)
        if inspect.isclass(value):
            doc = value.__dict__.get("__doc__") or ""
            assert doc and not doc.startswith(f"{value.__name__}("), name  # not dataclass's
