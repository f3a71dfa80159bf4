"""What a hostile user tries: never destroy, never half-write, never mislead.

The table holds command lines that must be refused by the rule of test_bad_input.py (one
``error:`` line on stderr, exit code 2, no traceback, every database byte and every other file
unchanged, no new file): outputs that would overwrite the storage, the artifact store or each
other; outputs that cannot be written; read-only commands on empty or foreign databases;
foreign studies; damaged, locked and read-only databases; missing database drivers; image
folders with link loops, dangling links, special files and decompression bombs; impossible
values and out-of-range seeds. The tests after it cover what a table cannot: wrong answers
that used to exit 0 (test classes, links), Ctrl-C and retries, temporary files, locks.
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import sqlite3
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from PIL import Image

from nin_search.config import DataConfig, StudyConfig
from nin_search.errors import UserError
from nin_search.outputs import check_outputs, write_atomic
from nin_search.records import CREATED_BY, INTERRUPTED, RETRY_DEPTH, RETRY_OF
from nin_search.study_files import load_study_config
from nin_search.weights import load_weights

from .conftest import TINY_DIGITS, write_study
from .test_bad_input import (
    Case,
    _image,
    _image_folder,
    _imagefolder,
    _params,
    database_state,
    file_instead_of_folder,
    run_case,
)
from .test_cli import checksum, in_process

MAX_SEED = 2**32 - 1

# ----------------------------------------------------------------------------------------------
# Setups
# ----------------------------------------------------------------------------------------------


class _Immutable:
    """``chattr +i`` on a path (root cannot write it either); undone by ``close()``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if shutil.which("chattr") is None:
            pytest.skip("chattr is not installed")
        result = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"chattr +i does not work here: {result.stderr.strip()}")

    def close(self) -> None:
        subprocess.run(["chattr", "-i", str(self.path)], check=True)


def immutable_folder(folder: Path) -> _Immutable:
    (folder / "locked").mkdir()
    return _Immutable(folder / "locked")


def immutable_database(folder: Path) -> _Immutable:
    return _Immutable(folder / "good.db")


def links_to_the_database(folder: Path) -> None:
    (folder / "link.db").symlink_to(folder / "good.db")
    os.link(folder / "good.db", folder / "hard.db")


def foreign_study(folder: Path) -> None:
    """foreign.db: a plain Optuna study named like the good one, minimising, with trials."""
    study = optuna.create_study(
        storage=f"sqlite:///{folder / 'foreign.db'}", study_name="tiny", direction="minimize"
    )
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)


def app_database(folder: Path) -> None:
    connection = sqlite3.connect(folder / "app.db")
    with connection:
        connection.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        connection.execute("INSERT INTO users (name) VALUES ('ada')")
    connection.close()


def empty_file(folder: Path) -> None:
    (folder / "empty.db").write_bytes(b"")


def empty_sqlite(folder: Path) -> None:
    connection = sqlite3.connect(folder / "blank.db")
    connection.execute("PRAGMA user_version = 7")  # a valid SQLite file without tables
    connection.close()


def corrupt_pages(folder: Path) -> None:
    """bad.db: good.db with every page after the first (the schema) overwritten."""
    data = bytearray((folder / "good.db").read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    data[page_size:] = bytes((index * 7919) % 251 for index in range(len(data) - page_size))
    (folder / "bad.db").write_bytes(bytes(data))


def symlink_loop(folder: Path) -> None:
    _image_folder(folder)
    (folder / "images" / "train" / "cat" / "up").symlink_to("..")


def dangling_link(folder: Path) -> None:
    _image_folder(folder)
    (folder / "images" / "train" / "dog" / "gone.png").symlink_to("moved-away.png")


def image_in_two_classes(folder: Path) -> None:
    _image_folder(folder)
    (folder / "images" / "train" / "dog" / "cat0.png").symlink_to("../cat/0.png")


def pipe_named_png(folder: Path) -> None:
    _image_folder(folder)
    os.mkfifo(folder / "images" / "train" / "cat" / "pipe.png")


def decompression_bomb(folder: Path) -> None:
    """A PNG whose header claims 20000 x 20000 pixels (a few bytes on disk)."""
    _image_folder(folder)
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    struct.pack_into(">II", data, 16, 20000, 20000)  # IHDR width, height
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    (folder / "images" / "train" / "cat" / "bomb.png").write_bytes(bytes(data))


def pipe_as_database(folder: Path) -> None:
    os.mkfifo(folder / "pipe.db")


def driver_missing(module: str):
    def setup(folder: Path) -> None:
        if importlib.util.find_spec(module) is not None:
            pytest.skip(f"{module} is installed here")

    return setup


STUDY_FILES = {
    "seed.toml": f"[study]\nseed = {MAX_SEED + 1}\n",
    "split-seed.toml": f"[data]\nsplit_seed = {MAX_SEED + 1}\n",
    "nan-lr.toml": "[train]\nlearning_rate = nan\n",
    "nan-lr-choice.toml": "[train]\nlearning_rate = [0.01, nan]\n",
    "inf-decay.toml": "[train]\nweight_decay = inf\n",
    "wide.toml": "[space]\nwidths = [1000000000]\n",
    "deep.toml": "[space]\nmlp_depth = { low = 1, high = 1000000 }\n",
    "hyperband.toml": ("[optuna]\npruner = 'hyperband'\npruner_options = { max_resource = 0 }\n"),
    "nan-threshold.toml": "[optuna]\npruner = 'threshold'\npruner_options = { lower = nan }\n",
    "folder.toml": _imagefolder(),
}


def _export(*extra: str) -> tuple[str, ...]:
    return ("export", "-o", "{tmp}/m.py", "--storage", "{good}", *extra)


CASES = [
    # 1. No command writes over its storage, its artifact store or another of its outputs.
    Case(
        "export -o the database",
        ("export", "-o", "{tmp}/good.db", "--storage", "{good}"),
        "is the study's database",
    ),
    Case(
        "export -o the database, both relative",
        ("export", "-o", "good.db", "--storage", "sqlite:///good.db"),
        "is the study's database",
    ),
    Case(
        "export -o a symbolic link to the database",
        ("export", "-o", "{tmp}/link.db", "--storage", "{good}"),
        "is the study's database",
        links_to_the_database,
    ),
    Case(
        "export -o a hard link to the database",
        ("export", "-o", "{tmp}/hard.db", "--storage", "{good}"),
        "is the study's database",
        links_to_the_database,
    ),
    Case(
        "export -o the database's write-ahead log",
        ("export", "-o", "{tmp}/good.db-wal", "--storage", "{good}"),
        "is the study's database",
    ),
    Case(
        "report -o the database",
        ("report", "-o", "{tmp}/good.db", "--storage", "{good}"),
        "is the study's database",
    ),
    Case(
        "export --weights the database",
        _export("--weights", "{tmp}/good.db"),
        "--weights '{tmp}/good.db' is the study's database",
    ),
    Case(
        "export -o X --weights X",
        ("export", "-o", "{tmp}/x", "--weights", "{tmp}/x", "--storage", "{good}"),
        "--output and --weights name the same file",
    ),
    Case(
        "report -o into the artifact store",
        ("report", "-o", "{tmp}/good-artifacts/r.html", "--storage", "{good}"),
        "lies in the artifact store",
    ),
    Case(
        "train -o the artifact store",
        ("train", "-o", "{tmp}/good-artifacts", "--storage", "{good}"),
        "lies in the artifact store",
    ),
    # 2. Every output location is checked before any work.
    Case("export -o a folder", ("export", "-o", "{tmp}", "--storage", "{good}"), "is a folder"),
    Case(
        "report -o a folder",
        ("report", "-o", "{tmp}/good-artifacts", "--storage", "{good}"),
        "is the artifact store",
    ),
    Case(
        "report -o an existing folder",
        ("report", "-o", "{tmp}", "--storage", "{good}"),
        "is a folder; pass a file path",
    ),
    Case("export --weights a folder", _export("--weights", "{tmp}"), "is a folder"),
    Case(
        "export -o under a file",
        ("export", "-o", "{tmp}/afile/m.py", "--storage", "{good}"),
        "lies under the file '{tmp}/afile'",
        file_instead_of_folder,
    ),
    Case(
        "train -o under a file",
        ("train", "-o", "{tmp}/afile/final", "--storage", "{good}"),
        "lies under the file '{tmp}/afile'",
        file_instead_of_folder,
    ),
    Case(
        "train -o in a folder nobody can write (/proc)",
        ("train", "-o", "/proc/nin-search-final", "--storage", "{good}"),
        "folder '/proc' is not writable",
    ),
    Case(
        "export -o in a folder nobody can write (/proc)",
        ("export", "-o", "/proc/m.py", "--storage", "{good}"),
        "folder '/proc' is not writable",
    ),
    Case(
        "train -o in an immutable folder (chattr +i)",
        ("train", "-o", "{tmp}/locked/final", "--storage", "{good}"),
        "is not writable",
        immutable_folder,
    ),
    Case(
        "report -o in an immutable folder (chattr +i)",
        ("report", "-o", "{tmp}/locked/r.html", "--storage", "{good}"),
        "is not writable",
        immutable_folder,
    ),
    # 5. A study that nin-search did not create is never adopted, nor read.
    Case(
        "optimize on a foreign study of the same name",
        ("optimize", "{study}", "--storage", "sqlite:///{tmp}/foreign.db"),
        "study 'tiny' in sqlite:///{tmp}/foreign.db was not created by nin-search",
        foreign_study,
    ),
    Case(
        "best on a foreign study",
        ("best", "--storage", "sqlite:///{tmp}/foreign.db"),
        "was not created by nin-search",
        foreign_study,
    ),
    Case(
        "export of a foreign study",
        ("export", "-o", "{tmp}/m.py", "--storage", "sqlite:///{tmp}/foreign.db"),
        "was not created by nin-search",
        foreign_study,
    ),
    Case(
        "report on a foreign study",
        ("report", "-o", "{tmp}/r.html", "--storage", "sqlite:///{tmp}/foreign.db"),
        "was not created by nin-search",
        foreign_study,
    ),
    Case(
        "train on a foreign study",
        ("train", "-o", "{tmp}/final", "--storage", "sqlite:///{tmp}/foreign.db"),
        "was not created by nin-search",
        foreign_study,
    ),
    Case(
        "dashboard on a foreign study",
        (
            "dashboard",
            "--storage",
            "sqlite:///{tmp}/foreign.db",
            "--study-name",
            "tiny",
            "--port",
            "0",
        ),
        "was not created by nin-search",
        foreign_study,
    ),
    # 8. Read-only commands never create a schema; empty and foreign databases are refused.
    *[
        Case(
            f"{command[0]} on an empty file",
            (*command, "--storage", "sqlite:///{tmp}/empty.db"),
            "is an empty file, not a nin-search database",
            empty_file,
        )
        for command in (
            ("best",),
            ("export", "-o", "{tmp}/m.py"),
            ("report", "-o", "{tmp}/r.html"),
            ("train", "-o", "{tmp}/final"),
            ("dashboard", "--port", "0"),
        )
    ],
    *[
        Case(
            f"{command[0]} on another application's SQLite database",
            (*command, "--storage", "sqlite:///{tmp}/app.db"),
            "is another application's SQLite database (tables: users)",
            app_database,
        )
        for command in (
            ("best",),
            ("export", "-o", "{tmp}/m.py"),
            ("report", "-o", "{tmp}/r.html"),
            ("dashboard", "--port", "0"),
            ("optimize", "{study}"),
        )
    ],
    Case(
        "best on a SQLite database without tables",
        ("best", "--storage", "sqlite:///{tmp}/blank.db"),
        "is an empty SQLite database with no study",
        empty_sqlite,
    ),
    Case(
        "storage that is a named pipe (reading it would hang)",
        ("best", "--storage", "sqlite:///{tmp}/pipe.db"),
        "is not a regular file (a pipe or a device)",
        pipe_as_database,
    ),
    Case(
        "--timeout nan",
        ("optimize", "{study}", "--storage", "sqlite:///{tmp}/n.db", "--timeout", "nan"),
        "Invalid value for '--timeout'",
    ),
    Case(
        "storage that is a folder",
        ("optimize", "{study}", "--storage", "sqlite:///{tmp}/good-artifacts"),
        "is a folder, not a database file",
    ),
    # Database trouble.
    Case(
        "corrupt pages: best",
        ("best", "--storage", "sqlite:///{tmp}/bad.db"),
        "is not a usable SQLite database",
        corrupt_pages,
    ),
    Case(
        "corrupt pages: optimize",
        ("optimize", "{study}", "--storage", "sqlite:///{tmp}/bad.db"),
        "is not a usable SQLite database",
        corrupt_pages,
    ),
    Case(
        "read-only database file (chattr +i): optimize",
        ("optimize", "{study}", "--storage", "{good}", "--n-trials", "5"),
        "is read-only",
        immutable_database,
    ),
    Case(
        "database driver not installed (mysqlclient)",
        ("best", "--storage", "mysql://user@127.0.0.1:1/nin_search"),
        "the database driver 'mysqldb' for 'mysql://user@127.0.0.1:1/nin_search' is not installed",
        driver_missing("MySQLdb"),
    ),
    Case(
        "database driver not installed (pymysql): optimize",
        ("optimize", "{study}", "--storage", "mysql+pymysql://user:s3cret@127.0.0.1:1/x"),
        "pip install pymysql",
        driver_missing("pymysql"),
        absent=("s3cret",),
    ),
    Case(
        "database driver not installed (psycopg2)",
        ("report", "-o", "{tmp}/r.html", "--storage", "postgresql+psycopg2://user@127.0.0.1:1/x"),
        "pip install psycopg2-binary",
        driver_missing("psycopg2"),
    ),
    Case(
        "unknown database driver",
        ("best", "--storage", "postgresql+nosuchdriver://user@127.0.0.1:1/x"),
        "unknown database driver 'postgresql+nosuchdriver'",
    ),
    # No half-created state: everything that can be checked is checked before a write.
    Case(
        "study name over 200 characters",
        ("optimize", "{study}", "--storage", "sqlite:///{tmp}/n.db", "--study-name", "x" * 300),
        "the study name is 300 characters long",
    ),
    Case(
        "study name too long in bytes for the checkpoint folder's name",
        ("optimize", "{study}", "--storage", "sqlite:///{tmp}/n.db", "--study-name", "é" * 150),
        "over the file system's 255",
    ),
    Case(
        "empty study name",
        ("optimize", "{study}", "--storage", "sqlite:///{tmp}/n.db", "--study-name", ""),
        "the study name is empty",
    ),
    Case(
        "unwritable --artifacts on a fresh database",
        (
            "optimize",
            "{study}",
            "--storage",
            "sqlite:///{tmp}/n.db",
            "--artifacts",
            "/proc/nin-search-artifacts",
        ),
        "folder '/proc' is not writable",
    ),
    Case(
        "immutable --artifacts folder (chattr +i) on a fresh database",
        (
            "optimize",
            "{study}",
            "--storage",
            "sqlite:///{tmp}/n.db",
            "--artifacts",
            "{tmp}/locked/artifacts",
        ),
        "is not writable",
        immutable_folder,
    ),
    Case(
        "--seed over 2**32 - 1: optimize",
        ("optimize", "{study}", "--storage", "sqlite:///{tmp}/n.db", "--seed", str(MAX_SEED + 1)),
        f"Invalid value for '--seed': Input should be less than or equal to {MAX_SEED}",
    ),
    Case(
        "--seed over 2**32 - 1: train",
        ("train", "-o", "{tmp}/final", "--storage", "{good}", "--seed", str(MAX_SEED + 1)),
        f"Invalid value for '--seed': Input should be less than or equal to {MAX_SEED}",
    ),
    Case(
        "study.seed over 2**32 - 1 in the study file",
        ("optimize", "{tmp}/seed.toml", "--storage", "sqlite:///{tmp}/n.db"),
        f"study.seed: Input should be less than or equal to {MAX_SEED}",
    ),
    Case(
        "data.split_seed over 2**32 - 1 in the study file",
        ("optimize", "{tmp}/split-seed.toml", "--storage", "sqlite:///{tmp}/n.db"),
        "data.split_seed",
    ),
    # Impossible values that made every trial fail while the run exited 0.
    Case(
        "learning_rate = nan",
        ("optimize", "{tmp}/nan-lr.toml", "--storage", "sqlite:///{tmp}/n.db"),
        "train.learning_rate must be a finite number, but got nan",
    ),
    Case(
        "learning_rate = [0.01, nan]",
        ("optimize", "{tmp}/nan-lr-choice.toml", "--storage", "sqlite:///{tmp}/n.db"),
        "train.learning_rate must be a finite number, but got nan",
    ),
    Case(
        "weight_decay = inf",
        ("optimize", "{tmp}/inf-decay.toml", "--storage", "sqlite:///{tmp}/n.db"),
        "train.weight_decay must be a finite number, but got inf",
    ),
    Case(
        "widths = [1000000000]",
        ("optimize", "{tmp}/wide.toml", "--storage", "sqlite:///{tmp}/n.db"),
        "no trial could train it",
    ),
    Case(
        "mlp_depth up to a million",
        ("optimize", "{tmp}/deep.toml", "--storage", "sqlite:///{tmp}/n.db"),
        "space.mlp_depth must be <= 64, but got 1000000",
    ),
    Case(
        "hyperband max_resource = 0",
        ("optimize", "{tmp}/hyperband.toml", "--storage", "sqlite:///{tmp}/n.db"),
        "optuna.pruner_options for pruner 'hyperband': max_resource = 0 is the most epochs a "
        "trial may train, so it must be at least 1",
    ),
    Case(
        "threshold pruner lower = nan",
        ("optimize", "{tmp}/nan-threshold.toml", "--storage", "sqlite:///{tmp}/n.db"),
        "optuna.pruner_options.lower must be a finite number",
    ),
    # 4. Image folders: links followed safely, special files and bombs refused.
    Case(
        "symbolic link loop in the image folder (train/cat/up -> ..)",
        ("optimize", "{tmp}/folder.toml", "--storage", "sqlite:///{tmp}/f.db"),
        "symbolic link '{tmp}/images/train/cat/up' leads back to '{tmp}/images/train'",
        symlink_loop,
    ),
    Case(
        "dangling symbolic link in the image folder",
        ("optimize", "{tmp}/folder.toml", "--storage", "sqlite:///{tmp}/f.db"),
        "'{tmp}/images/train/dog/gone.png' is a dangling symbolic link",
        dangling_link,
    ),
    Case(
        "one image in two classes through a link",
        ("optimize", "{tmp}/folder.toml", "--storage", "sqlite:///{tmp}/f.db"),
        "keep it in one class",
        image_in_two_classes,
    ),
    Case(
        "a named pipe called pipe.png (reading it would hang)",
        ("optimize", "{tmp}/folder.toml", "--storage", "sqlite:///{tmp}/f.db"),
        "is not a regular file",
        pipe_named_png,
    ),
    Case(
        "decompression bomb (20000 x 20000 PNG header)",
        ("optimize", "{tmp}/folder.toml", "--storage", "sqlite:///{tmp}/f.db"),
        "'{tmp}/images/train/cat/bomb.png' is too large to decode safely",
        decompression_bomb,
    ),
]


def test_the_hostile_table_holds_at_least_60_distinct_cases():
    ids = [case.id for case in CASES]
    assert len(ids) >= 60 and len(set(ids)) == len(ids)


@pytest.mark.parametrize("case", _params(CASES))
def test_hostile_input_gives_one_line_exit_2_and_changes_no_file(
    case, studies, tmp_path, monkeypatch, capsys
):
    run_case(case, studies, tmp_path, monkeypatch, capsys, study_files=STUDY_FILES)


# ----------------------------------------------------------------------------------------------
# Outputs: checked first, written atomically, never blocked by a killed run
# ----------------------------------------------------------------------------------------------


def _copy_good(studies: Path, folder: Path) -> str:
    shutil.copy(studies / "good.db", folder / "good.db")
    shutil.copytree(studies / "good-artifacts", folder / "good-artifacts")
    return f"sqlite:///{folder / 'good.db'}"


def test_train_checks_its_output_before_retraining(studies, tmp_path, monkeypatch, capsys):
    storage = _copy_good(studies, tmp_path)

    def retrain(*args: Any, **kwargs: Any) -> None:
        pytest.fail("retrained although the output cannot be written")

    monkeypatch.setattr("nin_search.retrained.retrain", retrain)
    file_instead_of_folder(tmp_path)
    code, _, err = in_process(
        monkeypatch, capsys, "train", "-o", str(tmp_path / "afile" / "f"), "--storage", storage
    )
    assert code == 2 and "lies under the file" in err, err


def test_a_killed_export_does_not_block_the_next_one(studies, tmp_path, monkeypatch, capsys):
    storage = _copy_good(studies, tmp_path)
    weights = tmp_path / "w.safetensors"
    # What a killed export of an older version left behind, and a concurrent one's file.
    (tmp_path / ".w.safetensors.partial").write_bytes(b"half")
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
    assert code == 0, err
    assert load_weights(weights)
    assert (tmp_path / "m.py").read_text().startswith('"""')
    left = sorted(path.name for path in tmp_path.iterdir() if path.name.startswith("."))
    assert left == [".w.safetensors.partial"]  # no temporary file of this run is left


def test_write_atomic_leaves_the_old_file_and_no_temporary_file_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def half_then_fail(path: Path) -> None:
        path.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, half_then_fail)
    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["out.txt"]
    assert write_atomic(target, lambda path: path.write_text("new")) == 3
    assert target.read_text() == "new"


def test_write_atomic_turns_a_full_disk_into_one_line(tmp_path):
    import errno

    def disk_full(path: Path) -> None:
        path.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(UserError, match="No space left on device"):
        write_atomic(tmp_path / "out.txt", disk_full)
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_is_a_pipe_is_written_in_place_not_replaced(tmp_path):
    import stat
    import threading

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(pipe.read_bytes()))
    reader.start()
    check_outputs([("--output", pipe)])
    write_atomic(pipe, lambda path: path.write_text("streamed"))
    reader.join(10)
    assert received == [b"streamed"]
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)  # still a pipe (like /dev/null, /dev/stdout)


def test_a_study_named_dot_dot_keeps_its_checkpoints_in_their_folder():
    from nin_search.artifacts import checkpoint_dir_for

    folder = checkpoint_dir_for(Path("/x/nin_search-artifacts"), "..")
    assert folder == Path("/x/nin_search-checkpoints/__")


def test_check_outputs_guards_inputs_that_a_command_names(tmp_path):
    """The API other commands call (predict, onnx export): protected paths and folders."""
    images = tmp_path / "images"
    images.mkdir()
    with pytest.raises(UserError, match="lies in the input images"):
        check_outputs([("--output", images / "p.csv")], protected=[("the input images", images)])
    check_outputs([("--output", tmp_path / "new" / "p.csv")], created_folders=[tmp_path / "new"])
    assert not (tmp_path / "new").exists()  # checking creates nothing
    with pytest.raises(UserError, match="does not exist; create it"):
        check_outputs([("--output", tmp_path / "new" / "p.csv")])
    with pytest.raises(UserError, match="folder '.*other' for --onnx does not exist"):
        check_outputs(
            [("--output", tmp_path / "new" / "p.csv"), ("--onnx", tmp_path / "other" / "x")],
            created_folders=[tmp_path / "new"],  # only the folder the command creates
        )
    (tmp_path / "p.csv").write_text("mine\n")
    check_outputs([("--output", tmp_path / "p.csv")])  # report -o: rewritten
    with pytest.raises(UserError, match="exists; pass --force to replace it"):
        check_outputs([("--output", tmp_path / "p.csv")], replace=False)


# ----------------------------------------------------------------------------------------------
# 3. Test classes are matched to the training classes by name; 4. links are read safely
# ----------------------------------------------------------------------------------------------


def _folder_config(root: Path) -> DataConfig:
    return DataConfig(dataset="imagefolder", root=str(root), image_size=8)


def test_test_classes_are_the_training_classes_matched_by_name(tmp_path):
    from nin_search.data import load_final_data

    _image_folder(tmp_path, classes=("cat", "dog", "emu"), per_class=2)
    for name in ("cat", "emu"):  # the test split lacks "dog"
        _image(tmp_path / "images" / "test" / name / "0.png", seed=7)
    _, test, info = load_final_data(_folder_config(tmp_path / "images"), device="cpu")
    assert info["classes"] == ("cat", "dog", "emu")
    assert test.labels.tolist() == [0, 2]  # emu is class 2 of training, not the test's 1


def test_a_test_split_may_hold_a_single_class(tmp_path):
    from nin_search.data import load_final_data

    _image_folder(tmp_path, classes=("cat", "dog", "emu"), per_class=2)
    _image(tmp_path / "images" / "test" / "emu" / "0.png", seed=7)
    _, test, _ = load_final_data(_folder_config(tmp_path / "images"), device="cpu")
    assert test.labels.tolist() == [2]


def test_a_test_class_the_training_never_saw_is_an_error(tmp_path):
    from nin_search.data import load_final_data

    _image_folder(tmp_path, classes=("cat", "dog"), per_class=2)
    _image(tmp_path / "images" / "test" / "fox" / "0.png", seed=7)
    _image(tmp_path / "images" / "test" / "cat" / "0.png", seed=8)
    with pytest.raises(UserError, match=r"test/ holds class\(es\) \['fox'\] that train/ does not"):
        load_final_data(_folder_config(tmp_path / "images"), device="cpu")


def test_test_images_that_are_training_images_through_a_link_are_refused(tmp_path):
    from nin_search.data import load_final_data

    _image_folder(tmp_path, classes=("cat", "dog"), per_class=2)
    _image(tmp_path / "images" / "test" / "dog" / "0.png", seed=9)
    test_cat = tmp_path / "images" / "test" / "cat"
    test_cat.mkdir(parents=True)
    (test_cat / "0.png").symlink_to(tmp_path / "images" / "train" / "cat" / "0.png")
    with pytest.raises(UserError, match="are also training images"):
        load_final_data(_folder_config(tmp_path / "images"), device="cpu")


def test_train_refuses_data_whose_classes_changed_since_the_search():
    from nin_search.config import default_config
    from nin_search.retrain import retrain

    config = default_config()
    with pytest.raises(UserError, match="but the study was searched on"):
        retrain(config, None, None, epochs=1, seed=0, device="cpu", classes=("a", "b"))


def test_links_count_each_image_once_and_hidden_entries_are_ignored(tmp_path):
    from nin_search.datasets import read_dataset

    _image_folder(tmp_path, classes=("cat", "dog"), per_class=3)
    train = tmp_path / "images" / "train"
    (train / "cat" / "again.png").symlink_to("0.png")  # the same image twice
    (train / "dog" / "more").symlink_to(tmp_path / "elsewhere")  # a folder elsewhere
    _image(tmp_path / "elsewhere" / "x.png", seed=50)
    (train / "dog" / "more-again").symlink_to(tmp_path / "elsewhere")  # read once
    (train / ".ipynb_checkpoints").mkdir()  # not a class
    _image(train / ".ipynb_checkpoints" / "0.png", seed=60)
    (train / "cat" / "._0.png").write_bytes(b"AppleDouble")  # not an image
    images = read_dataset(_folder_config(tmp_path / "images"), split="train")
    assert images.classes == ("cat", "dog")
    assert images.labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert len(set(images.real_paths)) == 7


def test_the_issue_s_symlink_loop_no_longer_multiplies_images(tmp_path):
    from nin_search.data import load_search_data

    _image_folder(tmp_path, classes=("cat", "dog"), per_class=6)
    (tmp_path / "images" / "train" / "cat" / "up").symlink_to("..")
    with pytest.raises(UserError, match="a loop"):
        load_search_data(_folder_config(tmp_path / "images"), device="cpu")


def test_a_study_file_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes("\ufeff[study]\nname = 'bom'\n".encode())
    assert load_study_config(path).study.name == "bom"


# ----------------------------------------------------------------------------------------------
# 6. Ctrl-C never uses up a retry, and says what is true
# ----------------------------------------------------------------------------------------------


def _interrupt(*args: Any, **kwargs: Any) -> None:
    raise KeyboardInterrupt


def test_repeated_ctrl_c_never_drops_the_baselines(tmp_path, monkeypatch, capsys):
    study_file = write_study(tmp_path, TINY_DIGITS.replace("n_trials = 3", "n_trials = 2"))
    storage = f"sqlite:///{tmp_path / 'c.db'}"
    args = ("optimize", str(study_file), "--storage", storage)
    with monkeypatch.context() as patch:
        patch.setattr("nin_search.objective.Trainer.fit", _interrupt)  # mid-training
        for _ in range(4):  # each baseline interrupted again and again
            code, _, err = in_process(patch, capsys, *args)
            assert code == 130, err
            assert "recorded as failed, and the next run retries them" in err
    code, _, err = in_process(monkeypatch, capsys, *args)
    assert code == 0, err
    trials = optuna.load_study(study_name="tiny", storage=storage).get_trials()
    completed = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.user_attrs["baseline"] for t in completed) == ["nin", "plain"]
    interrupted = [t for t in trials if t.user_attrs.get(INTERRUPTED)]
    assert len(interrupted) == 4
    assert all(t.user_attrs.get(RETRY_DEPTH, 0) == 0 for t in trials)  # no retry used up


def test_a_worker_that_keeps_crashing_is_still_retried_at_most_twice():
    from nin_search.recovery import requeue_interrupted

    study = optuna.create_study(direction="maximize")
    distribution = optuna.distributions.FloatDistribution(0, 1)
    number = None
    for _ in range(4):
        attrs = {"retry": True, "fail_reason": "worker 1 on host died"}
        if number is not None:
            attrs |= {
                RETRY_OF: number,
                RETRY_DEPTH: study.trials[number].user_attrs.get(RETRY_DEPTH, 0) + 1,
            }
        study.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState.FAIL,
                params={"x": 0.5},
                distributions={"x": distribution},
                user_attrs=attrs,
            )
        )
        number = len(study.trials) - 1
    assert requeue_interrupted(study) == []  # trial 2 (depth 2) was the last retry


def test_an_interrupt_between_trials_does_not_claim_a_retry(tmp_path, monkeypatch, capsys):
    study_file = write_study(tmp_path, TINY_DIGITS)
    storage = f"sqlite:///{tmp_path / 'i.db'}"
    monkeypatch.setattr("nin_search.search.optimize", _interrupt)
    args = ("optimize", str(study_file), "--storage", storage)
    code, _, err = in_process(monkeypatch, capsys, *args)
    assert code == 130
    assert "no trial was running" in err and "retries" not in err


# ----------------------------------------------------------------------------------------------
# No half-created study; failing trials say why; a run where all failed fails
# ----------------------------------------------------------------------------------------------


def test_study_creation_is_all_or_nothing(tmp_path, monkeypatch):
    from nin_search.study import open_study

    config = StudyConfig.model_validate({"study": {"name": "half"}})
    storage = f"sqlite:///{tmp_path / 'h.db'}"
    monkeypatch.setattr("nin_search.study.enqueue_baselines", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        open_study(config, storage_url=storage, study_name="half")
    assert optuna.get_all_study_names(storage) == []
    monkeypatch.undo()
    study = open_study(config, storage_url=storage, study_name="half")
    assert study.user_attrs[CREATED_BY] and len(study.trials) == 2


def test_a_run_where_every_trial_failed_exits_1_and_says_why(tmp_path, monkeypatch, capsys):
    study_file = write_study(tmp_path, TINY_DIGITS)
    storage = f"sqlite:///{tmp_path / 'f.db'}"

    def build_model(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("cannot build this layer")

    monkeypatch.setattr("nin_search.objective.build_model", build_model)
    args = ("optimize", str(study_file), "--storage", storage)
    code, _, err = in_process(monkeypatch, capsys, *args)
    assert code == 1, err
    assert "every trial of this run failed" in err
    assert "RuntimeError: cannot build this layer" in err
    trials = optuna.load_study(study_name="tiny", storage=storage).get_trials()
    assert trials and all(
        t.user_attrs["fail_reason"] == "RuntimeError: cannot build this layer" for t in trials
    )


def test_the_dashboard_and_readers_leave_foreign_studies_alone(studies, tmp_path):
    from nin_search.study import load_studies

    storage = _copy_good(studies, tmp_path)
    optuna.create_study(storage=storage, study_name="someone-else")
    assert [study.study_name for study in load_studies(storage)] == ["tiny"]


# ----------------------------------------------------------------------------------------------
# Locked and read-only databases
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def short_lock_wait(monkeypatch):
    monkeypatch.setattr("nin_search.storage.SQLITE_TIMEOUT", 0.2)


def _hold_lock(database: Path, statement: str) -> sqlite3.Connection:
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute(statement)
    return connection


def test_a_write_locked_database_is_one_line_for_optimize_and_no_obstacle_for_best(
    studies, tmp_path, monkeypatch, capsys, short_lock_wait
):
    storage = _copy_good(studies, tmp_path)
    study_file = write_study(tmp_path, TINY_DIGITS, "tiny.toml")
    holder = _hold_lock(tmp_path / "good.db", "BEGIN IMMEDIATE")  # another process writing
    try:
        before = database_state(tmp_path)
        args = ("optimize", str(study_file), "--storage", storage, "--n-trials", "5")
        code, _, err = in_process(monkeypatch, capsys, *args)
        assert code == 2 and err.count("\n") == 1, err
        assert "is locked by another process" in err and "invalid data" not in err
        code, out, err = in_process(monkeypatch, capsys, "best", "--storage", storage)
        assert code == 0, err  # a reader needs no write lock
        assert "val accuracy" in out
        assert database_state(tmp_path) == before
    finally:
        holder.close()


def test_a_reader_on_an_exclusively_locked_database_is_one_line(
    studies, tmp_path, monkeypatch, capsys, short_lock_wait
):
    storage = _copy_good(studies, tmp_path)
    connection = sqlite3.connect(tmp_path / "good.db")
    connection.execute("PRAGMA journal_mode = DELETE")  # a rollback journal: readers can block
    connection.close()
    holder = _hold_lock(tmp_path / "good.db", "BEGIN EXCLUSIVE")
    try:
        before = checksum(tmp_path / "good.db")
        code, _, err = in_process(monkeypatch, capsys, "best", "--storage", storage)
        assert code == 2 and err.count("\n") == 1, err
        assert "is locked by another process" in err
        assert checksum(tmp_path / "good.db") == before
    finally:
        holder.close()


def test_readers_work_on_a_read_only_database(studies, tmp_path, monkeypatch, capsys):
    storage = _copy_good(studies, tmp_path)
    immutable = immutable_database(tmp_path)
    try:
        code, out, err = in_process(monkeypatch, capsys, "best", "--storage", storage, "--json")
    finally:
        immutable.close()
    assert code == 0, err
    assert '"study": "tiny"' in out


def test_tensors_of_an_image_folder_record_real_paths(tmp_path):
    from nin_search.datasets import read_dataset

    _image_folder(tmp_path, per_class=2)
    images = read_dataset(_folder_config(tmp_path / "images"), split="train")
    assert all(Path(path).is_absolute() for path in images.real_paths)
    assert isinstance(images.images, torch.Tensor)


def test_a_storage_another_worker_is_still_creating_is_not_taken_for_a_foreign_database(tmp_path):
    # Optuna creates its tables one at a time: a second `optimize` starting at that moment sees
    # only some of them (found by the clean-clone CI). Foreign tables are still refused.
    import sqlite3

    import sqlalchemy
    from optuna.storages._rdb import models

    from nin_search.storage import open_storage

    path = tmp_path / "race.db"
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    models.BaseModel.metadata.tables["studies"].create(engine)  # Optuna's first table only
    engine.dispose()
    storage = open_storage(f"sqlite:///{path}", heartbeat=False)  # completes the schema
    assert optuna.get_all_study_summaries(storage) == []
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE studies (id INTEGER)")
        connection.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(UserError, match="another application's SQLite database"):
        open_storage(f"sqlite:///{foreign}", heartbeat=False)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("postgres://nin:s3cret@db/nin", "spell it postgresql://"),
        ("mysql+nodriver://nin:s3cret@db/nin", "unknown database driver"),
        ("mongodb://nin:s3cret@db/nin", "unsupported storage 'mongodb'"),
        ("postgresql://nin:s3cret@db:notaport/nin", "bad storage URL"),
    ],
)
def test_a_storage_url_that_is_refused_never_shows_its_password(url, words):
    from nin_search.storage import check_storage_url

    with pytest.raises(UserError) as refused:
        check_storage_url(url, must_exist=False)
    assert words in str(refused.value)
    assert "s3cret" not in str(refused.value) and "nin:***@db" in str(refused.value)


def test_a_password_with_an_unescaped_at_sign_is_refused_and_never_shown_in_part():
    from nin_search.storage import check_storage_url
    from nin_search.storage_messages import display_url

    url = "postgresql+psycopg://nin:s3c@ret@db/nin"  # SQLAlchemy: password 's3c', host 'ret@db'
    with pytest.raises(UserError) as refused:
        check_storage_url(url, must_exist=False)
    assert "unescaped '@'" in str(refused.value) and "%40" in str(refused.value)
    assert "s3c" not in str(refused.value) and "ret" not in str(refused.value)
    assert display_url(url) == "postgresql+psycopg://nin:***@db/nin"
