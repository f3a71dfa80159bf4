"""The OptunaHub package in contrib/optunahub/pruners/dominated, loaded as OptunaHub loads it."""

from __future__ import annotations

import contextlib
import io
import runpy

import optuna
import pytest
from optuna.trial import TrialState

from nin_search.dominated import DominatedCurvePruner
from nin_search.pruning import CurvePoint, DominatedPruner
from nin_search.sampling import MultiObjectiveTPESampler

from .conftest import REPO

optunahub = pytest.importorskip(
    "optunahub",
    reason="optunahub is not installed (it is in the dev extra: pip install -e '.[dev]')",
)

REGISTRY = REPO / "contrib" / "optunahub"  # what OptunaHub's registry calls package/
PACKAGE = REGISTRY / "pruners" / "dominated"


def load_package():
    return optunahub.load_local_module(package="pruners/dominated", registry_root=str(REGISTRY))


def front_matter(readme: str) -> dict[str, str]:
    """The ``key: value`` lines between the README's two ``---`` lines."""
    _, header, _ = readme.split("---\n", 2)
    return dict(line.split(": ", 1) for line in header.splitlines())


def test_the_package_has_the_files_and_readme_sections_the_registry_asks_for():
    assert {"__init__.py", "README.md", "LICENSE", "example.py", "requirements.txt"} <= {
        path.name for path in PACKAGE.iterdir()
    }
    readme = (PACKAGE / "README.md").read_text()
    header = front_matter(readme)
    assert set(header) == {"author", "title", "description", "tags", "optuna_versions", "license"}
    assert "pruner" in header["tags"] and header["license"] == "MIT License"
    for section in ("## Abstract", "## APIs", "## Installation", "## Example", "## Others"):
        assert section in readme
    assert (PACKAGE / "LICENSE").read_text().startswith("MIT License")
    assert (PACKAGE / "requirements.txt").read_text().split() == ["nin-search"]


def test_the_package_is_a_thin_wrapper_over_nin_search():
    module = load_package()
    assert module.__name__ == "optunahub_registry.package.pruners.dominated"
    assert module.DominatedCurvePruner is DominatedCurvePruner
    assert module.DominatedPruner is DominatedPruner
    assert module.CurvePoint is CurvePoint
    assert module.MultiObjectiveTPESampler is MultiObjectiveTPESampler
    assert sorted(module.__all__) == sorted(
        ["CurvePoint", "DominatedCurvePruner", "DominatedPruner", "MultiObjectiveTPESampler"]
    )


@pytest.fixture(scope="module")
def example() -> dict:
    """example.py run as a script (it loads the package with optunahub.load_local_module)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        namespace = runpy.run_path(str(PACKAGE / "example.py"), run_name="__main__")
    namespace["printed"] = printed.getvalue()
    return namespace


def test_the_example_prunes_some_trials_and_completes_the_others(example):
    study = example["study"]
    states = [trial.state for trial in study.trials]
    assert len(states) == example["N_TRIALS"]
    assert set(states) == {TrialState.COMPLETE, TrialState.PRUNED}
    pruned = states.count(TrialState.PRUNED)
    assert f"{pruned} of {len(states)} trials pruned" in example["printed"]
    for trial in study.trials:
        if trial.state == TrialState.COMPLETE:
            assert len(trial.intermediate_values) == example["EPOCHS"]
            assert trial.values[0] == trial.intermediate_values[example["EPOCHS"]]
            assert trial.values[1] == trial.user_attrs["n_params"]
        else:
            assert len(trial.intermediate_values) < example["EPOCHS"]


def test_every_decision_in_the_example_is_the_rules_on_the_same_curves_and_costs(example):
    study, options = example["study"], example["pruner"].rule
    rule = DominatedPruner(
        min_dominators=options.min_dominators,
        margin=options.margin,
        n_warmup_steps=options.n_warmup_steps,
    )

    def n_params(trial):  # recomputed from the parameters, not read from what the pruner stored
        return (64 + 1) * trial.params["hidden"] + (trial.params["hidden"] + 1) * 10

    trials = study.trials  # one worker: every earlier trial had finished when a trial ran
    for trial in trials:
        earlier = [
            CurvePoint(other.number, {"n_params": n_params(other)}, other.intermediate_values)
            for other in trials[: trial.number]
        ]
        stops = [
            step
            for step, accuracy in sorted(trial.intermediate_values.items())
            if rule.should_prune(
                epoch=step, accuracy=accuracy, costs={"n_params": n_params(trial)}, others=earlier
            )
        ]
        last_step = max(trial.intermediate_values)
        expected = [last_step] if trial.state == TrialState.PRUNED else []
        assert stops == expected, (trial.number, trial.state, stops)


def test_the_loaded_pruner_refuses_a_study_it_does_not_support():
    module = load_package()
    pruner = module.DominatedCurvePruner()
    study = optuna.create_study(directions=["minimize", "minimize"])
    with pytest.raises(ValueError, match="first objective maximized"):
        pruner.should_prune(study.ask(), 1, 0.5, costs={"n_params": 10})
