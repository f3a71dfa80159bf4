"""Bad input of every kind: one line on stderr starting ``error: ``, exit code 2, no traceback,
and every database byte-identical (no new database file either).

The cases here add to ``BAD_INPUTS`` in test_cli.py (bad study files and options of
``optimize``): broken and foreign databases, unreachable servers, unusable paths, bad image
folders, studies that cannot give what a command asks, and bad options of every command. Each
case runs the CLI in this process (``in_process``), in a fresh folder holding copies of two
studies written by the real CLI: ``good.db`` (3 completed trials, weights stored beside it) and
``pruned.db`` (every trial pruned).
"""

from __future__ import annotations

import os
import pickle
import random
import shutil
import socket
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from nin_search.errors import UserError
from nin_search.weights import load_weights, save_weights

from .conftest import TINY_DIGITS, write_study
from .test_cli import BAD_INPUTS, checksum, in_process

UNREACHABLE_POSTGRES = "postgresql+psycopg://user:s3cret@127.0.0.1:1/nin_search"


# ----------------------------------------------------------------------------------------------
# The two studies every case starts from (the ``studies`` fixture in conftest.py)
# ----------------------------------------------------------------------------------------------


def database_state(folder: Path) -> dict[str, str | None]:
    """Every SQLite file under ``folder``: the main file's sha256, and its write-ahead log's
    (an empty or missing log counts as none: opening a WAL database creates an empty one)."""
    state: dict[str, str | None] = {}
    for path in sorted(folder.rglob("*.db")):
        if not path.is_file():  # a pipe named like a database (reading it would block)
            state[str(path)] = "not a file"
            continue
        state[str(path)] = checksum(path)
        wal = path.with_name(f"{path.name}-wal")
        state[f"{path}-wal"] = checksum(wal) if wal.exists() and wal.stat().st_size else None
    return state


# ----------------------------------------------------------------------------------------------
# Helpers that prepare a case's folder
# ----------------------------------------------------------------------------------------------


def _set_schema_revision(database: Path, revision: str) -> None:
    connection = sqlite3.connect(database)
    try:
        with connection:
            connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    finally:
        connection.close()


def older_schema(folder: Path) -> None:
    """old.db: good.db as an older Optuna (3.0) left it, before a schema migration."""
    shutil.copy(folder / "good.db", folder / "old.db")
    _set_schema_revision(folder / "old.db", "v3.0.0.a")


def newer_schema(folder: Path) -> None:
    """new.db: good.db with a schema revision from a future Optuna."""
    shutil.copy(folder / "good.db", folder / "new.db")
    _set_schema_revision(folder / "new.db", "v99.0.0.a")


def corrupt_database(folder: Path) -> None:
    (folder / "x.db").write_bytes(random.Random(0).randbytes(8192))


def file_instead_of_folder(folder: Path) -> None:
    (folder / "afile").write_text("not a folder\n")


def handed_over(folder: Path) -> None:
    """What a user already has: a model file of their own and an earlier train's folder."""
    (folder / "mine.py").write_text("print('my own code')\n")
    (folder / "final").mkdir()
    (folder / "final" / "model.py").write_text("# an earlier train's model\n")


def weights_pipe(folder: Path) -> None:
    file_instead_of_folder(folder)  # afile: the image argument
    os.mkfifo(folder / "pipe.safetensors")  # reading it would block until someone writes


def ablation_study_only(folder: Path) -> None:
    """abl.db: only a companion ablation study, as a user might name it by mistake."""
    import optuna

    from nin_search import __version__
    from nin_search.records import CREATED_BY

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="s:ablation", storage=f"sqlite:///{folder / 'abl.db'}")
    study.set_user_attr(CREATED_BY, __version__)  # as nin-search marks its companion studies


def _image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _image_folder(folder: Path, classes: tuple[str, ...] = ("cat", "dog"), per_class: int = 6):
    for index, name in enumerate(classes):
        for number in range(per_class):
            _image(folder / "images" / "train" / name / f"{number}.png", 100 * index + number)


def one_class(folder: Path) -> None:
    _image_folder(folder, classes=("cat",))


def truncated_image(folder: Path) -> None:
    _image_folder(folder)
    path = folder / "images" / "train" / "cat" / "0.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def text_as_jpg(folder: Path) -> None:
    _image_folder(folder)
    (folder / "images" / "train" / "dog" / "notes.jpg").write_text("not an image\n")


def only_text_files(folder: Path) -> None:
    for name in ("cat", "dog"):
        for number in range(3):
            path = folder / "images" / "train" / name / f"{number}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("not an image\n")


def one_image_per_class(folder: Path) -> None:
    _image_folder(folder, per_class=1)


def _replace_stored_weights(folder: Path, write: Callable[[Path], None]) -> None:
    artifacts = sorted((folder / "good-artifacts").iterdir())
    assert artifacts, "good.db stored no weights"
    for artifact in artifacts:
        write(artifact)


def weights_of_another_architecture(folder: Path) -> None:
    import torch

    def write(path: Path) -> None:
        save_weights({"features.0.weight": torch.zeros(3, 3)}, path)

    _replace_stored_weights(folder, write)


class _RunsCode:
    """Unpickling this runs ``touch PWNED``: a weights file that is a pickle with code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def pickle_with_code(folder: Path) -> None:
    def write(path: Path) -> None:
        path.write_bytes(pickle.dumps({"weight": _RunsCode(folder / "PWNED")}))

    _replace_stored_weights(folder, write)


def read_only_folder(folder: Path) -> None:
    (folder / "locked").mkdir()
    (folder / "locked").chmod(0o555)


def port_in_use(folder: Path) -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    (folder / "port").write_text(str(listener.getsockname()[1]))
    return listener  # kept open until the case ends


# ----------------------------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A command line that must be refused.

    ``args`` and ``message`` may name ``{tmp}`` (the case's folder), ``{good}`` and
    ``{pruned}`` (the two studies' storage URLs), ``{study}`` (the study file of good.db) and
    ``{port}`` (a port that is in use). ``absent``: text the message must not contain.
    """

    id: str
    args: tuple[str, ...]
    message: str
    setup: Callable[[Path], Any] | None = None
    absent: tuple[str, ...] = ()
    xfail: str | None = None
    needs_non_root: bool = False


def _imagefolder(extra: str = "") -> str:
    return (
        "[data]\ndataset = 'imagefolder'\nroot = 'images'\n[train]\nepochs = 1\n"
        f"device = 'cpu'\n{extra}"
    )


DASHBOARD_TRACEBACK = (
    "nin-search bug: dashboard.make_app opens optuna.storages.RDBStorage(storage_url) itself "
    "instead of study._make_storage, so an unusable storage ends in a traceback (exit 1)"
)
CLICK_USAGE_ERROR = (
    "nin-search bug: typer/click usage errors (bad or unknown options) print 'Usage: ... Try ... "
    "Error: ...' on four lines, not one 'error: ' line"
)

CASES = [
    # Databases that cannot be used.
    Case(
        "corrupt sqlite file: optimize",
        ("optimize", "{study}", "--storage", "sqlite:///{tmp}/x.db"),
        "file is not a database",
        corrupt_database,
    ),
    Case(
        "corrupt sqlite file: best",
        ("best", "--storage", "sqlite:///{tmp}/x.db"),
        "file is not a database",
        corrupt_database,
    ),
    Case(
        "corrupt sqlite file: dashboard",
        ("dashboard", "--storage", "sqlite:///{tmp}/x.db", "--port", "0"),
        "file is not a database",
        corrupt_database,
    ),
    Case(
        "older optuna schema: optimize",
        ("optimize", "{study}", "--storage", "sqlite:///{tmp}/old.db"),
        "optuna storage upgrade --storage 'sqlite:///{tmp}/old.db'",
        older_schema,
    ),
    Case(
        "older optuna schema: export",
        ("export", "-o", "{tmp}/m.py", "--storage", "sqlite:///{tmp}/old.db"),
        "optuna storage upgrade --storage 'sqlite:///{tmp}/old.db'",
        older_schema,
    ),
    Case(
        "older optuna schema: dashboard",
        ("dashboard", "--storage", "sqlite:///{tmp}/old.db", "--port", "0"),
        "optuna storage upgrade",
        older_schema,
    ),
    Case(
        "newer optuna schema: best",
        ("best", "--storage", "sqlite:///{tmp}/new.db"),
        "pip install -U optuna",
        newer_schema,
    ),
    Case(
        "newer optuna schema: no advice to downgrade-upgrade the database",
        ("optimize", "{study}", "--storage", "sqlite:///{tmp}/new.db"),
        "pip install -U optuna",
        newer_schema,
        absent=("optuna storage upgrade",),
    ),
    Case(
        "unreachable postgresql: optimize",
        ("optimize", "{study}", "--storage", UNREACHABLE_POSTGRES),
        "cannot open storage",
    ),
    Case(
        "unreachable postgresql: report",
        ("report", "-o", "{tmp}/r.html", "--storage", UNREACHABLE_POSTGRES),
        "cannot open storage",
    ),
    Case(
        "unreachable postgresql: dashboard",
        ("dashboard", "--storage", UNREACHABLE_POSTGRES, "--port", "0"),
        "cannot open storage",
    ),
    Case(
        "unreachable postgresql: the password is not printed",
        ("best", "--storage", UNREACHABLE_POSTGRES),
        "cannot open storage",
        absent=("s3cret",),
    ),
    Case(
        "database in a folder nobody can write (/proc)",
        (
            "optimize",
            "{study}",
            "--storage",
            "sqlite:////proc/nin_search_test.db",
            "--artifacts",
            "{tmp}/artifacts",
        ),
        "unable to open database file",
    ),
    Case(
        "database in a read-only folder (chmod 555)",
        ("optimize", "{study}", "--storage", "sqlite:///{tmp}/locked/x.db"),
        "cannot open storage",
        read_only_folder,
        needs_non_root=True,
    ),
    Case(
        "database folder is a file",
        ("optimize", "{study}", "--storage", "sqlite:///{tmp}/afile/x.db"),
        "'{tmp}/afile'",
        file_instead_of_folder,
    ),
    Case(
        "missing database folder: best",
        ("best", "--storage", "sqlite:///{tmp}/no/such/x.db"),
        "no database at",
    ),
    Case(
        "missing database: report",
        ("report", "-o", "{tmp}/r.html", "--storage", "sqlite:///{tmp}/none.db"),
        "no database at",
    ),
    Case(
        "missing database: dashboard",
        ("dashboard", "--storage", "sqlite:///{tmp}/none.db", "--port", "0"),
        "no database at",
    ),
    Case(
        "in-memory sqlite",
        ("optimize", "{study}", "--storage", "sqlite://"),
        "in memory",
    ),
    # Image folders and study files.
    Case(
        "image folder with one class",
        ("optimize", "{tmp}/folder.toml", "--storage", "sqlite:///{tmp}/f.db"),
        "a classifier needs at least 2",
        one_class,
    ),
    Case(
        "truncated image",
        ("optimize", "{tmp}/folder.toml", "--storage", "sqlite:///{tmp}/f.db"),
        "cannot decode image '{tmp}/images/train/cat/0.png'",
        truncated_image,
    ),
    Case(
        "text file named .jpg",
        ("optimize", "{tmp}/folder.toml", "--storage", "sqlite:///{tmp}/f.db"),
        "cannot decode image '{tmp}/images/train/dog/notes.jpg'",
        text_as_jpg,
    ),
    Case(
        "image folder with only non-image files",
        ("optimize", "{tmp}/folder.toml", "--storage", "sqlite:///{tmp}/f.db"),
        "no images in ImageFolder layout",
        only_text_files,
    ),
    Case(
        "one image per class (no stratified validation split)",
        ("optimize", "{tmp}/folder.toml", "--storage", "sqlite:///{tmp}/f.db"),
        "class 'cat' has 1 training image: a validation split needs at least 2",
        one_image_per_class,
    ),
    Case(
        "too many stages for the image size",
        ("optimize", "{tmp}/stages.toml", "--storage", "sqlite:///{tmp}/f.db"),
        "4x4 images allow at most 3 stages",
    ),
    Case(
        "even kernel size",
        ("optimize", "{tmp}/kernel.toml", "--storage", "sqlite:///{tmp}/f.db"),
        "space.kernel_sizes must be odd",
    ),
    Case(
        "existing study with another search space",
        ("optimize", "{tmp}/changed.toml", "--storage", "{good}", "--n-trials", "5"),
        "created with another search space (space.widths was [8, 16], now [8, 32])",
    ),
    # Studies that cannot give what the command asks.
    Case(
        "export with no completed trial",
        ("export", "-o", "{tmp}/m.py", "--storage", "{pruned}"),
        "has no completed trial",
    ),
    Case(
        "train with no completed trial",
        ("train", "-o", "{tmp}/final", "--storage", "{pruned}"),
        "has no completed trial",
    ),
    Case(
        "export of a trial out of range",
        ("export", "-o", "{tmp}/m.py", "--storage", "{good}", "--trial", "3"),
        "trial 3 is out of range",
    ),
    Case(
        "stored weights of another architecture",
        ("export", "-o", "{tmp}/m.py", "--weights", "{tmp}/w.safetensors", "--storage", "{good}"),
        "do not match its architecture",
        weights_of_another_architecture,
    ),
    Case(
        "stored weights that are a pickle with code",
        ("export", "-o", "{tmp}/m.py", "--weights", "{tmp}/w.safetensors", "--storage", "{good}"),
        "are not a safetensors file",
        pickle_with_code,
    ),
    # Bad options.
    Case(
        "--workers 0",
        ("optimize", "{study}", "--workers", "0", "--storage", "sqlite:///{tmp}/w.db"),
        "--workers must be >= 1, but got 0",
    ),
    Case(
        "--workers -2",
        ("optimize", "{study}", "--workers", "-2", "--storage", "{good}"),
        "--workers must be >= 1, but got -2",
    ),
    Case(
        "unknown device in --devices",
        ("optimize", "{study}", "--devices", "cpu,tpu", "--storage", "sqlite:///{tmp}/w.db"),
        "unknown device 'tpu'",
    ),
    Case(
        "ablate --workers 0",
        ("ablate", "--storage", "{good}", "--workers", "0"),
        "--workers must be >= 1, but got 0",
    ),
    Case(
        "ablate: unknown device in --devices",
        ("ablate", "--storage", "{good}", "--devices", "cpu,tpu"),
        "unknown device 'tpu'",
    ),
    Case(
        "ablate: --device and --devices",
        ("ablate", "--storage", "{good}", "--device", "cpu", "--devices", "cpu,cpu"),
        "pass either --device (one) or --devices (a list for the workers)",
    ),
    Case(
        "--artifacts is a file",
        ("optimize", "{study}", "--storage", "sqlite:///{tmp}/w.db", "--artifacts", "{tmp}/afile"),
        "afile",
        file_instead_of_folder,
    ),
    Case(
        "--n-trials 0",
        ("optimize", "{study}", "--n-trials", "0", "--storage", "sqlite:///{tmp}/w.db"),
        "--n-trials",
    ),
    Case(
        "unknown study name: report",
        ("report", "-o", "{tmp}/r.html", "--storage", "{good}", "--study-name", "nope"),
        "no study named 'nope'",
    ),
    Case(
        "unknown study name: trials",
        ("trials", "--storage", "{good}", "--study-name", "nope"),
        "no study named 'nope'",
    ),
    Case(
        "trials: unknown sort key",
        ("trials", "--storage", "{good}", "--sort", "speed"),
        "--sort must be one of accuracy, params, macs, latency_ms, but got 'speed'",
    ),
    Case(
        "trials: unknown state",
        ("trials", "--storage", "{good}", "--state", "complete,done"),
        "'done' unknown",
    ),
    Case(
        "trials: --csv and --json",
        ("trials", "--storage", "{good}", "--csv", "--json"),
        "not both",
    ),
    Case("trials: --top 0", ("trials", "--storage", "{good}", "--top", "0"), "--top"),
    Case(
        "optimize: --log-file in a missing folder",
        ("optimize", "{study}", "--storage", "sqlite:///{tmp}/w.db", "--log-file", "{tmp}/no/l"),
        "--log-file does not exist",
    ),
    Case(
        "optimize: --log-file is the database",
        ("optimize", "{study}", "--storage", "{good}", "--log-file", "{tmp}/good.db"),
        "--log-file",
    ),
    Case(
        "unknown study name: dashboard",
        ("dashboard", "--storage", "{good}", "--study-name", "nope", "--port", "0"),
        "nope",
    ),
    Case(
        "dashboard artifact folder missing",
        ("dashboard", "--storage", "{good}", "--artifacts", "{tmp}/nope", "--port", "0"),
        "artifact folder",
    ),
    Case(
        "dashboard port in use",
        ("dashboard", "--storage", "{good}", "--port", "{port}"),
        "is in use; pass another --port",
        port_in_use,
    ),
    Case(
        "export class name that is not an identifier",
        ("export", "-o", "{tmp}/m.py", "--storage", "{good}", "--class-name", "1bad"),
        "Pick another --class-name",
    ),
    Case(
        "train --output is a file",
        ("train", "-o", "{tmp}/afile", "--storage", "{good}"),
        "is a file; pass a folder",
        file_instead_of_folder,
    ),
    Case(
        "study file is a folder",
        ("optimize", "{tmp}", "--storage", "sqlite:///{tmp}/w.db"),
        "is a folder; pass a study file (.toml)",
    ),
    Case(
        "optimize: --artifact-dir in a missing folder",
        (
            "optimize",
            "{study}",
            "--storage",
            "sqlite:///{tmp}/w.db",
            "--artifact-dir",
            "{tmp}/no/a",
        ),
        "folder '{tmp}/no' for --artifact-dir does not exist; create it",
    ),
    Case(
        "ablate: --artifact-dir is a file",
        ("ablate", "--storage", "{good}", "--artifact-dir", "{tmp}/afile"),
        "--artifact-dir '{tmp}/afile' is a file; pass a folder",
        file_instead_of_folder,
    ),
    Case(
        "ablate: --artifact-dir in a missing folder",
        ("ablate", "--storage", "{good}", "--artifact-dir", "{tmp}/no/a"),
        "folder '{tmp}/no' for --artifact-dir does not exist; create it",
    ),
    Case(
        "export: --artifact-dir is a file",
        (
            "export",
            "-o",
            "{tmp}/m.py",
            "--weights",
            "{tmp}/w.safetensors",
            "--storage",
            "{good}",
            "--artifact-dir",
            "{tmp}/afile",
        ),
        "--artifact-dir '{tmp}/afile' is a file; pass the artifact folder",
        file_instead_of_folder,
    ),
    Case(
        "dashboard: --artifact-dir is a file",
        ("dashboard", "--storage", "{good}", "--artifact-dir", "{tmp}/afile", "--port", "0"),
        "--artifact-dir '{tmp}/afile' is a file; pass the artifact folder",
        file_instead_of_folder,
    ),
    Case(
        "train --output in a missing folder",
        ("train", "-o", "{tmp}/no/final", "--storage", "{good}"),
        "folder '{tmp}/no' for --output does not exist; create it",
    ),
    Case(
        "train --onnx in a missing folder: refused before the retraining, not after",
        ("train", "-o", "{tmp}/final", "--onnx", "{tmp}/no/x.onnx", "--storage", "{good}"),
        "folder '{tmp}/no' for --onnx does not exist; create it",
    ),
    Case(
        "export --weights over a file that exists (without --force)",
        ("export", "--weights", "{tmp}/mine.py", "--storage", "{good}"),
        "--weights '{tmp}/mine.py' exists; pass --force to replace it, or another path",
        handed_over,
    ),
    Case(
        "train -o a folder an earlier train wrote (without --force)",
        ("train", "-o", "{tmp}/final", "--storage", "{good}"),
        "--output '{tmp}/final/model.py' exists; pass --force to replace it, or another path",
        handed_over,
    ),
    Case(
        "export -o a file name that is no module name",
        ("export", "-o", "{tmp}/my-model.py", "--storage", "{good}"),
        "the file is imported as a Python module, so its name must be one (ASCII letters, "
        "digits and _, not a keyword); pass e.g. -o my_model.py",
    ),
    Case(
        "export -o a file that would hide torch",
        ("export", "-o", "{tmp}/torch.py", "--storage", "{good}"),
        "would hide the module 'torch' from every script beside it",
    ),
    Case(
        "export -o a file that is not Python",
        ("export", "-o", "{tmp}/model.txt", "--storage", "{good}"),
        "is not a .py file; pass e.g. -o model.py",
    ),
    Case(
        "export -o onto an SQLite database of another storage",
        ("export", "-o", "{tmp}/pruned.db", "--storage", "{good}"),
        "'{tmp}/pruned.db' is an SQLite database",
    ),
    Case(
        "predict: --model that does not exist",
        ("predict", "{tmp}/afile", "--model", "{tmp}/nowhere"),
        "--model '{tmp}/nowhere' not found",
        file_instead_of_folder,
    ),
    Case(
        "predict: --weights is a folder",
        ("predict", "{tmp}/afile", "--weights", "{tmp}/good-artifacts"),
        "weights file '{tmp}/good-artifacts' is a folder",
        file_instead_of_folder,
    ),
    Case(
        "predict: --weights is a pipe",
        ("predict", "{tmp}/afile", "--weights", "{tmp}/pipe.safetensors"),
        "weights file '{tmp}/pipe.safetensors' is not a regular file",
        weights_pipe,
    ),
    Case(
        "predict: --eval is a file",
        ("predict", "--eval", "{tmp}/afile", "--storage", "{good}"),
        "--eval '{tmp}/afile' is a file; pass a folder of class folders",
        file_instead_of_folder,
    ),
    Case(
        "export of an ablation study",
        (
            "export",
            "-o",
            "{tmp}/m.py",
            "--storage",
            "sqlite:///{tmp}/abl.db",
            "--study-name",
            "s:ablation",
        ),
        "holds the ablation runs of study 's'; pass --study-name 's'",
        ablation_study_only,
    ),
    Case(
        "train unknown --schedule",
        ("train", "-o", "{tmp}/final", "--storage", "{good}", "--schedule", "linear"),
        "--schedule must be one of cosine, step",
    ),
]

STUDY_FILES = {
    "tiny.toml": TINY_DIGITS,
    "changed.toml": TINY_DIGITS.replace("\nwidths = [8, 16]", "\nwidths = [8, 32]"),
    "folder.toml": _imagefolder(),
    "stages.toml": "[data]\nimage_size = 4\n[space]\nnum_stages = [2, 4]\n",
    "kernel.toml": "[space]\nkernel_sizes = [3, 4]\n",
}


def test_the_tables_hold_at_least_30_distinct_cases():
    ids = [case.id for case in CASES] + [bad[0] for bad in BAD_INPUTS]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)


def _params(cases: list[Case]) -> list[Any]:
    marks = {
        case.id: [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        for case in cases
    }
    return [pytest.param(case, marks=marks[case.id], id=case.id) for case in cases]


def file_state(folder: Path) -> dict[str, str]:
    """Every file, folder and link under ``folder``: a stray or partial file shows up, and so
    does any changed byte. SQLite's shared-memory files, and write-ahead logs while empty, are
    left out (opening a WAL database creates them)."""
    state = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        empty_log = path.name.endswith("-wal") and path.stat().st_size == 0
        if path.name.endswith("-shm") or empty_log:
            continue
        if path.is_symlink():
            state[name] = f"link to {os.readlink(path)}"
        elif path.is_dir():
            state[name] = "folder"
        elif path.is_file():
            state[name] = checksum(path) or ""
        else:
            state[name] = "special file"
    return state


def run_case(
    case: Case,
    studies: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    study_files: dict[str, str] | None = None,
) -> str:
    """Runs a refused command line in a folder holding copies of the two studies; checks the
    rule (one ``error:`` line, exit 2, no traceback, every database byte and every file
    unchanged, no new file) and returns stderr."""
    if case.needs_non_root and os.geteuid() == 0:
        pytest.skip("running as root, which chmod does not stop from writing")
    for name in ("good.db", "pruned.db", "good-artifacts"):
        source = studies / name
        copy = shutil.copytree if source.is_dir() else shutil.copy
        copy(source, tmp_path / name)
    for name, text in (STUDY_FILES | (study_files or {})).items():
        write_study(tmp_path, text, name)
    kept = case.setup(tmp_path) if case.setup else None
    values = {
        "tmp": str(tmp_path),
        "good": f"sqlite:///{tmp_path / 'good.db'}",
        "pruned": f"sqlite:///{tmp_path / 'pruned.db'}",
        "study": str(tmp_path / "tiny.toml"),
        "port": (tmp_path / "port").read_text() if (tmp_path / "port").exists() else "",
    }
    args = [arg.format(**values) for arg in case.args]
    message = case.message.format(**values)
    # A case that wrongly succeeds must not serve the dashboard forever.
    monkeypatch.setattr(
        "socketserver.BaseServer.serve_forever",
        lambda self, *a, **k: pytest.fail("the dashboard started serving"),
    )
    monkeypatch.chdir(tmp_path)
    before = database_state(tmp_path)
    files_before = file_state(tmp_path)
    try:
        code, out, err = in_process(monkeypatch, capsys, *args)
    finally:
        if kept is not None:
            kept.close()

    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    for text in case.absent:
        assert text not in err
    assert "Traceback" not in err + out
    assert database_state(tmp_path) == before
    assert file_state(tmp_path) == files_before  # nothing written, no partial or stray file
    assert not (tmp_path / "PWNED").exists()  # no pickle was unpickled
    return err


@pytest.mark.parametrize("case", _params(CASES))
def test_bad_input_gives_one_line_exit_2_and_changes_no_database(
    case, studies, tmp_path, monkeypatch, capsys
):
    run_case(case, studies, tmp_path, monkeypatch, capsys)


def test_a_bad_worker_start_method_is_refused_before_the_study_opens(
    studies, tmp_path, monkeypatch, capsys
):
    from nin_search.worker_server import START_METHOD_ENV

    monkeypatch.setenv(START_METHOD_ENV, "fork")
    case = Case(
        "bad start method",
        ("optimize", "{study}", "--storage", "sqlite:///{tmp}/new-study.db", "--workers", "2"),
        f"{START_METHOD_ENV} must be 'spawn' or 'forkserver', but got 'fork'",
    )
    run_case(case, studies, tmp_path, monkeypatch, capsys)


# ----------------------------------------------------------------------------------------------
# Weights files: no command takes a user's weights file yet, so load_weights directly
# ----------------------------------------------------------------------------------------------


def test_load_weights_refuses_a_pickle_without_running_it(tmp_path):
    import torch

    marker = tmp_path / "PWNED"
    raw = tmp_path / "raw.safetensors"
    raw.write_bytes(pickle.dumps({"weight": _RunsCode(marker)}))
    saved = tmp_path / "saved.pt"
    torch.save({"weight": _RunsCode(marker)}, saved)  # the zip format torch.load reads
    for path in (raw, saved):
        with pytest.raises(UserError, match="is not a safetensors weights file"):
            load_weights(path)
    assert not marker.exists()


def test_load_weights_of_a_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_weights(tmp_path / "missing.safetensors")


def test_load_weights_reads_weights_of_any_architecture_that_load_state_dict_then_refuses(
    tmp_path,
):
    # load_weights cannot know the architecture: a mismatch surfaces in load_state_dict (and
    # export turns it into a user error, see the table above).
    import torch

    from nin_search.model import build_model
    from nin_search.spec import ArchSpec

    path = tmp_path / "other.safetensors"
    save_weights({"features.0.weight": torch.zeros(3, 3)}, path)
    state = load_weights(path)
    assert set(state) == {"features.0.weight"}
    spec = ArchSpec.from_dict(_any_arch())
    with pytest.raises(RuntimeError):
        build_model(spec, in_channels=1, num_classes=10).load_state_dict(state, strict=True)


def _any_arch() -> dict[str, Any]:
    import optuna

    from nin_search.config import default_config
    from nin_search.space import baseline_params, suggest_arch

    config = default_config()
    params = baseline_params(config.space, config.train, "plain")
    return suggest_arch(optuna.trial.FixedTrial(params), config.space).to_dict()


def test_a_refused_weights_file_is_not_left_at_the_weights_path(
    studies, tmp_path, monkeypatch, capsys
):
    shutil.copy(studies / "good.db", tmp_path / "good.db")
    shutil.copytree(studies / "good-artifacts", tmp_path / "good-artifacts")
    pickle_with_code(tmp_path)
    weights = tmp_path / "w.safetensors"
    storage = f"sqlite:///{tmp_path / 'good.db'}"
    code, _, err = in_process(
        monkeypatch,
        capsys,
        "export",
        "-o",
        str(tmp_path / "m.py"),
        "--weights",
        str(weights),
        "--storage",
        storage,
    )
    assert code == 2 and "are not a safetensors file" in err
    assert not weights.exists()


def test_non_image_files_beside_the_images_are_ignored(tmp_path):
    from nin_search.config import DataConfig
    from nin_search.datasets import read_dataset

    _image_folder(tmp_path, per_class=3)
    (tmp_path / "images" / "train" / "cat" / "notes.txt").write_text("not an image\n")
    config = DataConfig(dataset="imagefolder", root=str(tmp_path / "images"), image_size=8)
    images = read_dataset(config, split="train")
    assert images.images.shape == (6, 3, 8, 8)
    assert images.classes == ("cat", "dog")
