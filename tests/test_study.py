"""Study creation: baselines, weights artifacts, samplers and pruners."""

from __future__ import annotations

import json
import multiprocessing
import socket
import sqlite3
from pathlib import Path

import optuna
import pytest

from nin_search import ArchSpec, UserError, default_config, records, suggest_arch
from nin_search.artifacts import KeepBestWeights, make_artifact_store
from nin_search.config import OptunaConfig, SpaceConfig, StudyConfig, TrainConfig
from nin_search.data import load_search_data
from nin_search.objective import Objective
from nin_search.sampling import make_pruner, make_sampler
from nin_search.space import baseline_params
from nin_search.study import data_changes, open_study, optimize
from nin_search.trials import baseline_trials, recorded_config, recorded_space
from nin_search.weights import load_weights

TINY = StudyConfig.model_validate(
    {
        "study": {"name": "tiny", "n_trials": 4, "keep_weights": 1},
        "space": {"num_stages": [1, 2], "widths": [8, 16], "mlp_widths": [8, 16]},
        "train": {"epochs": 1, "batch_size": [128], "device": "cpu"},
        "optuna": {"pruner": "none"},
    }
)


def test_baselines_are_the_nin_shape_and_its_plain_counterpart_inside_the_space():
    config = default_config()
    nin = suggest_arch(
        optuna.trial.FixedTrial(baseline_params(config.space, config.train, "nin")), config.space
    )
    plain = suggest_arch(
        optuna.trial.FixedTrial(baseline_params(config.space, config.train, "plain")), config.space
    )
    assert [s.kind for s in nin.stages] == ["mlp"] * 3
    assert [s.kind for s in plain.stages] == ["plain"] * 3
    assert [s.kernel_size for s in nin.stages] == [5, 5, 3]  # NIN's kernels
    assert [s.width for s in nin.stages] == [s.width for s in plain.stages] == [64, 64, 64]
    assert [s.mlp_widths for s in nin.stages] == [(64, 32), (64, 64), (64,)]
    assert nin.dropout == plain.dropout == 0.5 and nin.head == "nin"


def test_baselines_follow_a_space_without_the_preferred_choices():
    space = SpaceConfig(num_stages=2, kernel_sizes=[3], widths=[12, 24], mlp_depth=1, pool=["avg"])
    params = baseline_params(space, TrainConfig(), "nin")
    spec = suggest_arch(optuna.trial.FixedTrial(params), space)
    assert spec.summary().startswith("mlp3x3-24-64/avg > mlp3x3-24-64")
    with pytest.raises(ValueError, match="baseline='big'"):
        baseline_params(space, TrainConfig(), "big")


def test_a_new_study_enqueues_both_baselines_once(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    open_study(TINY, storage_url=storage, study_name="tiny")
    study = open_study(TINY, storage_url=storage, study_name="tiny")  # resumed: no new baselines
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs["baseline"] for t in waiting] == ["nin", "plain"]


def _json(value):
    return json.loads(json.dumps(value))


def test_a_new_study_keeps_its_config_and_space_out_of_the_user_attrs_optuna_lists(tmp_path):
    # `optuna studies` and optuna-dashboard list the study user attrs: the config alone was
    # over 1,000 characters of JSON there. It is a system attr now, read back whole.
    storage = f"sqlite:///{tmp_path / 's.db'}"
    open_study(TINY, storage_url=storage, study_name="tiny", data_info={"num_classes": 10})
    (summary,) = optuna.get_all_study_summaries(storage)
    assert set(summary.user_attrs) == {records.CREATED_BY, records.DATA}
    assert len(json.dumps(summary.user_attrs)) < 100
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert recorded_config(study) == _json(TINY.model_dump(mode="json"))
    assert recorded_space(study) == _json(TINY.space_fingerprint())
    assert StudyConfig.model_validate(recorded_config(study)) == TINY


def _as_written_before(database: Path) -> None:
    """Moves the config and space fingerprint back to the user attrs, where nin-search wrote
    them before: the database of an older study, row for row."""
    with sqlite3.connect(database) as connection:
        connection.execute(
            "INSERT INTO study_user_attributes (study_id, key, value_json) "
            "SELECT study_id, substr(key, 12), value_json FROM study_system_attributes "
            "WHERE key LIKE 'nin\\_search:%' ESCAPE '\\'"
        )
        moved = connection.execute(
            "DELETE FROM study_system_attributes WHERE key LIKE 'nin\\_search:%' ESCAPE '\\'"
        ).rowcount
    connection.close()
    assert moved == 2


def test_a_study_written_before_with_its_config_in_user_attrs_still_reads_and_resumes(tmp_path):
    from nin_search.artifacts import study_artifact_dir
    from nin_search.study_note import study_note
    from nin_search.trials import recorded_study_config

    storage = f"sqlite:///{tmp_path / 'old.db'}"
    open_study(TINY, storage_url=storage, study_name="tiny")
    _as_written_before(tmp_path / "old.db")
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert study.user_attrs[records.CONFIG] == _json(TINY.model_dump(mode="json"))
    assert recorded_config(study) == study.user_attrs[records.CONFIG]
    assert recorded_space(study) == study.user_attrs[records.SPACE_FINGERPRINT]
    # Every reader goes through recorded_config: ablate and train, the artifact folder, the note.
    assert recorded_study_config(study, command="ablate") == TINY
    assert study_artifact_dir(study, storage, None) == tmp_path / "old-artifacts"
    assert "- dataset: `digits`" in study_note(study, [])
    assert "- widths (k x k conv): `8, 16`" in study_note(study, [])
    # Resuming compares the search space with the one recorded as a user attr.
    resumed = open_study(TINY, storage_url=storage, study_name="tiny")
    assert len(resumed.trials) == 2  # the two baselines, enqueued once
    changed = TINY.model_copy(update={"space": TINY.space.model_copy(update={"widths": [8, 32]})})
    with pytest.raises(UserError, match="another search space .*space.widths was"):
        open_study(changed, storage_url=storage, study_name="tiny")


def test_a_study_without_a_recorded_config_reads_as_none():
    study = optuna.create_study()
    assert recorded_config(study) is None and recorded_space(study) is None
    study.set_user_attr(records.CONFIG, "not a mapping")
    assert recorded_config(study) is None


def _open(storage: str) -> None:
    open_study(TINY, storage_url=storage, study_name="race")


def test_workers_that_start_together_enqueue_the_baselines_exactly_once(tmp_path):
    storage = f"sqlite:///{tmp_path / 'race.db'}"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_open, args=(storage,)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    trials = optuna.load_study(study_name="race", storage=storage).get_trials()
    assert sorted(t.user_attrs["baseline"] for t in trials) == ["nin", "plain"]


def _switch_to_wal(url: str, barrier) -> str:
    from nin_search.storage import use_wal

    barrier.wait()
    try:
        use_wal(url)
    except UserError as error:
        return str(error)
    return ""


def test_processes_that_switch_one_new_database_to_wal_together_all_succeed(tmp_path):
    # SQLite answers "locked" at once, without its busy timeout, to a journal-mode switch that
    # races another; before use_wal retried, about 1 round in 6 failed here (CI saw it).
    context = multiprocessing.get_context("spawn")  # fork would copy torch's threads' locks
    with context.Manager() as manager, context.Pool(4) as pool:
        for round_ in range(12):
            url = f"sqlite:///{tmp_path / f'wal{round_}.db'}"
            barrier = manager.Barrier(4)
            errors = pool.starmap(_switch_to_wal, [(url, barrier)] * 4)
            assert errors == [""] * 4
            with sqlite3.connect(tmp_path / f"wal{round_}.db") as connection:
                assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_wal_database_commits_without_an_fsync_each_and_a_rollback_journal_keeps_them(
    tmp_path,
):
    from nin_search.storage import open_storage, use_wal

    for name, wal, expected in (("wal.db", True, 1), ("delete.db", False, 2)):  # NORMAL, FULL
        url = f"sqlite:///{tmp_path / name}"
        open_storage(url, heartbeat=False)
        if wal:
            use_wal(url)
        storage = open_storage(url, heartbeat=False)
        with storage.engine.connect() as connection:
            synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
        assert synchronous == expected, name


def test_weights_of_the_best_k_and_the_baselines_are_kept(tmp_path):
    storage = f"sqlite:///{tmp_path / 'w.db'}"
    study = open_study(TINY, storage_url=storage, study_name="tiny")
    assert study.metric_names == ["accuracy"]  # what optuna-dashboard titles the values with
    store_dir = tmp_path / "artifacts"
    make_artifact_store(store_dir)
    data = load_search_data(TINY.data, device="cpu")
    objective = Objective(TINY, data, artifact_dir=store_dir)
    optimize(study, objective, n_trials=5, callbacks=[KeepBestWeights(store_dir, keep=1)])
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 5
    baselines = baseline_trials(study)
    assert set(baselines) == {"nin", "plain"}
    kept = {p.name for p in (tmp_path / "artifacts").iterdir()}
    best = study.best_trial
    must_keep = {best.user_attrs["weights_artifact"]} | {
        t.user_attrs["weights_artifact"] for t in baselines.values()
    }
    assert must_keep <= kept
    # Where the weights are: another machine of a shared study knows they are not lost.
    here = {"host": socket.gethostname(), "dir": str(store_dir.resolve())}
    assert all(t.user_attrs["weights_store"] == here for t in baselines.values())
    removed = set(study.user_attrs.get("removed_weights", []))
    for trial in trials:
        artifact = trial.user_attrs.get("weights_artifact")
        if artifact and artifact not in must_keep:
            assert artifact not in kept and trial.number in removed
    state = load_weights(tmp_path / "artifacts" / best.user_attrs["weights_artifact"])
    from nin_search import build_model

    model = build_model(ArchSpec.from_dict(best.user_attrs["arch"]), in_channels=1, num_classes=10)
    model.load_state_dict(state, strict=True)


@pytest.mark.parametrize("sampler", ["tpe", "random", "nsgaii", "gp"])
def test_every_sampler_handles_the_conditional_space(sampler):
    config = default_config()
    study = optuna.create_study(
        direction="maximize", sampler=make_sampler(OptunaConfig(sampler=sampler), seed=0)
    )
    for index in range(4):
        trial = study.ask()
        spec = suggest_arch(trial, config.space)
        study.tell(trial, 0.5 + 0.01 * index + 0.1 * (spec.stages[0].kind == "mlp"))
    assert len(study.trials) == 4


@pytest.mark.parametrize(
    "pruner",
    ["median", "percentile", "hyperband", "successive-halving", "patient", "wilcoxon", "none"],
)
def test_every_pruner_is_built_with_defaults(pruner):
    assert isinstance(make_pruner(OptunaConfig(pruner=pruner), epochs=8), optuna.pruners.BasePruner)


def test_pruner_options_are_checked_by_the_pruner_itself():
    with pytest.raises(UserError, match="pruner_options for pruner 'percentile'"):
        make_pruner(
            OptunaConfig(pruner="percentile", pruner_options={"percentile": 120.0}), epochs=8
        )


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_every_trial_records_the_precision_it_trained_in(tmp_path, precision):
    from nin_search.records import TrialRecord

    config = TINY.model_copy(
        update={"train": TINY.train.model_copy(update={"precision": precision})}
    )
    study = open_study(config, storage_url=f"sqlite:///{tmp_path / 'p.db'}", study_name="tiny")
    optimize(study, Objective(config, load_search_data(config.data, device="cpu")), n_trials=2)
    records = [TrialRecord.from_trial(trial) for trial in study.trials]
    assert [record.precision for record in records] == [precision, precision]


def test_data_changes_name_what_differs_and_forgive_summation_order():
    info = {
        "classes": ["cat", "dog"],
        "num_train": 80,
        "num_val": 20,
        "in_channels": 3,
        "image_size": 8,
        "preprocessing": {"mean": [0.5, 0.4, 0.3], "std": [0.2] * 3},
    }
    # Another device sums the pixels in another order: the last float digits differ.
    other_device = {**info, "preprocessing": {"mean": [0.5000001, 0.4, 0.3], "std": [0.2] * 3}}
    assert data_changes(info, other_device) == []
    assert data_changes(info, {**info, "num_val": 21}) == ["validation images 20 then, 21 now"]
    darker = {**info, "preprocessing": {"mean": [0.49, 0.4, 0.3], "std": [0.2] * 3}}
    assert data_changes(info, darker) == [
        "channel means [0.5000, 0.4000, 0.3000] then, [0.4900, 0.4000, 0.3000] now"
    ]
    # A study of an older version recorded no image counts: what it lacks is not compared.
    older = {key: value for key, value in info.items() if not key.startswith("num_")}
    assert data_changes(older, {**info, "num_train": 99}) == []
    assert data_changes(None, info) == [] and data_changes(info, None) == []


def test_optimize_never_adopts_a_study_it_did_not_create_nor_an_ablation_name(tmp_path):
    storage = f"sqlite:///{tmp_path / 'plugin.db'}"
    # A study of the plugin API carries nin-search's marker but no recorded search space.
    plugin = optuna.create_study(storage=storage, study_name="my-search", direction="maximize")
    plugin.set_user_attr(records.CREATED_BY, "0")
    plugin.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    with pytest.raises(UserError, match="study 'my-search' records no search space"):
        open_study(TINY, storage_url=storage, study_name="my-search")
    assert len(optuna.load_study(study_name="my-search", storage=storage).trials) == 2
    with pytest.raises(UserError, match="names the ablation runs of study 'tiny'"):
        open_study(TINY, storage_url=storage, study_name="tiny:ablation")
    assert optuna.get_all_study_names(storage) == ["my-search"]
