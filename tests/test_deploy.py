"""The exported model on real image files: the truth test of export, train, predict and ONNX.

For digits and for a small copy of cifar10-mini (with test images of other sizes than
``image_size``, so resizing matters), a study is searched, its best trial retrained with
``nin-search train`` and exported. Then an interpreter in which ``nin_search`` cannot be
imported at all (``python -I -S``: no PYTHONPATH, no ``.pth`` files, so no editable install
either; only the site-packages folders are on ``sys.path``) decodes the raw test image files
with Pillow, runs the exported ``preprocess`` and the exported class, and must get exactly the
number of correct images that ``train`` reported on the test split, image by image the same
predictions as nin-search's own data path.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import os
import shutil
import site
import sqlite3
import struct
import subprocess
import sys
import textwrap
import zlib
from contextlib import closing, redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from PIL import Image

from nin_search import StudyConfig, build_model
from nin_search.cli import main
from nin_search.data import load_final_data
from nin_search.datasets import DIGITS_TEST_FRACTION, DIGITS_TEST_SEED
from nin_search.export import info_from_metadata
from nin_search.preprocessing import Preprocessing
from nin_search.spec import ArchSpec
from nin_search.trials import recorded_config
from nin_search.weights import load_weights, read_metadata

from .conftest import CIFAR10_MINI, TINY_DIGITS, write_study

ONNX_TOLERANCE = 1e-4  # max abs difference of logits, onnxruntime vs PyTorch
CIFAR_CLASSES = ("airplane", "cat", "ship")
CIFAR_TRAIN_PER_CLASS = 40
CIFAR_TEST_PER_CLASS = 12  # a third as they are (32x32), a third 40x40, a third 24x24

DIGITS_STUDY = TINY_DIGITS.replace("n_trials = 3", "n_trials = 1\nbaselines = false")
CIFAR_STUDY = """
[study]
name = "mini"
seed = 0
n_trials = 1
baselines = false

[data]
dataset = "imagefolder"
root = "data"
image_size = 32
val_fraction = 0.25

[space]
num_stages = 1
kernel_sizes = [3]
widths = [8]
mlp_widths = [8]

[train]
epochs = 2
batch_size = [32]
device = "cpu"
"""


def cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    """The CLI's entry point in this process (no interpreter start): (code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        patch.setattr(sys, "argv", ["nin-search", *args])
        patch.setenv("COLUMNS", "200")
        with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as exited:
            main()
    return exited.value.code or 0, out.getvalue(), err.getvalue()


def run_ok(*args: str, cwd: Path) -> str:
    code, out, err = cli(*args, cwd=cwd)
    assert code == 0, err
    return out


def storage(folder: Path) -> str:
    return f"sqlite:///{folder / 'nin_search.db'}"


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database in WAL mode (its log included)."""
    with closing(sqlite3.connect(source)) as reader, closing(sqlite3.connect(target)) as writer:
        reader.backup(writer)


# ----------------------------------------------------------------------------------------------
# The raw test images, as a user has them
# ----------------------------------------------------------------------------------------------


def digits_test_files(folder: Path) -> dict[str, int]:
    """The held-out digits as 8-bit grey PNG files in ImageFolder layout, and as raw arrays.

    "Raw" for digits: scikit-learn's float grey levels 0..16 (``images.npy``, the exported
    ``INPUT_MAX``); an image file holds them as 8-bit grey (0..255: level * 255 / 16, rounded
    the way any image library rounds). Returns relative path -> position in the test split.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    _, test_index = train_test_split(
        np.arange(len(digits.images)),
        test_size=DIGITS_TEST_FRACTION,
        stratify=digits.target,
        random_state=DIGITS_TEST_SEED,
    )
    order = {}
    for position, index in enumerate(np.sort(test_index)):
        relative = f"{digits.target[index]}/{position:04d}.png"
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        grey = np.round(digits.images[index] * (255 / 16)).astype(np.uint8)
        Image.fromarray(grey, mode="L").save(folder / relative)
        np.save(folder / relative.replace(".png", ".npy"), digits.images[index])
        order[relative] = position
    return order


def cifar_folder(folder: Path) -> None:
    """train/ and test/ with a few real CIFAR-10 images per class; 2/3 of test/ resized."""
    for name in CIFAR_CLASSES:
        sources = sorted((CIFAR10_MINI / "train" / name).glob("*.jpg"))[:CIFAR_TRAIN_PER_CLASS]
        (folder / "train" / name).mkdir(parents=True)
        for source in sources:
            shutil.copy(source, folder / "train" / name / source.name)
        tests = sorted((CIFAR10_MINI / "test" / name).glob("*.jpg"))[:CIFAR_TEST_PER_CLASS]
        (folder / "test" / name).mkdir(parents=True)
        for index, source in enumerate(tests):
            if index % 3 == 0:
                shutil.copy(source, folder / "test" / name / source.name)
                continue
            size = 40 if index % 3 == 1 else 24
            with Image.open(source) as image:
                resized = image.resize((size, size), Image.Resampling.BICUBIC)
            resized.save(folder / "test" / name / f"{source.stem}-{size}.png")


# ----------------------------------------------------------------------------------------------
# The two runs: search, export, train
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("deploy-digits")
    run_ok("optimize", str(write_study(folder, DIGITS_STUDY)), cwd=folder)
    run_ok(
        "export",
        "-o",
        "model.py",
        "--weights",
        "model.safetensors",
        "--onnx",
        "model.onnx",
        cwd=folder,
    )
    run_ok("train", "-o", "final", "--epochs", "2", "--onnx", "final.onnx", cwd=folder)
    return folder


@pytest.fixture(scope="module")
def cifar_run(tmp_path_factory) -> Path:
    if not CIFAR10_MINI.is_dir():
        pytest.skip(f"needs the cifar10-mini images at {CIFAR10_MINI}")
    folder = tmp_path_factory.mktemp("deploy-cifar")
    cifar_folder(folder / "data")
    run_ok("optimize", str(write_study(folder, CIFAR_STUDY)), cwd=folder)
    run_ok("train", "-o", "final", "--epochs", "2", cwd=folder)
    return folder


# ----------------------------------------------------------------------------------------------
# The truth test, in an interpreter without nin_search
# ----------------------------------------------------------------------------------------------

# Runs with `python -I -S`: argv[1] holds the site-packages folders (added without their .pth
# files, so an editable install of nin_search is not found either).
CLASSIFY_FILES = textwrap.dedent(
    """
    import contextlib, importlib.util, io, json, os, sys
    from pathlib import Path

    sys.path.extend(sys.argv[1].split(os.pathsep))
    assert importlib.util.find_spec("nin_search") is None, "nin_search is importable"
    folder, images = Path(sys.argv[2]), Path(sys.argv[3])
    sys.path.insert(0, str(folder))  # `from model import ...` in the docstring example

    import numpy as np
    import torch
    from PIL import Image
    from safetensors.torch import load_file

    import model as exported

    torch.set_num_threads(1)  # one small image at a time: more threads only cost here

    (class_name,) = [name for name in exported.__all__ if name[0].isupper() and not name.isupper()]
    network = getattr(exported, class_name)()
    network.load_state_dict(load_file(str(folder / "weights.safetensors")), strict=True)
    network.eval()
    predictions, raw_predictions = {}, {}
    files = sorted(path for path in images.rglob("*") if path.suffix in (".png", ".jpg"))
    with torch.no_grad():
        for path in files:
            with Image.open(path) as image:  # decoded by Pillow, preprocessed by the export
                batch = exported.preprocess(image)
            assert batch.shape == (1, exported.CHANNELS, exported.IMAGE_SIZE, exported.IMAGE_SIZE)
            relative = path.relative_to(images).as_posix()
            predictions[relative] = exported.CLASSES[int(network(batch).argmax())]
            raw = path.with_suffix(".npy")
            if raw.exists():  # the same image as the dataset's raw pixels (0..INPUT_MAX)
                pixels = torch.from_numpy(np.load(raw))
                logits = network(exported.preprocess(pixels))
                raw_predictions[relative] = exported.CLASSES[int(logits.argmax())]
    correct = sum(guess == relative.split("/")[0] for relative, guess in predictions.items())

    # The docstring's example, as written (beside the weights), on the first file.
    example = exported.__doc__.split("::", 1)[1]
    example = "\\n".join(line[4:] for line in example.splitlines())
    os.chdir(folder)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(example.replace('"image.png"', repr(str(files[0]))), {})
    assert "nin_search" not in sys.modules
    print(json.dumps({
        "correct": correct,
        "total": len(predictions),
        "predictions": predictions,
        "raw_predictions": raw_predictions,
        "example_printed": printed.getvalue().split()[0],
        "first": files[0].relative_to(images).as_posix(),
    }))
    """
)


def classify_without_nin_search(model_folder: Path, images: Path, cwd: Path) -> dict:
    folders = os.pathsep.join(entry for entry in site.getsitepackages() if Path(entry).is_dir())
    isolated = [sys.executable, "-I", "-S", "-c", CLASSIFY_FILES]
    result = subprocess.run(
        [*isolated, folders, str(model_folder), str(images)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def reference_predictions(folder: Path) -> list[str]:
    """What nin-search's own data path feeds the retrained network, in test-split order."""
    history = json.loads((folder / "final" / "history.json").read_text())
    study = optuna.load_study(study_name=history["study"], storage=storage(folder))
    config = StudyConfig.model_validate(recorded_config(study))
    _, test, info = load_final_data(config.data, device="cpu")
    assert info["preprocessing"].to_dict() == history["preprocessing"]
    model = build_model(
        ArchSpec.from_dict(history["arch"]),
        in_channels=info["in_channels"],
        num_classes=info["num_classes"],
    )
    model.load_state_dict(load_weights(folder / "final" / "weights.safetensors"))
    with torch.no_grad():
        predicted = model.eval()(test.images).argmax(dim=1).tolist()
    return [history["classes"][index] for index in predicted]


@pytest.mark.slow
def test_exported_model_on_raw_digit_files_matches_train_s_test_accuracy(digits_run, tmp_path):
    images = tmp_path / "test-digits"
    order = digits_test_files(images)
    history = json.loads((digits_run / "final" / "history.json").read_text())
    seen = classify_without_nin_search(digits_run / "final", images, tmp_path)

    assert seen["total"] == history["num_test"] == 360
    assert seen["correct"] == history["test_correct"]
    assert seen["correct"] == round(history["test_accuracy"] * history["num_test"])
    assert seen["raw_predictions"] == seen["predictions"]  # 0..16 arrays: the same inputs
    reference = reference_predictions(digits_run)
    assert {path: reference[position] for path, position in order.items()} == seen["predictions"]
    assert seen["example_printed"] == seen["predictions"][seen["first"]]


@pytest.mark.slow
def test_exported_model_on_resized_cifar_files_matches_train_s_test_accuracy(cifar_run, tmp_path):
    images = cifar_run / "data" / "test"
    sizes = set()
    for path in images.rglob("*.*"):
        with Image.open(path) as image:
            sizes.add(image.size)
    assert sizes == {(32, 32), (40, 40), (24, 24)}  # resizing is exercised
    history = json.loads((cifar_run / "final" / "history.json").read_text())
    seen = classify_without_nin_search(cifar_run / "final", images, tmp_path)

    assert seen["total"] == history["num_test"] == len(CIFAR_CLASSES) * CIFAR_TEST_PER_CLASS
    assert seen["correct"] == history["test_correct"]
    reference = reference_predictions(cifar_run)
    files = sorted(images.rglob("*.*"))  # ImageFolder's order: by class, then by name
    assert [seen["predictions"][p.relative_to(images).as_posix()] for p in files] == reference
    assert seen["example_printed"] == seen["predictions"][seen["first"]]


@pytest.mark.slow
def test_predict_eval_on_the_test_folder_agrees_with_train(cifar_run):
    history = json.loads((cifar_run / "final" / "history.json").read_text())
    out = run_ok("predict", "--model", "final", "--eval", "data/test", "--json", cwd=cifar_run)
    evaluation = json.loads(out)["eval"]
    assert evaluation["correct"] == history["test_correct"]
    assert evaluation["total"] == history["num_test"]
    assert [row["class"] for row in evaluation["per_class"]] == list(CIFAR_CLASSES)
    assert sum(row["correct"] for row in evaluation["per_class"]) == evaluation["correct"]
    confused = sum(item["count"] for item in evaluation["confusions"])
    assert confused <= evaluation["total"] - evaluation["correct"]
    text = run_ok("predict", "--model", "final", "--eval", "data/test", cwd=cifar_run)
    correct, total = history["test_correct"], history["num_test"]
    assert f"({correct}/{total}) on data/test" in text
    assert "per class" in text


# ----------------------------------------------------------------------------------------------
# What the exported files carry
# ----------------------------------------------------------------------------------------------


def study_of(folder: Path) -> optuna.Study:
    return optuna.load_study(study_name="tiny", storage=storage(folder))


def test_every_written_file_has_normal_permissions(digits_run):
    for name in ("model.py", "model.safetensors", "model.onnx"):
        assert (digits_run / name).stat().st_mode & 0o777 == 0o644, name
    for name in ("model.py", "weights.safetensors", "history.json"):
        assert (digits_run / "final" / name).stat().st_mode & 0o777 == 0o644, name
    assert not list(digits_run.glob(".*partial")) and not list(digits_run.glob("final/.*"))


def test_the_weights_file_alone_says_what_it_is(digits_run):
    study = study_of(digits_run)
    best = study.best_trial
    recorded = Preprocessing.from_dict(study.user_attrs["data"]["preprocessing"])
    spec, info = info_from_metadata(read_metadata(digits_run / "model.safetensors"))
    assert spec == ArchSpec.from_dict(best.user_attrs["arch"])
    assert info.preprocessing == recorded
    assert info.preprocessing.input_max == 16.0 and info.preprocessing.image_size == 8
    assert info.class_names == tuple(str(digit) for digit in range(10))
    assert (info.study_name, info.trial_number, info.val_accuracy) == (
        "tiny",
        best.number,
        best.value,
    )
    assert (info.seed, info.precision) == (best.user_attrs["seed"], best.user_attrs["precision"])
    header = (digits_run / "model.py").read_text(encoding="utf-8")
    assert f"Trained with:        seed {info.seed}, {info.precision} (this file runs float32)" in (
        header
    )
    history = json.loads((digits_run / "final" / "history.json").read_text())
    _, final = info_from_metadata(read_metadata(digits_run / "final" / "weights.safetensors"))
    assert final.test_accuracy == history["test_accuracy"]
    assert (final.seed, final.precision) == (history["seed"], history["precision"])
    assert history["precision"] in ("fp32", "bf16")
    assert final.preprocessing == Preprocessing.from_dict(history["preprocessing"])
    assert final.preprocessing != recorded  # train's statistics are of train + validation
    # The retrained files say how they were trained, which the search's do not need to.
    training = (
        f"retrained from scratch on train + validation ({history['num_train']} images), "
        f"{history['epochs']} epochs, {history['schedule']} schedule; the test split "
        f"({history['num_test']} images) scored once, after the last epoch, in fp32"
    )
    assert final.training == training and info.training is None
    final_module = _import(digits_run / "final" / "model.py", "final_digits")
    assert final_module.META["training"] == training
    assert "Training:            retrained from scratch on train + validation" in (
        final_module.__doc__
    )


def test_the_exported_file_s_constants_are_the_recorded_preprocessing(digits_run):
    module = _import(digits_run / "model.py", "exported_digits")
    recorded = study_of(digits_run).user_attrs["data"]["preprocessing"]
    assert Preprocessing(
        channels=module.CHANNELS,
        image_size=module.IMAGE_SIZE,
        mean=module.MEAN,
        std=module.STD,
        input_max=module.INPUT_MAX,
        resize=module.RESIZE,
    ) == Preprocessing.from_dict(recorded)
    assert module.CLASSES == ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
    source = (digits_run / "model.py").read_text()
    from nin_search import transforms

    for name in transforms.__all__:  # carried verbatim: one definition of the preprocessing
        segment = ast.get_source_segment(
            Path(transforms.__file__).read_text(),
            next(
                node
                for node in ast.parse(Path(transforms.__file__).read_text()).body
                if isinstance(node, ast.FunctionDef) and node.name == name
            ),
        )
        assert segment in source, name


def _import(path: Path, name: str):
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _network(folder: Path, module_name: str):
    module = _import(folder / "model.py", module_name)
    (class_name,) = [n for n in module.__all__ if n[0].isupper() and not n.isupper()]
    network = getattr(module, class_name)()
    network.load_state_dict(load_weights(folder / "model.safetensors"), strict=True)
    return module, network.eval()


def test_the_exported_search_model_scores_the_trial_s_accuracy_on_validation_files(
    digits_run, tmp_path
):
    """export's model.py + weights, on the validation images as PNG files: the trial's value."""
    from nin_search.data import split_indices
    from nin_search.datasets import read_dataset

    study = study_of(digits_run)
    config = StudyConfig.model_validate(recorded_config(study))
    tensors = read_dataset(config.data, split="train")
    _, val_index = split_indices(tensors.labels, val_fraction=0.2, seed=0)
    module, network = _network(digits_run, "exported_search")
    batches = []
    for index in val_index.tolist():
        path = tmp_path / f"{index}.png"
        Image.fromarray(tensors.images[index, 0].numpy(), mode="L").save(path)
        with Image.open(path) as image:
            batches.append(module.preprocess(image))
    # Evaluated in the precision the trial was (bf16 autocast on a CPU with native bf16).
    from nin_search.records import PRECISION

    bf16 = study.best_trial.user_attrs[PRECISION] == "bf16"
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        predicted = network(torch.cat(batches)).argmax(dim=1)
    correct = int((predicted == tensors.labels[val_index]).sum())
    assert correct / len(val_index) == study.best_trial.value


def test_onnx_gives_pytorch_s_logits_for_any_batch_and_carries_the_preprocessing(digits_run):
    import onnx
    import onnxruntime

    module, network = _network(digits_run, "exported_onnx")
    session = onnxruntime.InferenceSession(
        str(digits_run / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    (graph_input,) = session.get_inputs()
    assert graph_input.name == "images" and not isinstance(graph_input.shape[0], int)
    generator = torch.Generator().manual_seed(0)
    for batch in (1, 7, 64):
        pixels = torch.randint(0, 256, (batch, 1, 8, 8), dtype=torch.uint8, generator=generator)
        images = module.preprocess(pixels)
        with torch.no_grad():
            expected = network(images).numpy()
        (actual,) = session.run(["logits"], {"images": images.numpy()})
        assert actual.shape == (batch, 10)
        assert np.abs(actual - expected).max() <= ONNX_TOLERANCE
    metadata = {
        prop.key: prop.value for prop in onnx.load(digits_run / "model.onnx").metadata_props
    }
    assert metadata == read_metadata(digits_run / "model.safetensors")
    assert session.get_modelmeta().custom_metadata_map == metadata
    facts = json.loads(metadata["preprocessing"])
    assert facts == study_of(digits_run).user_attrs["data"]["preprocessing"]


def test_train_writes_the_retrained_network_as_onnx_with_the_weights_metadata(digits_run):
    import onnx
    import onnxruntime

    module = _import(digits_run / "final" / "model.py", "retrained_onnx")
    (class_name,) = [n for n in module.__all__ if n[0].isupper() and not n.isupper()]
    network = getattr(module, class_name)()
    weights = digits_run / "final" / "weights.safetensors"
    network.load_state_dict(load_weights(weights), strict=True)
    session = onnxruntime.InferenceSession(
        str(digits_run / "final.onnx"), providers=["CPUExecutionProvider"]
    )
    pixels = torch.randint(0, 256, (9, 1, 8, 8), dtype=torch.uint8)
    images = module.preprocess(pixels)
    with torch.no_grad():
        expected = network.eval()(images).numpy()
    (actual,) = session.run(["logits"], {"images": images.numpy()})
    assert np.abs(actual - expected).max() <= ONNX_TOLERANCE
    metadata = {
        prop.key: prop.value for prop in onnx.load(digits_run / "final.onnx").metadata_props
    }
    assert metadata == read_metadata(weights)
    assert "test_accuracy" in metadata  # the retrained network's facts, not the search trial's


def test_the_exported_module_passes_torch_export_with_a_dynamic_batch(digits_run):
    _, network = _network(digits_run, "exported_torch_export")
    batch = torch.export.Dim("batch")
    sample = torch.randn(2, 1, 8, 8)
    program = torch.export.export(network, (sample,), dynamic_shapes=({0: batch},))
    images = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(program.module()(images), network(images), atol=1e-6)


# ----------------------------------------------------------------------------------------------
# nin-search predict
# ----------------------------------------------------------------------------------------------


def test_predict_classifies_files_from_every_source_alike(digits_run, tmp_path):
    order = digits_test_files(tmp_path / "digits")
    files = [str(tmp_path / "digits" / relative) for relative in list(order)[:4]]
    sources = {
        "trial": [],
        "exported": ["--model", "model.py", "--weights", "model.safetensors"],
        "weights alone": ["--weights", "model.safetensors"],
    }
    results = {}
    for name, options in sources.items():
        out = run_ok("predict", *files, *options, "--top-k", "2", "--json", cwd=digits_run)
        results[name] = json.loads(out)["predictions"]
    assert results["trial"] == results["exported"] == results["weights alone"]
    for prediction in results["trial"]:
        top = prediction["top"]
        assert len(top) == 2 and top[0]["probability"] >= top[1]["probability"]
    text = run_ok("predict", files[0], "--model", "final", cwd=digits_run)
    assert text.startswith(f"{files[0]}: ") and text.count("%") == 3


def test_exporting_a_pruned_trial_says_its_accuracy_is_an_early_one(digits_run, tmp_path):
    copy_database(digits_run / "nin_search.db", tmp_path / "nin_search.db")
    study = optuna.load_study(study_name=None, storage=storage(tmp_path))
    (done,) = study.get_trials()
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.PRUNED,
            params=done.params,
            distributions=done.distributions,
            user_attrs=done.user_attrs,
            intermediate_values={1: 0.5},
            value=0.5,  # as Optuna records a pruned trial: its last reported value
        )
    )
    run_ok("export", "--trial", "1", "-o", "early.py", cwd=tmp_path)
    epochs = recorded_config(study)["train"]["epochs"]
    header = (tmp_path / "early.py").read_text(encoding="utf-8")
    assert f"Validation accuracy: 50.00% (pruned after epoch 1 of {epochs})" in header
    run_ok("export", "--trial", "0", "-o", "done.py", cwd=tmp_path)
    assert "pruned" not in (tmp_path / "done.py").read_text(encoding="utf-8")
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL,
            params=done.params,
            distributions=done.distributions,
            user_attrs={**done.user_attrs, "fail_reason": "NonFiniteLossError: loss nan"},
        )
    )
    failed = len(study.trials) - 1
    run_ok("export", "--trial", str(failed), "-o", "failed.py", cwd=tmp_path)
    header = (tmp_path / "failed.py").read_text(encoding="utf-8")
    assert "Validation accuracy: none (the trial failed: NonFiniteLossError: loss nan)" in header


def test_predict_takes_a_folder_of_images(digits_run, tmp_path):
    digits_test_files(tmp_path / "digits")
    images = len(list((tmp_path / "digits" / "3").glob("*.png")))
    # Hidden files and folders are not images, for predict as for training: a notebook's
    # checkpoint copy, and macOS's "._" resource file (not even an image).
    (tmp_path / "digits" / "3" / ".ipynb_checkpoints").mkdir()
    shutil.copy(
        next((tmp_path / "digits" / "3").glob("*.png")),
        tmp_path / "digits" / "3" / ".ipynb_checkpoints" / "copy.png",
    )
    (tmp_path / "digits" / "3" / "._0000.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
    (tmp_path / "digits" / ".hidden-class").mkdir()
    out = run_ok("predict", str(tmp_path / "digits" / "3"), "--json", cwd=digits_run)
    predictions = json.loads(out)["predictions"]
    assert len(predictions) == images
    # Links are followed, as training follows them: a folder of links to the images' folder.
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "threes").symlink_to(tmp_path / "digits" / "3")
    (tmp_path / "linked" / "again").symlink_to(tmp_path / "digits" / "3")  # the same images
    out = run_ok("predict", str(tmp_path / "linked"), "--json", cwd=digits_run)
    assert len(json.loads(out)["predictions"]) == images
    # A link back up to a folder holding it is a loop: refused, as training refuses it.
    (tmp_path / "linked" / "up").symlink_to(tmp_path / "linked")
    code, _, err = cli("predict", str(tmp_path / "linked"), cwd=digits_run)
    assert code == 2 and "(a loop" in err and "Traceback" not in err
    # --eval reads the folder as training reads one: the same images, the hidden ones skipped.
    out = run_ok("predict", "--eval", str(tmp_path / "digits"), "--json", cwd=digits_run)
    evaluation = json.loads(out)["eval"]
    shown = [path for path in (tmp_path / "digits").glob("[0-9]/*.png") if path.name[0] != "."]
    assert evaluation["total"] == len(shown)


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (None, ["missing.png"], "'missing.png' not found"),
        ("text", ["notes.png"], "cannot decode image 'notes.png'"),
        (None, ["--eval", "nowhere"], "--eval 'nowhere' not found"),
        (None, [], "nothing to classify"),
        (None, ["x.png", "--model", "model.py"], "needs --weights FILE"),
        (
            "foreign",
            ["x.png", "--model", "foreign.py", "--weights", "model.safetensors"],
            "is not a model file of this nin-search",
        ),
        (
            "bare",
            ["x.png", "--model", "model.py", "--weights", "bare.safetensors"],
            "the weights do not fit the network of model.py",
        ),
        ("bare", ["x.png", "--weights", "bare.safetensors"], "does not say what network it is"),
        (  # the search's model.py with the retrained weights: other normalisation statistics
            None,
            ["x.png", "--model", "model.py", "--weights", "final/weights.safetensors"],
            "was written with another network file than model.py (the weights' metadata vs the "
            "file: MEAN",
        ),
        (None, ["x.png", "--weights", "model.safetensors", "--trial", "0"], "not both"),
        ("eval", ["--eval", "pets"], "are not classes of the network"),
        ("bomb", ["bomb.png"], "'bomb.png' is too large to decode safely"),
    ],
)
def test_predict_refuses_bad_input_in_one_line(digits_run, make, args, message, tmp_path):
    copy_database(digits_run / "nin_search.db", tmp_path / "nin_search.db")
    for name in ("model.py", "model.safetensors"):
        shutil.copy(digits_run / name, tmp_path / name)
    shutil.copytree(digits_run / "final", tmp_path / "final")
    shutil.copytree(digits_run / "nin_search-artifacts", tmp_path / "nin_search-artifacts")
    Image.new("L", (8, 8)).save(tmp_path / "x.png")
    if make == "text":
        (tmp_path / "notes.png").write_text("not an image\n")
    elif make == "foreign":
        (tmp_path / "foreign.py").write_text(
            "import torch\n__all__ = ['Net']\nNet = torch.nn.Linear\n"
        )
    elif make == "bare":
        from safetensors.torch import save_file

        save_file({"w": torch.zeros(1)}, str(tmp_path / "bare.safetensors"))
    elif make == "bomb":  # a small PNG whose header says 20000 x 20000 pixels
        buffer = io.BytesIO()
        Image.new("L", (8, 8)).save(buffer, format="PNG")
        png = bytearray(buffer.getvalue())
        png[16:24] = struct.pack(">II", 20000, 20000)  # IHDR's width and height
        png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))  # and its checksum
        (tmp_path / "bomb.png").write_bytes(bytes(png))
    elif make == "eval":
        (tmp_path / "pets" / "cat").mkdir(parents=True)
        Image.new("L", (8, 8)).save(tmp_path / "pets" / "cat" / "0.png")
    before = (tmp_path / "nin_search.db").read_bytes()
    code, out, err = cli("predict", *args, cwd=tmp_path)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err + out
    assert message in err
    assert "Traceback" not in err + out
    assert (tmp_path / "nin_search.db").read_bytes() == before


# ----------------------------------------------------------------------------------------------
# export: old studies, missing extra
# ----------------------------------------------------------------------------------------------


def test_export_of_a_study_without_recorded_preprocessing_says_how_to_get_a_usable_model(
    digits_run, tmp_path
):
    copy_database(digits_run / "nin_search.db", tmp_path / "nin_search.db")
    study = study_of(tmp_path)
    data = dict(study.user_attrs["data"])
    del data["preprocessing"]  # as nin-search before this version recorded it
    study.set_user_attr("data", data)
    code, _, err = cli("export", "-o", "m.py", cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1
    assert "older nin-search that did not record its preprocessing" in err
    assert "nin-search train" in err
    assert not (tmp_path / "m.py").exists()


def test_export_onnx_without_the_extra_is_one_line_naming_it(digits_run, tmp_path, monkeypatch):
    copy_database(digits_run / "nin_search.db", tmp_path / "nin_search.db")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "onnxscript" else real_find_spec(name, *a),
    )
    code, _, err = cli("export", "-o", "m.py", "--onnx", "m.onnx", cwd=tmp_path)
    assert code == 2 and err.count("\n") == 1
    assert "pip install 'nin-search[onnx]'" in err and "onnxscript" in err
    assert not (tmp_path / "m.py").exists() and not (tmp_path / "m.onnx").exists()


def test_export_with_nothing_to_write_says_what_to_pass(digits_run):
    code, _, err = cli("export", cwd=digits_run)
    assert code == 2 and "pass -o model.py, --weights model.safetensors and/or --onnx" in err
