"""Study files that travel: shipped studies by name from anywhere, `init`, and the wheel."""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import tomllib
from pydantic import ValidationError

from nin_search import study_files
from nin_search.cli._common import resolve_config
from nin_search.config import StudyConfig, default_config
from nin_search.errors import UserError
from nin_search.study_files import load_study_config, shipped_studies

from .conftest import CIFAR10_MINI, REPO, run_cli
from .test_cli import in_process


def test_the_shipped_studies_are_the_repository_s_studies_folder():
    assert shipped_studies() == sorted(path.stem for path in (REPO / "studies").glob("*.toml"))
    assert {"digits", "cifar10-mini", "digits-pareto"} <= set(shipped_studies())


def test_a_shipped_study_is_found_by_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_study_config("digits") == default_config()
    assert load_study_config("digits.toml") == default_config()
    pareto = load_study_config("digits-pareto")
    assert pareto == load_study_config(REPO / "studies" / "digits-pareto.toml")
    assert resolve_config(Path("digits-pareto")) == pareto  # what `optimize NAME` reads


def test_a_local_file_wins_over_a_shipped_study_of_the_same_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digits").write_text('[study]\nname = "mine"\n')
    assert load_study_config("digits").study.name == "mine"
    # `nin-search init -o digits.toml`, then `optimize digits`: the file written, too.
    (tmp_path / "digits").unlink()
    (tmp_path / "digits.toml").write_text('[study]\nname = "mine too"\n')
    assert load_study_config("digits").study.name == "mine too"


def test_a_folder_named_like_a_shipped_study_does_not_hide_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mnist").mkdir()  # where a user keeps its images, say
    assert study_files.study_file_path("mnist") == study_files.SHIPPED_STUDIES_DIR / "mnist.toml"
    with pytest.raises(UserError, match="'other' is a folder"):
        (tmp_path / "other").mkdir()
        study_files.study_file_path("other")


def test_an_unknown_study_name_lists_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as raised:
        load_study_config("digitz")
    message = str(raised.value)
    assert "'digitz' not found" in message and "\n" not in message
    assert "cifar10-mini, cifar10-mini-quick, digits, digits-pareto" in message
    assert "nin-search init" in message


@pytest.mark.skipif(not CIFAR10_MINI.is_dir(), reason="needs ../shared/data/cifar10-mini")
def test_cifar10_mini_finds_its_images_from_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for study in ("cifar10-mini", REPO / "studies" / "cifar10-mini.toml"):
        assert Path(load_study_config(study).data.root) == CIFAR10_MINI.resolve()


def test_cifar10_mini_elsewhere_fails_with_one_line_saying_what_is_missing(tmp_path, monkeypatch):
    installed = tmp_path / "site-packages" / "nin_search" / "studies"
    shutil.copytree(REPO / "studies", installed)  # as a wheel installs them
    monkeypatch.setattr(study_files, "SHIPPED_STUDIES_DIR", installed)
    monkeypatch.chdir(tmp_path)
    assert load_study_config("digits") == default_config()
    with pytest.raises(UserError) as raised:
        load_study_config("cifar10-mini")
    message = str(raised.value)
    assert "\n" not in message
    assert "shipped study 'cifar10-mini' needs its image folder" in message
    assert "shared/data/cifar10-mini" in message and "which is not here" in message
    assert "nin-search init --dataset imagefolder --root DIR" in message


# ----------------------------------------------------------------------------------------------
# nin-search init
# ----------------------------------------------------------------------------------------------


def test_init_writes_the_commented_default_study(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = in_process(monkeypatch, capsys, "init", "-o", "my-study.toml")
    assert code == 0, err
    assert "nin-search optimize my-study.toml" in out
    path = tmp_path / "my-study.toml"
    assert (path.stat().st_mode & 0o777) == 0o644
    config = load_study_config(path)
    assert config.study.name == "my-study"
    expected = default_config()
    assert config.model_copy(update={"study": expected.study}) == expected
    text = path.read_text()
    commented = [line for line in text.splitlines() if "=" in line and not line.startswith("#")]
    assert sum("#" in line for line in commented) >= 0.6 * len(commented)


def test_init_for_an_image_folder_points_at_it_and_augments(tmp_path, monkeypatch, capsys):
    (tmp_path / "data" / "train" / "cat").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    code, _, err = in_process(
        monkeypatch,
        capsys,
        "init",
        "--dataset",
        "imagefolder",
        "--root",
        "data",
        "-o",
        "pets.toml",
        "--name",
        "pets",
    )
    assert code == 0, err
    raw = tomllib.loads((tmp_path / "pets.toml").read_text())
    assert raw["data"]["root"] == "data"  # relative: the study and its data move together
    config = load_study_config(tmp_path / "pets.toml")
    assert config.study.name == "pets" and config.data.dataset == "imagefolder"
    assert Path(config.data.root) == (tmp_path / "data").resolve()
    assert config.data.augment.crop_padding == 4 and config.data.augment.flip


@pytest.mark.parametrize("name", ['a"b\nc', "back\\slash \\n", "tab\there", "ünï ✓"])
def test_init_writes_any_study_name_as_a_toml_string(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = in_process(monkeypatch, capsys, "init", "-o", "s.toml", "--name", name)
    assert code == 0, err
    assert load_study_config(tmp_path / "s.toml").study.name == name


@pytest.mark.parametrize("dataset", ["cifar10", "mnist", "svhn"])
def test_init_for_a_torchvision_dataset_writes_a_valid_study(dataset, tmp_path):
    from nin_search.study_template import study_file_text

    text = study_file_text(dataset=dataset, name=dataset, folder=tmp_path)
    (tmp_path / "s.toml").write_text(text)
    config = load_study_config(tmp_path / "s.toml")
    assert config.data.dataset == dataset and config.data.download


def test_the_init_file_names_every_key_a_study_file_accepts(tmp_path):
    # Every key is written with its value, or as a comment where it has none (a limit, a
    # timeout): "unknown key" errors send users to this file to check their spelling.
    import re

    from pydantic import BaseModel

    from nin_search.config import StudyConfig
    from nin_search.study_template import study_file_text
    from nin_search.vocabulary import DATASETS

    (tmp_path / "pets" / "train" / "cat").mkdir(parents=True)
    texts = [  # every dataset's file: a [data] key may apply to some datasets only
        study_file_text(
            dataset=dataset,
            root=None if dataset == "digits" else tmp_path / "pets",
            name="s",
            folder=tmp_path,
        )
        for dataset in DATASETS
    ]
    tables = {"": set()}
    table = ""
    for line in "\n".join(texts).splitlines():
        if match := re.match(r"^\[([\w.]+)\]", line):
            table = match[1]
            tables.setdefault(table, set())
        elif match := re.match(r"^#? ?(\w+) *=", line):
            tables[table].add(match[1])

    def expected(model: type[BaseModel], prefix: str) -> list[tuple[str, str]]:
        pairs = []
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                pairs += expected(annotation, f"{prefix}.{name}".strip("."))
            else:
                pairs.append((prefix, name))
        return pairs

    missing = [
        f"{table}.{key}".strip(".")
        for table, key in expected(StudyConfig, "")
        if key not in tables.get(table, set())
    ]
    assert not missing, missing


def test_init_to_stdout_writes_the_study_file_alone(tmp_path):
    result = run_cli("init", "-o", "/dev/stdout", "--name", "piped", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (tmp_path / "piped.toml").write_text(result.stdout)
    assert load_study_config(tmp_path / "piped.toml").study.name == "piped"


def test_init_for_a_torchvision_dataset_writes_the_cache_folder_the_run_would_use(
    tmp_path, monkeypatch
):
    from nin_search.config import torchvision_root
    from nin_search.study_template import study_file_text

    monkeypatch.setenv("NIN_SEARCH_CACHE", str(tmp_path / "cache"))
    text = study_file_text(dataset="mnist", name="m", folder=tmp_path)
    (tmp_path / "m.toml").write_text(text)
    root = load_study_config(tmp_path / "m.toml").data.root
    assert Path(root).expanduser() == torchvision_root() == tmp_path / "cache" / "datasets"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--dataset", "imagefolder"), "--dataset imagefolder needs --root DIR"),
        (("--dataset", "imagefolder", "--root", "nowhere"), "has no train/ folder"),
        (("--dataset", "imagenet"), "--dataset must be one of digits, imagefolder"),
        (("--name", "a:ablation"), "--name 'a:ablation': study.name 'a:ablation' ends in"),
        (("--name", ""), "--name ''"),
        (("--root", "."), "--root is for the image-folder and torchvision datasets"),
        (("-o", "exists.toml"), "--output 'exists.toml' exists; pass --force"),
        (("-o", "no/such/folder.toml"), "for --output does not exist"),
        (("--name", "x" * 201), "at most 200 characters"),
        (("-o", "adir"), "--output 'adir' is a folder; pass a file path"),
        (("-o", "study.db", "--force"), "'study.db' is an SQLite database"),
    ],
)
def test_init_refuses_bad_input_in_one_line(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exists.toml").write_text("# mine\n")
    (tmp_path / "adir").mkdir()
    database = tmp_path / "study.db"
    sqlite3.connect(database).execute("CREATE TABLE studies (id INTEGER)").connection.close()
    stored = database.read_bytes()
    code, _, err = in_process(monkeypatch, capsys, "init", *args)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert (tmp_path / "exists.toml").read_text() == "# mine\n"
    assert database.read_bytes() == stored
    assert not (tmp_path / "study.toml").exists()


# ----------------------------------------------------------------------------------------------
# An installed wheel
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("setuptools") is None, reason="building the wheel needs setuptools"
)
def test_an_installed_wheel_ships_the_studies_and_finds_them_by_name(tmp_path):
    source = tmp_path / "source"  # a copy, so that the build leaves the checkout clean
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "studies", source / "studies")
    shutil.copytree(
        REPO / "nin_search",
        source / "nin_search",
        symlinks=True,  # nin_search/studies -> ../studies, as in the repository
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    built = subprocess.run(
        [*pip_wheel, "-q", "-w", str(tmp_path / "wheel"), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    installed = tmp_path / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(installed)
    assert {f"nin_search/studies/{name}.toml" for name in shipped_studies()} <= set(names)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    child = textwrap.dedent(
        """
        import sys

        sys.path.insert(0, sys.argv[1])  # the installed wheel, ahead of any other nin_search
        import nin_search
        from nin_search.config import default_config
        from nin_search.study_files import load_study_config
        from nin_search.errors import UserError

        assert nin_search.__file__.startswith(sys.argv[1]), nin_search.__file__
        assert load_study_config("digits") == default_config()
        try:
            load_study_config("cifar10-mini")
        except UserError as error:
            print(error)
        """
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", child, str(installed)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "shipped study 'cifar10-mini' needs its image folder" in result.stdout


@pytest.mark.parametrize("dataset", ["digits", "imagefolder"])
def test_the_init_file_says_what_each_key_left_out_becomes(dataset, tmp_path):
    """Deleting a key from the file ``init`` writes changes nothing, except for the keys its
    header names, which then take the value the header gives."""
    from nin_search.study_template import study_file_text

    (tmp_path / "pets" / "train" / "cat").mkdir(parents=True)
    text = study_file_text(
        dataset=dataset,
        root=None if dataset == "digits" else tmp_path / "pets",
        name="s",
        folder=tmp_path,
    )
    header = " ".join(line for line in text.splitlines() if line.startswith("# "))
    listed = header[header.index("except for") :]
    full = tomllib.loads(text)
    shown_values = StudyConfig.model_validate(full).model_dump(mode="json")
    if dataset == "digits":  # the embedded default study, but for its name
        assert StudyConfig.model_validate(full) == default_config().model_copy(
            update={"study": default_config().study.model_copy(update={"name": "s"})}
        )
    checked = changed = 0
    for path in _key_paths(full):
        trimmed = copy.deepcopy(full)
        *tables, key = path
        table = functools.reduce(dict.__getitem__, tables, trimmed)
        del table[key]
        name = ".".join(path)
        checked += 1
        try:
            dumped = StudyConfig.model_validate(trimmed).model_dump(mode="json")
        except ValidationError:  # a key the dataset needs (imagefolder's root): unset, refused
            assert f"{name} = unset" in listed, name
            changed += 1
            continue
        shown = functools.reduce(dict.__getitem__, path, shown_values)
        left_out = functools.reduce(dict.__getitem__, path, dumped)
        if left_out != shown:  # the header must say what it becomes
            value = "unset" if left_out is None else json.dumps(left_out)
            assert f"{name} = {value}" in listed, name
            changed += 1
        else:
            assert f"{name} = " not in listed, name
    assert checked >= 30  # every key of every table (39 for digits today)
    assert changed == (4 if dataset == "digits" else 9)  # name, and what the header lists


def _key_paths(table: dict, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every key of a TOML document, as a path; a range table { low, high } is one value."""
    paths = []
    for key, value in table.items():
        if isinstance(value, dict) and "low" not in value:
            paths += _key_paths(value, (*prefix, key))
        else:
            paths.append((*prefix, key))
    return paths
