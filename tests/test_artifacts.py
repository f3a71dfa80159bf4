"""Stored weights: what optuna-dashboard lists exists, after keep-best-k and after files vanish.

A study with real artifacts in a real SQLite file; the dashboard is served over real HTTP and
every artifact it lists is downloaded through its API.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
import torch

from nin_search.artifacts import (
    download_weights,
    forget_missing_weights,
    make_artifact_store,
    prune_weights,
    weights_stored_elsewhere,
)
from nin_search.dashboard import forget_missing_artifacts, make_http_server
from nin_search.errors import UserError
from nin_search.records import REMOVED_WEIGHTS, WEIGHTS_ARTIFACT, WEIGHTS_STORE
from nin_search.storage import open_storage
from nin_search.weights import save_weights

HTTP_TIMEOUT = 30  # seconds for one request
ACCURACIES = (0.50, 0.90, 0.70, 0.60, 0.80)  # trial i's value; the best two are #1 and #4


def _study(
    folder: Path, stores: Callable[[int], dict] | None = None
) -> tuple[str, optuna.Study, optuna.artifacts.FileSystemArtifactStore]:
    """Five completed trials, each with its weights uploaded as an artifact (as optimize does)."""
    url = f"sqlite:///{folder / 'study.db'}"
    study = optuna.create_study(
        storage=open_storage(url, heartbeat=False), study_name="kept", direction="maximize"
    )
    store = make_artifact_store(folder / "artifacts")
    for number, accuracy in enumerate(ACCURACIES):
        trial = study.ask()
        weights = folder / f"trial-{number}.safetensors"
        save_weights({"weight": torch.full((4,), float(number))}, weights)
        artifact_id = optuna.artifacts.upload_artifact(
            artifact_store=store, file_path=str(weights), study_or_trial=trial
        )
        trial.set_user_attr(WEIGHTS_ARTIFACT, artifact_id)
        if stores is not None:  # where each trial's weights were stored (optimize records it)
            trial.set_user_attr(WEIGHTS_STORE, stores(number))
        study.tell(trial, accuracy)
    return url, study, store


@contextmanager
def serving(url: str, artifact_dir: Path) -> Iterator[str]:
    server = make_http_server(url, host="127.0.0.1", port=0, artifact_dir=artifact_dir)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=HTTP_TIMEOUT)


def listed_artifacts(base: str) -> list[tuple[int, int, str]]:
    """(study id, trial id, artifact id) of every trial artifact the dashboard lists."""
    with urllib.request.urlopen(f"{base}/api/studies", timeout=HTTP_TIMEOUT) as response:
        studies = json.loads(response.read())["study_summaries"]
    listed = []
    for summary in studies:
        study_id = summary["study_id"]
        with urllib.request.urlopen(f"{base}/api/studies/{study_id}", timeout=HTTP_TIMEOUT) as r:
            detail = json.loads(r.read())
        for trial in detail["trials"]:
            listed += [(study_id, trial["trial_id"], a["artifact_id"]) for a in trial["artifacts"]]
    return listed


def download_status(base: str, study_id: int, trial_id: int, artifact_id: str) -> int:
    try:
        url = f"{base}/artifacts/{study_id}/{trial_id}/{artifact_id}"
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_keep_best_k_removes_the_artifact_entries_with_the_files(tmp_path):
    url, study, _ = _study(tmp_path)
    assert prune_weights(study, tmp_path / "artifacts", keep=2) == [2, 3, 0]
    fresh = optuna.load_study(study_name="kept", storage=url)
    for trial in fresh.get_trials():
        metas = optuna.artifacts.get_all_artifact_meta(trial, storage=fresh._storage)
        if trial.number in (1, 4):
            assert [meta.artifact_id for meta in metas] == [trial.user_attrs[WEIGHTS_ARTIFACT]]
            assert (tmp_path / "artifacts" / metas[0].artifact_id).is_file()
        else:
            assert metas == [] and WEIGHTS_ARTIFACT not in trial.user_attrs
    assert fresh.user_attrs[REMOVED_WEIGHTS] == [0, 2, 3]
    with pytest.raises(UserError, match="the weights of trial 2 were deleted"):
        download_weights(fresh, fresh.trials[2], tmp_path / "artifacts", tmp_path / "w")
    assert prune_weights(fresh, tmp_path / "artifacts", keep=2) == []  # nothing left to remove


def test_every_artifact_the_dashboard_lists_downloads_with_200(tmp_path):
    url, study, _ = _study(tmp_path)
    prune_weights(study, tmp_path / "artifacts", keep=2)
    with serving(url, tmp_path / "artifacts") as base:
        listed = listed_artifacts(base)
        assert len(listed) == 2
        for study_id, trial_id, artifact_id in listed:
            assert download_status(base, study_id, trial_id, artifact_id) == 200


def test_entries_of_weights_lost_earlier_are_dropped_so_the_dashboard_serves_every_listed_one(
    tmp_path,
):
    url, study, store = _study(tmp_path)
    # What older versions (and a hand-deleted file) left behind: files gone, entries kept.
    for trial in study.get_trials()[:3]:
        store.remove(trial.user_attrs[WEIGHTS_ARTIFACT])
    with serving(url, tmp_path / "artifacts") as base:
        statuses = [download_status(base, *listed) for listed in listed_artifacts(base)]
    assert sorted(statuses) == [200, 200, 500, 500, 500]  # the problem is real

    fresh = optuna.load_study(study_name="kept", storage=url)
    assert forget_missing_artifacts(url, [fresh], artifact_dir=tmp_path / "artifacts") == {
        "kept": [0, 1, 2]
    }
    with serving(url, tmp_path / "artifacts") as base:
        statuses = [download_status(base, *listed) for listed in listed_artifacts(base)]
    assert statuses == [200, 200]
    reloaded = optuna.load_study(study_name="kept", storage=url)
    assert [WEIGHTS_ARTIFACT in t.user_attrs for t in reloaded.trials] == [False] * 3 + [True] * 2
    assert reloaded.user_attrs[REMOVED_WEIGHTS] == [0, 1, 2]


def test_weights_another_machine_stored_are_never_forgotten_or_trimmed_here(tmp_path):
    """A shared (PostgreSQL) study: each machine keeps weights in its own artifact folder.
    Another folder's run finds none of them on its disk, and must not call them lost."""
    elsewhere = {"host": "machine-b", "dir": "/home/b/nin_search-artifacts"}
    here = {"host": socket.gethostname(), "dir": str((tmp_path / "artifacts").resolve())}
    # #0 and #1 trained here, the rest on machine B (their files here only stand in).
    url, study, store = _study(tmp_path, lambda number: here if number < 2 else elsewhere)
    for trial in study.get_trials()[2:]:  # machine B's files are not on this disk
        store.remove(trial.user_attrs[WEIGHTS_ARTIFACT])
    third = tmp_path / "third-folder"  # a run from a folder that holds no weights
    third.mkdir()
    fresh = optuna.load_study(study_name="kept", storage=url)
    assert forget_missing_weights(fresh, third) == []
    assert prune_weights(fresh, third, keep=1) == []
    assert forget_missing_weights(fresh, tmp_path / "artifacts") == []  # nothing here is lost
    # Here, keep-best-1 trims this folder's own trials only: #1 is the best, #0 goes.
    assert prune_weights(fresh, tmp_path / "artifacts", keep=1) == [0]
    reloaded = optuna.load_study(study_name="kept", storage=url)
    assert [WEIGHTS_ARTIFACT in t.user_attrs for t in reloaded.trials] == [False] + [True] * 4
    with pytest.raises(
        UserError, match=r"trial 3 are in /home/b/nin_search-artifacts on machine-b"
    ):
        download_weights(reloaded, reloaded.trials[3], tmp_path / "artifacts", tmp_path / "w")
    # What the dashboard hint names beside this folder: the places of the other weights.
    b_folder = "/home/b/nin_search-artifacts on machine-b"
    assert weights_stored_elsewhere(reloaded, tmp_path / "artifacts") == [b_folder]
    here_folder = f"{here['dir']} on {here['host']}"
    assert weights_stored_elsewhere(reloaded, third) == [here_folder, b_folder]
