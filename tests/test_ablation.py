"""The paired ablation: its variants, its plan, and `nin-search ablate` end to end (resume after
a kill included), plus the record of how each searched trial's parameters were chosen."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from optuna.trial import FixedTrial, TrialState

from nin_search import ArchSpec, StageSpec, presets
from nin_search.ablation_plan import AblationJob, ablation_seed
from nin_search.config import StudyConfig
from nin_search.devices import usable_cpu_cores
from nin_search.model import count_params
from nin_search.records import (
    ABLATION_SEED,
    ABLATION_SOURCE,
    ABLATION_STAGE,
    ABLATION_VARIANT,
    ARCH,
    ORIGINAL_STAGE,
    SAMPLED_BY,
    SEED,
    ablation_study_name,
)
from nin_search.sampling import RandomFirstSampler
from nin_search.space import suggest_hyperparameters
from nin_search.spec import Hyperparameters
from nin_search.trials import recorded_config
from nin_search.variants import PARAM_TOLERANCE, ablation_variants, flip_stage, match_params

from .conftest import postgres_url, run_cli, write_study

SMALL = ArchSpec(
    stages=(
        StageSpec("mlp", kernel_size=5, width=64, mlp_widths=(64, 32), pool="max"),
        StageSpec("plain", kernel_size=3, width=16, pool="max"),
        StageSpec("plain", kernel_size=5, width=16, pool="none"),
    ),
    dropout=0.2,
)
SHAPE = {"in_channels": 3, "num_classes": 10}


# ----------------------------------------------------------------------------------------------
# Variants
# ----------------------------------------------------------------------------------------------


def test_flipping_an_mlp_stage_removes_its_1x1_layers_and_nothing_else():
    flipped = flip_stage(SMALL, 0)
    assert flipped.stages[0] == StageSpec("plain", kernel_size=5, width=64, pool="max")
    assert flipped.stages[1:] == SMALL.stages[1:]
    assert (flipped.head, flipped.dropout, flipped.batch_norm) == ("nin", 0.2, True)


def test_flipping_a_plain_stage_adds_nin_depth_1x1_layers_at_the_stage_width():
    flipped = flip_stage(SMALL, 1)
    assert flipped.stages[1] == StageSpec("mlp", 3, 16, mlp_widths=(16, 16), pool="max")
    # NIN's last mlpconv has one 1x1 layer before its classifier.
    assert flip_stage(SMALL, 2).stages[2].mlp_widths == (16,)
    assert flipped.stages[0] == SMALL.stages[0] and flipped.stages[2] == SMALL.stages[2]


@pytest.mark.parametrize(
    "arch", [SMALL, presets.nin_cifar10(), presets.plain_cifar10()], ids=["small", "nin", "plain"]
)
def test_matched_variants_flip_the_stage_at_the_original_parameter_count(arch):
    target = count_params(arch, **SHAPE)
    for index, stage in enumerate(arch.stages):
        matched = match_params(arch, index, **SHAPE)
        assert matched.stages[index].kind != stage.kind
        others = [s for i, s in enumerate(matched.stages) if i != index]
        assert others == [s for i, s in enumerate(arch.stages) if i != index]
        params = count_params(matched, **SHAPE)
        assert abs(params - target) <= PARAM_TOLERANCE * target, (index, params, target)


def test_the_variants_are_the_original_then_flipped_and_matched_per_stage():
    variants = ablation_variants(SMALL, **SHAPE)
    assert [(v.stage, v.name) for v in variants] == [
        (ORIGINAL_STAGE, "original"),
        (0, "flipped"),
        (0, "matched"),
        (1, "flipped"),
        (1, "matched"),
        (2, "flipped"),
        (2, "matched"),
    ]
    assert variants[0].arch == SMALL


def test_a_flipped_network_within_the_tolerance_is_its_own_matched_one_and_trained_once():
    # A 1x1 layer of 16 channels in a 200k-parameter network: flipping it changes 0.1%.
    arch = ArchSpec(
        stages=(
            StageSpec("mlp", kernel_size=3, width=16, mlp_widths=(16,), pool="max"),
            StageSpec("plain", kernel_size=5, width=128, pool="max"),
            StageSpec("plain", kernel_size=3, width=128, pool="none"),
        )
    )
    assert match_params(arch, 0, **SHAPE) == flip_stage(arch, 0)
    variants = ablation_variants(arch, **SHAPE)
    names = [(v.stage, v.name) for v in variants]
    assert (0, "flipped") in names and (0, "matched") not in names
    assert (1, "matched") in names and (2, "matched") in names
    # The flipped run says so, for the analysis: it is read as the matched one too.
    assert [v.also_matched for v in variants if v.name == "flipped"] == [True, False, False]
    job = AblationJob(3, 0, "flipped", 1, 7, variants[1].arch, Hyperparameters(), also_matched=True)
    assert job.user_attrs(params=100)["ablation_also_matched"] is True
    plain_job = job._replace(also_matched=False)
    assert "ablation_also_matched" not in plain_job.user_attrs(params=100)


def test_ablation_seeds_are_fresh_never_the_searched_runs_own():
    # The searched run was picked as the best on the validation images: replaying it as one
    # of the original's seeds would favour the original (the winner's curse).
    seeds = {ablation_seed(1234, index) for index in range(1, 11)}
    assert len(seeds) == 10 and 1234 not in seeds
    assert ablation_seed(1234, 3) == ablation_seed(1234, 3)
    for index in (0, -1):
        with pytest.raises(ValueError, match=f"seed_index={index}"):
            ablation_seed(1234, index)


# ----------------------------------------------------------------------------------------------
# How a searched trial's parameters were chosen
# ----------------------------------------------------------------------------------------------


def _objective(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0, 1) + trial.suggest_int("n", 1, 9)


def test_the_first_trials_are_drawn_at_random_and_every_trial_records_its_origin():
    sampler = RandomFirstSampler(optuna.samplers.TPESampler(seed=3), n_random=4, seed=7)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.enqueue_trial({"x": 0.5, "n": 2})
    study.optimize(_objective, n_trials=9)
    origins = [trial.user_attrs[SAMPLED_BY] for trial in study.trials]
    assert origins == ["enqueued"] + ["random"] * 4 + ["model"] * 4
    # The random trials are exactly what Optuna's RandomSampler draws with that seed.
    reference = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
    reference.optimize(_objective, n_trials=4)
    assert [t.params for t in study.trials[1:5]] == [t.params for t in reference.trials]


def test_a_retried_trial_keeps_the_origin_of_the_trial_it_repeats():
    sampler = RandomFirstSampler(optuna.samplers.TPESampler(seed=0), n_random=2, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.enqueue_trial({"x": 0.1, "n": 1}, user_attrs={SAMPLED_BY: "random"})
    study.optimize(_objective, n_trials=3)
    assert [t.user_attrs[SAMPLED_BY] for t in study.trials] == ["random", "random", "model"]


def test_a_random_sampler_study_is_random_throughout():
    sampler = RandomFirstSampler(optuna.samplers.RandomSampler(seed=0), n_random=0, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_objective, n_trials=3)
    assert {t.user_attrs[SAMPLED_BY] for t in study.trials} == {"random"}


def test_random_first_sampler_refuses_a_negative_budget():
    with pytest.raises(ValueError, match="n_random=-1"):
        RandomFirstSampler(optuna.samplers.RandomSampler(), n_random=-1, seed=0)


# ----------------------------------------------------------------------------------------------
# `nin-search ablate` end to end
# ----------------------------------------------------------------------------------------------

# Two stages, 3 epochs, no pruning: the search completes 4 trials; the ablation of the best
# has 1 + 2 * 2 = 5 networks per seed.
ABLATE_STUDY = """
[study]
name = "abl"
seed = 2
n_trials = 4
random_trials = 2

[space]
num_stages = 2
widths = [8, 16]
mlp_widths = [8, 16]

[train]
epochs = 3
batch_size = [64]
device = "cpu"

[optuna]
pruner = "none"
"""
RUNS_PER_SEED = 5


@pytest.fixture(scope="module")
def searched_abl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ablate")
    write_study(folder, ABLATE_STUDY)
    result = run_cli("optimize", "study.toml", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder


def _copy(folder: Path, tmp_path: Path) -> Path:
    for name in ("nin_search.db", "study.toml"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    return tmp_path


def _ablation_trials(folder: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(
        study_name=ablation_study_name("abl"), storage=f"sqlite:///{folder / 'nin_search.db'}"
    ).get_trials()


def _keys(trials) -> list[tuple]:
    names = (ABLATION_SOURCE, ABLATION_STAGE, ABLATION_VARIANT, ABLATION_SEED)
    return [tuple(t.user_attrs[name] for name in names) for t in trials]


def test_searched_trials_record_how_their_parameters_were_chosen(searched_abl):
    study = optuna.load_study(study_name="abl", storage=f"sqlite:///{searched_abl}/nin_search.db")
    origins = [t.user_attrs[SAMPLED_BY] for t in study.trials]
    assert origins == ["enqueued", "enqueued", "random", "random"]


def test_ablate_trains_every_variant_with_paired_seeds_and_resumes_new_seeds_only(
    searched_abl, tmp_path
):
    folder = _copy(searched_abl, tmp_path)
    result = run_cli("ablate", "study.toml", "--seeds", "2", cwd=folder)
    assert result.returncode == 0, result.stderr
    trials = _ablation_trials(folder)
    assert len(trials) == 2 * RUNS_PER_SEED
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert len(set(_keys(trials))) == len(trials)
    source = optuna.load_study(study_name="abl", storage=f"sqlite:///{folder}/nin_search.db")
    best = source.best_trial
    config = StudyConfig.model_validate(recorded_config(source))
    hparams = suggest_hyperparameters(FixedTrial(best.params), config.train).to_dict()
    assert {t.user_attrs[ABLATION_SOURCE] for t in trials} == {best.number}
    for trial in trials:  # every variant of one seed index trains with the same seed
        index = trial.user_attrs[ABLATION_SEED]
        assert trial.user_attrs[SEED] == ablation_seed(best.user_attrs[SEED], index)
        assert trial.user_attrs["hparams"] == hparams  # the source trial's, unchanged
    # Fresh seeds 1..S, never the searched run's own: the original is the searched network.
    assert {t.user_attrs[ABLATION_SEED] for t in trials} == {1, 2}
    assert best.user_attrs[SEED] not in {t.user_attrs[SEED] for t in trials}
    original = next(t for t in trials if t.user_attrs[ABLATION_VARIANT] == "original")
    assert original.user_attrs[ARCH] == best.user_attrs[ARCH]

    # A third seed trains only the new runs; `best` still finds the searched study alone.
    result = run_cli("ablate", "study.toml", "--seeds", "3", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert f"{3 * RUNS_PER_SEED} runs, {2 * RUNS_PER_SEED} done before" in result.stderr
    trials = _ablation_trials(folder)
    assert len(trials) == 3 * RUNS_PER_SEED and len(set(_keys(trials))) == len(trials)
    result = run_cli("best", "--json", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert '"study": "abl"' in result.stdout


def _rerun_trains_the_rest(folder: Path, *options: str, done_before: int) -> list:
    """Runs ``ablate --seeds 2`` again after a stop: it says how many runs were done, and
    completes every run once (nothing trained twice). Returns the companion study's trials."""
    result = run_cli("ablate", "study.toml", "--seeds", "2", *options, cwd=folder)
    assert result.returncode == 0, result.stderr
    assert f"{done_before} done before" in result.stderr
    trials = _ablation_trials(folder)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 2 * RUNS_PER_SEED
    assert len(set(_keys(complete))) == len(complete)  # nothing trained twice
    return trials


@pytest.mark.parametrize(
    "signal_number", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"]
)
def test_a_stopped_ablation_resumes_with_only_the_unfinished_runs(
    searched_abl, tmp_path, signal_number
):
    folder = _copy(searched_abl, tmp_path)
    env = {**os.environ, "COLUMNS": "120"}
    args = [sys.executable, "-m", "nin_search", "ablate", "study.toml", "--seeds", "2"]
    process = subprocess.Popen(args, cwd=folder, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    storage = f"sqlite:///{folder / 'nin_search.db'}"

    def finished_one_and_running_another() -> bool:
        try:
            study = optuna.load_study(study_name=ablation_study_name("abl"), storage=storage)
        except KeyError:
            return False
        trials = study.get_trials(deepcopy=False)
        done = sum(t.state == TrialState.COMPLETE for t in trials)
        running = [t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values]
        return done >= 1 and bool(running)

    deadline = time.monotonic() + 300
    while not finished_one_and_running_another():
        assert process.poll() is None, "ablate exited before it could be stopped"
        assert time.monotonic() < deadline, "no ablation run started"
        time.sleep(0.05)
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=60)
    left = _ablation_trials(folder)
    if signal_number == signal.SIGKILL:  # nobody could record anything: still running
        assert process.returncode == -signal.SIGKILL
        stopped = [t for t in left if t.state == TrialState.RUNNING]
    else:  # the run was failed with its reason at once, and the command says what to do
        assert process.returncode == 143, stderr[-3000:]
        assert "terminated: finished ablation runs are kept; run the same command again" in stderr
        assert "Traceback" not in stderr, stderr[-3000:]
        assert not [t for t in left if t.state == TrialState.RUNNING]
        stopped = [t for t in left if t.state == TrialState.FAIL]
        assert stopped and stopped[0].user_attrs["fail_reason"] == "interrupted (Terminated)"
    done_before = [t for t in _ablation_trials(folder) if t.state == TrialState.COMPLETE]

    trials = _rerun_trains_the_rest(folder, done_before=len(done_before))
    assert len(stopped) == 1 and trials[stopped[0].number].state == TrialState.FAIL
    # The earlier runs were kept as they were, not trained again.
    kept = {t.number: t.value for t in trials if t.state == TrialState.COMPLETE}
    assert all(kept[t.number] == t.value for t in done_before)


def test_ablate_in_two_workers_gives_every_run_the_value_one_process_gives_it(
    searched_abl, tmp_path, monkeypatch
):
    (tmp_path / "workers").mkdir()
    workers = _copy(searched_abl, tmp_path / "workers")
    result = run_cli("ablate", "study.toml", "--seeds", "2", "--workers", "2", cwd=workers)
    assert result.returncode == 0, result.stderr
    assert f"{2 * RUNS_PER_SEED} to train in 2 worker(s) on cpu" in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("ablation run #")]
    assert len(lines) == 2 * RUNS_PER_SEED  # a line per run, as the workers finish them
    trials = _ablation_trials(workers)
    # Every run trained once, in full (the companion study never prunes), no trial that is no
    # run (the workers' shares add up to the queue), by both workers.
    assert len(trials) == 2 * RUNS_PER_SEED
    assert all(t.state == TrialState.COMPLETE for t in trials), [t.state for t in trials]
    assert all(len(t.intermediate_values) == 3 for t in trials)
    assert len(set(_keys(trials))) == len(trials)
    assert len({t.user_attrs["worker"]["pid"] for t in trials}) == 2

    # Each run's value depends on its seed and the threads it had, not on the worker: one
    # process with a worker's threads gives the same numbers.
    (tmp_path / "one").mkdir()
    one = _copy(searched_abl, tmp_path / "one")
    monkeypatch.setenv("OMP_NUM_THREADS", str(max(1, usable_cpu_cores() // 2)))
    result = run_cli("ablate", "study.toml", "--seeds", "2", "--workers", "1", cwd=one)
    assert result.returncode == 0, result.stderr
    assert "worker(s)" not in result.stderr.splitlines()[0]  # trained in this process
    by_key = dict(zip(_keys(trials), [t.value for t in trials], strict=True))
    in_one = _ablation_trials(one)
    assert dict(zip(_keys(in_one), [t.value for t in in_one], strict=True)) == by_key


def test_ablate_in_two_workers_on_postgresql_trains_every_run_once(tmp_path):
    url = postgres_url()
    name = f"abl-{uuid.uuid4().hex[:12]}"
    write_study(tmp_path, ABLATE_STUDY)
    where = ("--storage", url, "--study-name", name)
    try:
        result = run_cli("optimize", "study.toml", *where, "--workers", "1", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        result = run_cli("ablate", *where, "--seeds", "1", "--workers", "2", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert f"{RUNS_PER_SEED} to train in 2 worker(s) on cpu" in result.stderr
        runs = optuna.load_study(study_name=ablation_study_name(name), storage=url).get_trials()
        assert len(runs) == RUNS_PER_SEED and len(set(_keys(runs))) == RUNS_PER_SEED
        assert all(run.state == TrialState.COMPLETE for run in runs)
        assert len({run.user_attrs["worker"]["pid"] for run in runs}) == 2
    finally:
        for study in (name, ablation_study_name(name)):
            with contextlib.suppress(KeyError):  # never created
                optuna.delete_study(study_name=study, storage=url)


def test_with_several_workers_even_one_queued_run_trains_in_a_worker_on_its_device():
    # With --workers > 1 this process holds the data on the CPU (for its shape and checks
    # only): a run it trained itself would train there, not on the workers' device.
    from types import SimpleNamespace

    import torch

    from nin_search.ablation import ablation_workers
    from nin_search.ablation_plan import AblationPlan
    from nin_search.workers import WorkerPlan

    gpus = WorkerPlan(2, ("cuda:0", "cuda:1"), torch.device("cuda:0"))
    assert gpus.load_device == "cpu"
    one_run = AblationPlan(total=5, done=4, queued=1)
    assert ablation_workers(SimpleNamespace(workers=2), one_run) == 1  # a worker, not 0
    assert ablation_workers(SimpleNamespace(workers=2), AblationPlan(5, 0, 5)) == 2
    assert ablation_workers(SimpleNamespace(workers=8), AblationPlan(5, 0, 5)) == 5
    assert ablation_workers(SimpleNamespace(workers=1), AblationPlan(5, 0, 5)) == 0  # here


def test_an_ablation_with_fewer_runs_left_than_workers_keeps_one_workers_threads(
    monkeypatch, tmp_path
):
    # A resumed `ablate --workers 2` with one run left starts one process; it must train with
    # the threads of one of two workers, or the run's numbers would depend on the queue.
    from types import SimpleNamespace

    from nin_search import ablation
    from nin_search.config import default_config
    from nin_search.recovery import RunOutcome

    seen = {}
    monkeypatch.setattr(ablation, "run_workers", lambda *a, **kw: seen.update(kw) or RunOutcome(0))
    study = optuna.create_study()
    study.enqueue_trial({}, user_attrs={"ablation_source": 0})
    setup = SimpleNamespace(config=default_config(), storage_url="sqlite:///x.db",
                            artifact_dir=tmp_path, workers=2, devices=("cpu",))  # fmt: skip
    assert ablation.run_ablation_in_workers(setup, study).exit_code == 0
    assert seen["workers"] == 1 and seen["cpu_workers"] == 2


def test_runs_an_earlier_ablate_left_waiting_are_announced_counted_and_trained(
    searched_abl, tmp_path
):
    from nin_search.ablation import load_ablation_data, prepare_ablation, setup_ablation

    folder = _copy(searched_abl, tmp_path)
    setup = setup_ablation(f"sqlite:///{folder / 'nin_search.db'}", "abl")
    best = setup.study.best_trial.number
    other = next(t.number for t in setup.study.trials if t.number != best and t.value)
    # `ablate --trial OTHER` queued its runs and was stopped before it trained any.
    data = load_ablation_data(setup)
    left = prepare_ablation(
        setup.study, setup.config, data=data, artifact_dir=setup.artifact_dir, trial_number=other,
        seeds=1,
    )  # fmt: skip
    result = run_cli("ablate", "study.toml", "--seeds", "1", cwd=folder)
    assert result.returncode == 0, result.stderr
    line = result.stderr.splitlines()[0]
    assert f"{RUNS_PER_SEED} runs, 0 done before, {RUNS_PER_SEED} to train, and " in line
    assert f"{left.plan.queued} waiting run(s) of trial(s) [{other}] that an earlier" in line
    trials = _ablation_trials(folder)
    assert len(trials) == RUNS_PER_SEED + left.plan.queued
    assert all(t.state == TrialState.COMPLETE for t in trials)
    lines = [line for line in result.stderr.splitlines() if line.startswith("ablation run #")]
    assert len(lines) == len(trials)


def _running_run(folder: Path, parent: int) -> optuna.trial.FrozenTrial | None:
    """A run a worker process (not ``parent``) is training, past its first epoch."""
    try:
        trials = _ablation_trials(folder)
    except KeyError:  # the companion study is not written yet
        return None
    for trial in trials:
        worker = trial.user_attrs.get("worker") or {}
        running = trial.state == TrialState.RUNNING and trial.intermediate_values
        if running and worker.get("pid") not in (None, parent):
            return trial
    return None


@pytest.mark.parametrize("stop", ["kill-a-worker", "sigterm-the-group", "ctrl-c"])
def test_a_stopped_ablation_in_workers_keeps_its_runs_and_the_next_run_trains_the_rest(
    searched_abl, tmp_path, stop
):
    folder = _copy(searched_abl, tmp_path)
    args = [sys.executable, "-m", "nin_search", "ablate", "study.toml", "--seeds", "2"]
    env = {**os.environ, "COLUMNS": "200"}
    process = subprocess.Popen([*args, "--workers", "2"], cwd=folder, env=env, text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while (running := _running_run(folder, process.pid)) is None:
        assert process.poll() is None, "ablate exited before it could be stopped"
        assert time.monotonic() < deadline, "no ablation run started in a worker"
        time.sleep(0.02)
    if stop == "kill-a-worker":
        os.kill(running.user_attrs["worker"]["pid"], signal.SIGKILL)
    elif stop == "sigterm-the-group":  # what systemd, Slurm and `kill -TERM -PGID` do
        os.killpg(process.pid, signal.SIGTERM)
    else:  # what a terminal does: the whole foreground process group gets SIGINT
        os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert "Traceback" not in stderr, stderr[-3000:]
    left = _ablation_trials(folder)
    assert not [t for t in left if t.state == TrialState.RUNNING]
    assert all(ABLATION_SOURCE in t.user_attrs for t in left)  # nothing queued that is no run
    failed = [t for t in left if t.state == TrialState.FAIL]
    if stop == "kill-a-worker":
        assert process.returncode == 1, stderr[-3000:]
        assert "a worker died" in stderr and "run the same command again to train them" in stderr
        assert all("was killed by SIGKILL" in t.user_attrs["fail_reason"] for t in failed)
    else:  # the same line as a run in one process
        code, how, reason = (
            (143, "terminated", "Terminated")
            if stop == "sigterm-the-group"
            else (130, "interrupted", "KeyboardInterrupt")
        )
        assert process.returncode == code, stderr[-3000:]
        assert f"{how}: finished ablation runs are kept; run the same command again" in stderr
        assert all(t.user_attrs["fail_reason"] == f"interrupted ({reason})" for t in failed)
    kept = {t.number: t.value for t in left if t.state == TrialState.COMPLETE}

    trials = _rerun_trains_the_rest(folder, "--workers", "2", done_before=len(kept))
    assert all(trials[number].value == value for number, value in kept.items())


def _prepared(folder: Path):
    """The ablation of ``folder``'s study with one seed, queued in-process (library steps)."""
    from nin_search.ablation import load_ablation_data, prepare_ablation, setup_ablation

    setup = setup_ablation(f"sqlite:///{folder / 'nin_search.db'}", "abl")
    data = load_ablation_data(setup)
    return prepare_ablation(
        setup.study, setup.config, data=data, artifact_dir=setup.artifact_dir, seeds=1
    )


def test_a_run_two_machines_queued_at_once_is_trained_once(searched_abl, tmp_path):
    from nin_search.ablation import run_ablation

    folder = _copy(searched_abl, tmp_path)
    prepared = _prepared(folder)
    # The other machine read the queue before this one wrote it, and queued the first run too.
    first = prepared.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))[0]
    prepared.study.enqueue_trial({}, user_attrs=dict(first.user_attrs))

    assert run_ablation(prepared.study, prepared.objective).exit_code == 0
    trials = _ablation_trials(folder)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == RUNS_PER_SEED and len(set(_keys(complete))) == RUNS_PER_SEED
    (twice,) = [t for t in trials if t.state != TrialState.COMPLETE]
    assert twice.state == TrialState.FAIL and not twice.intermediate_values  # never trained
    assert f"the same run as trial #{first.number} (complete)" in twice.user_attrs["fail_reason"]


def test_an_ablation_stops_when_another_machine_took_the_last_runs(searched_abl, tmp_path):
    from nin_search.ablation import run_ablation

    folder = _copy(searched_abl, tmp_path)
    prepared = _prepared(folder)
    other = optuna.load_study(
        study_name=prepared.study.study_name, storage=f"sqlite:///{folder / 'nin_search.db'}"
    )

    def the_other_machine_takes_the_rest(study, trial) -> None:
        while other.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            other.tell(other.ask(), 0.5)  # it trained them meanwhile

    outcome = run_ablation(
        prepared.study, prepared.objective, callbacks=[the_other_machine_takes_the_rest]
    )
    assert outcome.exit_code == 0
    trials = _ablation_trials(folder)
    # No trial that is no run: asking for one more would have made Optuna create it.
    assert len(trials) == RUNS_PER_SEED and all(t.state == TrialState.COMPLETE for t in trials)
    assert len(set(_keys(trials))) == RUNS_PER_SEED


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trial", "99"], "trial 99 is out of range"),
        (["--trial", "0", "--top", "2"], "pass --trial N or --top K, not both"),
        (["--seeds", "0"], "--seeds"),
        (["--study-name", "nope"], "no study named 'nope'"),
    ],
    ids=["missing-trial", "trial-and-top", "zero-seeds", "unknown-study"],
)
def test_bad_ablate_input_is_one_line_exit_2_and_writes_nothing(
    searched_abl, tmp_path, args, message
):
    folder = _copy(searched_abl, tmp_path)
    before = _digest(folder / "nin_search.db")
    result = run_cli("ablate", "--storage", "sqlite:///nin_search.db", *args, cwd=folder)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert _digest(folder / "nin_search.db") == before


PRUNE_EVERYTHING = """
[study]
name = "prune"
seed = 0
n_trials = 4
random_trials = 2
baselines = false

[space]
num_stages = 1
widths = [4]
mlp_widths = [4]

[train]
epochs = 2
batch_size = [64]
device = "cpu"

[optuna]
pruner = "threshold"
pruner_options = { lower = 1.1 }  # every trial is below: prunable at its first epoch
"""


@pytest.mark.parametrize(("prune_random", "states"), [(False, "CCPP"), (True, "PPPP")])
def test_random_trials_train_in_full_unless_the_study_prunes_them(tmp_path, prune_random, states):
    text = PRUNE_EVERYTHING.replace(
        "random_trials = 2", f"random_trials = 2\nprune_random_trials = {str(prune_random).lower()}"
    )
    write_study(tmp_path, text)
    result = run_cli("optimize", "study.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="prune", storage=f"sqlite:///{tmp_path}/nin_search.db")
    assert [t.user_attrs[SAMPLED_BY] for t in study.trials] == ["random"] * 2 + ["model"] * 2
    assert "".join(t.state.name[0] for t in study.trials) == states


def test_the_random_phase_and_tpes_own_start_up_never_replay_the_same_draws():
    # A worker whose random quota is used up while TPE is still in its start-up phase samples
    # through TPE's own RandomSampler; it must not repeat the random phase's stream.
    from nin_search.config import OptunaConfig
    from nin_search.sampling import make_sampler

    sampler = make_sampler(OptunaConfig(sampler="tpe"), seed=5, random_trials=3)
    study = optuna.create_study(sampler=sampler)
    study.optimize(_objective, n_trials=6)  # 3 random, then 3 of TPE's start-up draws
    params = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(params)) == len(params)


def test_a_trial_that_is_no_ablation_run_prints_as_one():
    from nin_search.cli._ablate import _run_line

    junk = optuna.trial.create_trial(
        state=TrialState.FAIL, user_attrs={"fail_reason": "NotAnAblationRun: no run was waiting"}
    )
    assert _run_line(junk).startswith("ablation run (none)  fail  (NotAnAblationRun: no run")


def test_ablate_top_k_of_a_multi_objective_study_takes_the_pareto_front_first():
    from nin_search.ablation_plan import source_trials
    from nin_search.errors import UserError

    study = optuna.create_study(directions=["maximize", "minimize"])
    arch = presets.nin_cifar10().to_dict()
    # (accuracy, params): #1 is off the front (#0 is as accurate and smaller); #3 broke a limit.
    for accuracy, params, attrs in [
        (0.95, 1000, {}),
        (0.94, 5000, {}),
        (0.90, 500, {}),
        (0.99, 100, {"constraint_violation": "params > max"}),
    ]:
        study.add_trial(
            optuna.trial.create_trial(values=[accuracy, params], user_attrs={"arch": arch, **attrs})
        )
    assert [t.number for t in source_trials(study, trial_number=None, top=2)] == [0, 2]
    assert [t.number for t in source_trials(study, trial_number=None, top=3)] == [0, 2, 1]
    with pytest.raises(UserError, match=r"trial 3 broke the study's cost limits \(params > max\)"):
        source_trials(study, trial_number=3, top=1)
