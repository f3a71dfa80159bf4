"""End-to-end through the real CLI, read back with plain optuna.load_study."""

from __future__ import annotations

import gc
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from nin_search import ArchSpec, load_study_config, suggest_arch
from nin_search.cli import main

from .conftest import TINY_DIGITS, run_cli, write_study


def in_process(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Runs the CLI's entry point in this process (fast), returning (code, stdout, stderr).

    Afterwards the garbage is collected, as a process's exit would: the command's storage
    connections close, and the last one moves SQLite's write-ahead log into the database file.
    Otherwise that happens at some later collection, and a test that checks a later command
    leaves the file byte-identical would see the first command's own log land in it.
    """
    monkeypatch.setattr(sys, "argv", ["nin-search", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    gc.collect()
    captured = capsys.readouterr()
    return exited.value.code or 0, captured.out, captured.err


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> tuple[Path, Path]:
    """A 3-trial digits study written by the real CLI in a fresh process."""
    folder = tmp_path_factory.mktemp("search")
    study_file = write_study(folder)
    result = run_cli("optimize", str(study_file), cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder, study_file


def test_optimize_stores_trials_params_curves_and_user_attrs(searched):
    folder, study_file = searched
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{folder / 'nin_search.db'}")
    trials = study.get_trials()
    assert len(trials) == 3
    space = load_study_config(study_file).space
    for trial in trials:
        assert trial.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
        assert trial.params["s0_type"] in ("plain", "mlp")
        assert set(trial.user_attrs) >= {"arch", "arch_summary", "params", "macs", "seed"}
        spec = ArchSpec.from_dict(trial.user_attrs["arch"])
        assert spec.summary() == trial.user_attrs["arch_summary"]
        assert suggest_arch(optuna.trial.FixedTrial(trial.params), space) == spec
        assert trial.user_attrs["params"] > 0 and trial.user_attrs["macs"] > 0
        steps = sorted(trial.intermediate_values)
        assert steps == list(range(1, len(steps) + 1))
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert steps == [1, 2]
            assert trial.value == trial.intermediate_values[2]
            assert 0.1 < trial.value <= 1.0


def test_optimize_prints_the_best_trial_and_the_dashboard_command(searched):
    folder, _ = searched
    result = run_cli("best", "--json", cwd=folder)
    assert result.returncode == 0, result.stderr
    best = json.loads(result.stdout)
    assert best["study"] == "tiny"
    assert best["trials"]["complete"] + best["trials"]["pruned"] == 3
    assert best["best"]["arch_summary"]
    table = run_cli("best", cwd=folder)
    assert "val accuracy" in table.stdout and "architecture" in table.stdout


def test_rerunning_resumes_the_study_up_to_the_target(tmp_path):
    study_file = write_study(tmp_path)
    first = run_cli("optimize", str(study_file), "--n-trials", "2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    storage = f"sqlite:///{tmp_path / 'nin_search.db'}"
    before = optuna.load_study(study_name="tiny", storage=storage).get_trials()
    second = run_cli("optimize", str(study_file), "--n-trials", "4", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    after = optuna.load_study(study_name="tiny", storage=storage).get_trials()
    assert len(after) == 4
    assert [t.params for t in after[:2]] == [t.params for t in before]
    assert "2/4 trials finished" in second.stderr
    # The target is reached: the same command again runs nothing.
    third = run_cli("optimize", str(study_file), "--n-trials", "4", cwd=tmp_path)
    assert third.returncode == 0, third.stderr
    assert len(optuna.load_study(study_name="tiny", storage=storage).get_trials()) == 4
    lower = run_cli("optimize", str(study_file), "--n-trials", "3", cwd=tmp_path)
    assert lower.returncode == 0, lower.stderr
    assert "4 trials finished (target 3)" in lower.stderr and "4/3" not in lower.stderr


def test_a_forced_pruning_configuration_really_prunes(tmp_path, monkeypatch, capsys):
    # Random trials too: by default they train in full (the design-space sample).
    text = TINY_DIGITS.replace("n_trials = 3", "n_trials = 3\nprune_random_trials = true\n") + (
        "\n[optuna]\npruner = 'threshold'\npruner_options = { lower = 1.01 }\n"
    )
    study_file = write_study(tmp_path, text)
    code, _, err = in_process(
        monkeypatch, capsys, "optimize", str(study_file), "--storage", f"sqlite:///{tmp_path}/p.db"
    )
    assert code == 0, err
    trials = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path}/p.db").get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.PRUNED] * 3
    for trial in trials:
        assert list(trial.intermediate_values) == [1]  # stopped after the first epoch
        assert trial.user_attrs["prune_reason"] == "pruned by the pruner at epoch 1"


def checksum(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


BAD_INPUTS = [
    # (id, study file text or None for the default study, extra args, message)
    (
        "missing study file",
        "MISSING",
        [],
        "not found; pass a path to a study file, a shipped study's name",
    ),
    ("malformed toml", "[study\nname = 'x'", [], "not valid TOML"),
    ("unknown key", "[space]\nwidht = [16]", [], "unknown key 'space.widht'"),
    ("wrong type", "[train]\nepochs = 'many'", [], "train.epochs"),
    ("zero width", "[space]\nwidths = [0, 16]", [], "space.widths must be > 0, but got 0"),
    ("negative mlp width", "[space]\nmlp_widths = [-16]", [], "space.mlp_widths must be > 0"),
    ("empty choices", "[space]\nkernel_sizes = []", [], "space.kernel_sizes"),
    ("epochs 0", "[train]\nepochs = 0", [], "train.epochs"),
    ("unknown dataset", "[data]\ndataset = 'imagenet'", [], "data.dataset"),
    ("too many stages", "[space]\nnum_stages = 9", [], "allow at most 4 stages"),
    (
        "missing image folder",
        "[data]\ndataset = 'imagefolder'\nroot = 'no/such/dir'",
        [],
        "not found; set data.root",
    ),
    ("bad storage scheme", None, ["--storage", "mongodb://localhost/x"], "unsupported storage"),
    ("garbage storage url", None, ["--storage", "not a url"], "bad storage URL"),
    ("missing db folder", None, ["--storage", "sqlite:///no/such/dir/x.db"], "does not exist"),
    ("unknown device", None, ["--device", "tpu"], "unknown device 'tpu'"),
    ("threshold pruner without bound", "[optuna]\npruner = 'threshold'", [], "needs a bound"),
    ("bad pruner option", "[optuna]\npruner_options = { warmup = 3 }", [], "pruner_options"),
    (
        "a boolean as a width",
        "[space]\nwidths = [true]",
        [],
        "space.widths[0]: Input should be a valid integer, but got true",
    ),
    ("a fraction as epochs", "[train]\nepochs = 8.5", [], "train.epochs"),
    ("a boolean as dropout", "[space]\ndropout = true", [], "space.dropout"),
    (
        "a choice twice",
        "[space]\nwidths = [16, 32, 16]",
        [],
        "space.widths: lists 16 twice; list each choice once",
    ),
    ("empty width list", "[space]\nwidths = []", [], "space.widths is an empty list"),
    (
        "kernel larger than the images",
        "[space]\nkernel_sizes = [3, 99]",
        [],
        "space.kernel_sizes: a 99x99 kernel is larger than the 8x8 images",
    ),
    ("empty --storage", None, ["--storage", ""], "bad storage URL ''"),
    ("empty --device", None, ["--device", ""], "--device is empty"),
    ("--devices naming no device", None, ["--devices", ","], "--devices ',' has an empty entry"),
    ("--devices with an empty entry", None, ["--devices", "cpu,,"], "'cpu,,' has an empty entry"),
    ("--device and --devices", None, ["--device", "cpu", "--devices", "cpu"], "either --device"),
    ("a numbered CPU", None, ["--devices", "cpu,cpu:1"], "'cpu:1' does not exist: the cpu is"),
]


@pytest.mark.parametrize(
    ("text", "args", "message"), [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_input_gives_one_line_exit_2_and_no_database(
    tmp_path, monkeypatch, capsys, text, args, message
):
    monkeypatch.chdir(tmp_path)
    study_args = []
    if text == "MISSING":
        study_args = [str(tmp_path / "missing.toml")]
    elif text is not None:
        study_args = [str(write_study(tmp_path, text))]
    code, out, err = in_process(monkeypatch, capsys, "optimize", *study_args, *args)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err + out
    assert not list(tmp_path.glob("*.db"))


def test_best_on_a_missing_database_or_unknown_study_is_a_user_error(
    searched, tmp_path, monkeypatch, capsys
):
    code, _, err = in_process(
        monkeypatch, capsys, "best", "--storage", f"sqlite:///{tmp_path}/none.db"
    )
    assert code == 2 and "no database at" in err and err.count("\n") == 1
    assert not (tmp_path / "none.db").exists()
    folder, _ = searched
    database = folder / "nin_search.db"
    before = checksum(database)
    code, _, err = in_process(
        monkeypatch, capsys, "best", "--storage", f"sqlite:///{database}", "--study-name", "nope"
    )
    assert code == 2
    assert "no study named 'nope'" in err and "existing studies: tiny" in err
    assert checksum(database) == before


def test_resuming_with_another_search_space_is_refused_and_changes_nothing(
    searched, monkeypatch, capsys
):
    folder, _ = searched
    database = folder / "nin_search.db"
    changed = write_study(
        folder, TINY_DIGITS.replace("\nwidths = [8, 16]", "\nwidths = [8, 32]"), "changed.toml"
    )
    before = checksum(database)
    code, _, err = in_process(
        monkeypatch,
        capsys,
        "optimize",
        str(changed),
        "--storage",
        f"sqlite:///{database}",
        "--n-trials",
        "5",
    )
    assert code == 2
    assert "created with another search space (space.widths was [8, 16], now [8, 32])" in err
    assert checksum(database) == before


IMAGE_STUDY = """
[study]
name = "pets"
n_trials = 1

[space]
num_stages = 1
widths = [8]
mlp_widths = [8]

[data]
dataset = "imagefolder"
root = "images"
image_size = 8

[train]
epochs = 1
batch_size = [16]
device = "cpu"
"""


def _write_images(root: Path, name: str, count: int, *, level: int) -> None:
    from PIL import Image

    folder = root / "train" / name
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.new("RGB", (8, 8), (level + index, level, 255 - level)).save(
            folder / f"{name}-{level}-{index}.png"
        )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("a class", "classes ['cat', 'dog'] then, ['cat', 'dog', 'fox'] now"),
        ("images", "train images 16 then, 22 now; validation images 4 then, 6 now"),
    ],
)
def test_resuming_or_ablating_on_changed_data_is_refused_and_changes_nothing(
    tmp_path, monkeypatch, capsys, change, message
):
    # A study's trials must compare with each other, and its exports carry the recorded
    # classes and normalisation: new data belongs to a new study.
    for name, level in (("cat", 10), ("dog", 200)):
        _write_images(tmp_path / "images", name, 10, level=level)
    study_file = write_study(tmp_path, IMAGE_STUDY)
    monkeypatch.chdir(tmp_path)
    code, _, err = in_process(monkeypatch, capsys, "optimize", str(study_file), "-q")
    assert code == 0, err
    database = tmp_path / "nin_search.db"
    if change == "a class":
        _write_images(tmp_path / "images", "fox", 10, level=100)
    else:  # darker cats: the same classes, other channel means
        _write_images(tmp_path / "images", "cat", 8, level=0)
    before = checksum(database)
    code, _, err = in_process(
        monkeypatch, capsys, "optimize", str(study_file), "--n-trials", "2", "-q"
    )
    assert code == 2, err
    assert "study 'pets' was searched on other data (" in err and message in err, err
    assert "use a new --study-name for this data" in err and "Traceback" not in err
    assert checksum(database) == before
    # Its ablation would compare runs on other validation images than the search's.
    code, _, err = in_process(monkeypatch, capsys, "ablate", str(study_file), "--seeds", "1")
    assert code == 2, err
    assert "was searched on other data (" in err and message in err, err
    assert checksum(database) == before


def test_train_on_other_classes_is_one_line_with_no_progress_bar_before_it(
    tmp_path, monkeypatch, capsys
):
    for name, level in (("cat", 10), ("dog", 200)):
        _write_images(tmp_path / "images", name, 10, level=level)
        _write_images(tmp_path / "images" / "test", name, 2, level=level + 1)  # test/train/...
    for folder in (tmp_path / "images" / "test" / "train").iterdir():
        folder.rename(tmp_path / "images" / "test" / folder.name)
    (tmp_path / "images" / "test" / "train").rmdir()
    study_file = write_study(tmp_path, IMAGE_STUDY)
    monkeypatch.chdir(tmp_path)
    code, _, err = in_process(monkeypatch, capsys, "optimize", str(study_file), "-q")
    assert code == 0, err
    _write_images(tmp_path / "images", "fox", 10, level=100)
    code, _, err = in_process(monkeypatch, capsys, "train", "-o", "final", "--epochs", "1")
    assert code == 2, err
    assert err.strip().splitlines() == [err.strip()], err  # no "trial #0 0/1 eta" line first
    assert "the training data now has classes ['cat', 'dog', 'fox']" in err


def test_train_without_a_test_folder_says_to_add_one_before_it_starts(
    tmp_path, monkeypatch, capsys
):
    for name, level in (("cat", 10), ("dog", 200)):
        _write_images(tmp_path / "images", name, 10, level=level)
    (tmp_path / "images" / "val").mkdir()  # a user's own split, which nin-search does not read
    study_file = write_study(tmp_path, IMAGE_STUDY)
    monkeypatch.chdir(tmp_path)
    code, _, err = in_process(monkeypatch, capsys, "optimize", str(study_file), "-q")
    assert code == 0, err
    code, _, err = in_process(monkeypatch, capsys, "train", "-o", "final")
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err  # no progress bar before it
    assert "test' not found: `nin-search train` scores the retrained network on" in err
    assert "add a test/ folder" in err and "a val/ folder is not read" in err
    assert not (tmp_path / "final").exists()


def test_reading_a_study_leaves_no_sqlite_side_files_and_no_changed_byte(searched, tmp_path):
    import sqlite3

    folder, _ = searched
    database = tmp_path / "copy.db"
    database.write_bytes((folder / "nin_search.db").read_bytes())
    storage = f"sqlite:///{database}"
    side_files = [tmp_path / "copy.db-wal", tmp_path / "copy.db-shm"]
    before = checksum(database)
    for command in (["best"], ["trials"], ["best", "--study-name", "nope"]):
        result = run_cli(*command, "--storage", storage, cwd=tmp_path)
        assert result.returncode in (0, 2), result.stderr
        assert not [path for path in side_files if path.exists()], command
        assert checksum(database) == before
    # While another process has the database open, its side files are its own: kept.
    writer = sqlite3.connect(database)
    try:
        writer.execute("SELECT count(*) FROM trials").fetchall()
        assert all(path.exists() for path in side_files)
        assert run_cli("trials", "--storage", storage, cwd=tmp_path).returncode == 0
        assert all(path.exists() for path in side_files)
        assert writer.execute("SELECT count(*) FROM trials").fetchall() == [(3,)]
    finally:
        writer.close()
    assert checksum(database) == before


def test_a_trial_added_from_plain_optuna_is_never_the_best_network(searched, tmp_path):
    folder, _ = searched
    database = tmp_path / "copy.db"
    database.write_bytes((folder / "nin_search.db").read_bytes())
    storage = f"sqlite:///{database}"
    study = optuna.load_study(study_name="tiny", storage=storage)
    searched_best = study.best_trial
    foreign = optuna.trial.create_trial(
        params=searched_best.params, distributions=searched_best.distributions, value=1.2305
    )
    study.add_trial(foreign)  # no architecture: nothing nin-search could export or train
    result = run_cli("best", "--json", "--storage", storage, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["best"]["number"] == searched_best.number
    result = run_cli("export", "-o", "m.py", "--storage", storage, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(rf"^Trial: +{searched_best.number}$", (tmp_path / "m.py").read_text(), re.M)
    # The file exists now: replaced only when asked to.
    (tmp_path / "m.py").write_text("# edited by hand\n")
    result = run_cli("export", "-o", "m.py", "--storage", storage, cwd=tmp_path)
    assert result.returncode == 2 and "exists; pass --force" in result.stderr
    assert (tmp_path / "m.py").read_text() == "# edited by hand\n"
    result = run_cli("export", "-o", "m.py", "--force", "--storage", storage, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(rf"^Trial: +{searched_best.number}$", (tmp_path / "m.py").read_text(), re.M)
    # To a pipe, and to a file through the shell's redirect: the source alone, whole.
    result = run_cli("export", "-o", "/dev/stdout", "--storage", storage, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (tmp_path / "m.py").read_text().replace(
        "from m import", "from model import"
    )
    with open(tmp_path / "redirected.py", "w") as redirected:
        code = subprocess.run(
            [
                sys.executable,
                "-m",
                "nin_search",
                "export",
                "-o",
                "/dev/stdout",
                "--storage",
                storage,
            ],
            cwd=tmp_path,
            stdout=redirected,
            timeout=600,
        ).returncode
    assert code == 0 and (tmp_path / "redirected.py").read_text() == result.stdout
    result = run_cli("export", "--trial", "3", "-o", "x.py", "--storage", storage, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "trial 3 has no nin-search architecture (added from plain Optuna" in result.stderr


def test_reading_commands_refuse_an_ablation_study_by_name_and_say_which_to_pass(
    searched, tmp_path
):
    folder, _ = searched
    database = tmp_path / "copy.db"
    database.write_bytes((folder / "nin_search.db").read_bytes())
    storage = f"sqlite:///{database}"
    optuna.create_study(storage=storage, study_name="tiny:ablation")
    for command in (["best"], ["trials"], ["report", "-o", "r.html"], ["ablate"]):
        result = run_cli(*command, "--storage", storage, "--study-name", "tiny:ablation",
                         cwd=tmp_path)  # fmt: skip
        assert result.returncode == 2, (command, result.stderr)
        assert "holds the ablation runs of study 'tiny'; pass --study-name 'tiny'" in result.stderr
    optuna.delete_study(study_name="tiny", storage=storage)  # only the companion is left
    result = run_cli("best", "--storage", storage, cwd=tmp_path)
    assert result.returncode == 2
    assert "no searched study, only ablation runs (tiny:ablation)" in result.stderr


def test_console_script_and_module_entry_points_both_work(tmp_path):
    import shutil
    import subprocess

    script = Path(sys.executable).parent / "nin-search"
    command = [str(script)] if script.exists() else [shutil.which("nin-search")]
    result = subprocess.run([*command, "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0 and "optimize" in result.stdout
    assert run_cli("optimize", "--help", cwd=tmp_path).returncode == 0


def test_export_round_trip_reproduces_the_trial_outputs_and_its_accuracy(searched, tmp_path):
    import importlib.util

    import torch

    from nin_search import StudyConfig, build_model
    from nin_search.data import load_search_data
    from nin_search.train import evaluate
    from nin_search.trials import recorded_config
    from nin_search.weights import load_weights

    folder, _ = searched
    result = run_cli(
        "export",
        "-o",
        str(tmp_path / "best.py"),
        "--weights",
        str(tmp_path / "best.safetensors"),
        cwd=folder,
    )
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{folder / 'nin_search.db'}")
    best = study.best_trial
    module_spec = importlib.util.spec_from_file_location("best_export", tmp_path / "best.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    exported = module.TinyNet().eval()
    state = load_weights(tmp_path / "best.safetensors")
    exported.load_state_dict(state, strict=True)
    reference = build_model(
        ArchSpec.from_dict(best.user_attrs["arch"]), in_channels=1, num_classes=10
    )
    reference.load_state_dict(state, strict=True)
    reference.eval()
    config = StudyConfig.model_validate(recorded_config(study))
    data = load_search_data(config.data, device="cpu")
    with torch.no_grad():
        difference = (exported(data.val.images) - reference(data.val.images)).abs().max().item()
    assert difference <= 1e-6
    assert evaluate(exported, data.val) == best.value


def test_export_refuses_missing_trials_and_weights(searched, tmp_path, monkeypatch, capsys):
    folder, _ = searched
    storage = f"sqlite:///{folder / 'nin_search.db'}"
    before = checksum(folder / "nin_search.db")
    code, _, err = in_process(
        monkeypatch,
        capsys,
        "export",
        "--storage",
        storage,
        "-o",
        str(tmp_path / "m.py"),
        "--trial",
        "42",
    )
    assert code == 2 and "trial 42 is out of range" in err
    code, _, err = in_process(
        monkeypatch, capsys, "export", "--storage", storage, "-o", str(tmp_path / "no" / "m.py")
    )
    assert code == 2 and "does not exist" in err
    assert checksum(folder / "nin_search.db") == before
    assert not (tmp_path / "m.py").exists()


def test_report_writes_a_self_contained_html_and_prints_the_verdict(searched, tmp_path):
    folder, _ = searched
    result = run_cli("report", "-o", str(tmp_path / "report.html"), cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "stage 0:" in result.stdout
    html = (tmp_path / "report.html").read_text()
    assert "plotly.js v" in html and "<script src=" not in html
    assert "stage 0" in html


def studies_in_sqlite(folder: Path, effects: dict[str, list[float]]) -> str:
    """A SQLite storage with one small searched study per name and its companion ablation
    study holding flipped stage-0 differences ``effects[name]`` (points)."""
    from nin_search import records

    from .test_analysis import ablation_study_of, paired, searched_trial

    url = f"sqlite:///{folder / 'pooled.db'}"
    storage = optuna.storages.RDBStorage(url)
    for name, differences in effects.items():
        trials = [
            searched_trial(kind, value, params=1e4)
            for kind, value in (("plain", 0.70), ("plain", 0.74), ("mlp", 0.73), ("mlp", 0.77))
        ]
        ablation_study_of(trials, storage=storage, name=name)
        flipped = paired(0, 0, ("plain", "plain"), ("mlp", "plain"), differences)
        ablation_study_of(flipped, storage=storage, name=records.ablation_study_name(name))
    return url


def test_report_prints_the_answer_first_and_skips_the_companion_study(
    tmp_path, monkeypatch, capsys
):
    storage = studies_in_sqlite(tmp_path, {"cifar": [2.0, 2.2, 1.8]})
    output = tmp_path / "report.html"
    code, out, err = in_process(
        monkeypatch, capsys, "report", "--storage", storage, "-o", str(output)
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Answer: does MLP conv beat plain conv in study 'cifar'?")
    assert "ablation of trial #0: flipped: MLP conv helps (+2.0 points, 95% CI +1.5..+2.5" in out
    assert out.index("Answer:") < out.index("Naive per-stage comparison")
    assert "<h2>Answer</h2>" in output.read_text(encoding="utf-8")


def test_report_pools_several_studies_into_a_consensus(tmp_path, monkeypatch, capsys):
    storage = studies_in_sqlite(
        tmp_path, {"cifar": [2.0, 2.2, 1.8], "svhn": [2.0, 1.8, 2.2], "mnist": [-3.0, -3.1, -2.9]}
    )
    output = tmp_path / "consensus.html"
    args = ("report", "--storage", storage, "-o", str(output))
    code, out, err = in_process(
        monkeypatch, capsys, *args, "--study-name", "cifar", "--study-name", "svhn"
    )
    assert code == 0, err
    assert "  stage 0: the studies agree (I²=0%): pooled +2.0 points" in out
    assert out.count("Answer: does MLP conv beat plain conv") == 2
    assert "the studies agree" in output.read_text(encoding="utf-8")

    code, out, err = in_process(monkeypatch, capsys, *args, "--all")
    assert code == 0, err
    assert "  stage 0: they disagree (I²=" in out
    assert "mnist (trial #0): -3.0 points" in out
    assert "ablation" not in [
        line.split("'")[1] for line in out.splitlines() if "in study '" in line
    ]

    code, _, err = in_process(monkeypatch, capsys, *args, "--all", "--study-name", "cifar")
    assert code == 2 and "not both" in err
    code, _, err = in_process(
        monkeypatch, capsys, "report", "--storage", storage, "-o", str(output)
    )
    assert code == 2 and "searched studies: cifar, svhn, mnist" in err


def test_train_retrains_on_train_plus_val_and_scores_the_test_split(searched, tmp_path):
    import importlib.util

    from nin_search.weights import load_weights

    folder, _ = searched
    out = tmp_path / "final"
    result = run_cli("train", "-o", str(out), "--epochs", "3", "--schedule", "step", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "retrained for 3 epochs on 1437 images" in result.stdout
    history = json.loads((out / "history.json").read_text())
    assert history["num_train"] == 1437 and history["num_test"] == 360  # digits: 1,797 images
    assert [h["epoch"] for h in history["history"]] == [1, 2, 3]
    assert history["test_accuracy"] == history["history"][-1]["test_accuracy"]
    # The test split is scored once, after the last epoch: no curve to pick an epoch from.
    assert [h["test_accuracy"] for h in history["history"][:-1]] == [None, None]
    assert "test" not in result.stderr.replace("test accuracy", "")  # no test in the bar
    assert all(0.0 <= h["train_accuracy"] <= 1.0 for h in history["history"])
    assert history["schedule"] == "step" and history["epochs"] == 3
    module_spec = importlib.util.spec_from_file_location("final_model", out / "model.py")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    module.TinyNet().load_state_dict(load_weights(out / "weights.safetensors"), strict=True)
