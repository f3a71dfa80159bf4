import ast
import dataclasses
import datetime
import importlib.util
import pickle
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from nin_search import (
    ArchSpec,
    SpecError,
    StageSpec,
    UserError,
    build_model,
    count_macs,
    count_params,
    presets,
)
from nin_search.export import (
    ExportInfo,
    class_name_for,
    export_metadata,
    export_source,
    info_from_metadata,
    load_weights,
    save_weights,
)
from nin_search.preprocessing import Preprocessing
from nin_search.transforms import to_model_input
from nin_search.weights import read_metadata

from .conftest import REPO

RUFF = Path(sys.executable).parent / "ruff"
RUFF_COMMAND = str(RUFF) if RUFF.exists() else shutil.which("ruff")

PLAIN_ONLY = ArchSpec(
    stages=(
        StageSpec("plain", kernel_size=5, width=12, pool="max"),
        StageSpec("plain", kernel_size=3, width=16),
    ),
    head="nin",
    batch_norm=True,
    activation="relu",
    dropout=0.0,
)
MLP_ONLY = ArchSpec(
    stages=(
        StageSpec("mlp", kernel_size=3, width=16, mlp_widths=(12, 8), pool="avg"),
        StageSpec("mlp", kernel_size=3, width=16, mlp_widths=(16,)),
    ),
    head="linear",
    batch_norm=False,
    activation="gelu",
    dropout=0.3,
)
MIXED = ArchSpec(
    stages=(
        StageSpec("mlp", kernel_size=5, width=16, mlp_widths=(12,), pool="avg"),
        StageSpec("plain", kernel_size=3, width=8, pool="max"),
        StageSpec("mlp", kernel_size=1, width=8, mlp_widths=(8, 8, 6)),
    ),
    head="nin",
    batch_norm=True,
    activation="silu",
    dropout=0.2,
)
SINGLE_STAGE = ArchSpec(
    stages=(StageSpec("plain", kernel_size=3, width=4),),
    head="linear",
    batch_norm=True,
    activation="relu",
    dropout=0.1,
)
# spec, in_channels, num_classes, image_size
CASES = {
    "plain-only": (PLAIN_ONLY, 1, 5, 8),
    "mlp-only": (MLP_ONLY, 3, 7, 16),
    "mixed": (MIXED, 2, 4, 13),
    "single-stage": (SINGLE_STAGE, 1, 3, 5),
    "nin_cifar10": (presets.nin_cifar10(), 3, 10, 32),
}
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
INJECTION = 'x"""\nimport os\nos.system("touch PWNED")\n"""'


def import_file(path: Path, module_name: str):
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def write_export(folder: Path, spec: ArchSpec, info: ExportInfo, **options) -> Path:
    path = folder / "exported_model.py"
    path.write_text(export_source(spec, info, **options), encoding="utf-8")
    return path


def randomize(model: nn.Module) -> nn.Module:
    """Random parameters and BatchNorm statistics, so that every tensor shows in the output."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    return model


@pytest.mark.parametrize("case", list(CASES))
def test_the_exported_class_loads_trained_weights_strictly_and_gives_the_same_logits(
    case, tmp_path
):
    spec, in_channels, num_classes, image_size = CASES[case]
    info = ExportInfo(
        in_channels=in_channels, num_classes=num_classes, image_size=image_size, study_name=case
    )
    module = import_file(write_export(tmp_path, spec, info), f"exported_{case.replace('-', '_')}")
    exported_class = getattr(module, class_name_for(case))
    assert module.__all__ == [exported_class.__name__]

    trained = randomize(build_model(spec, in_channels=in_channels, num_classes=num_classes)).eval()
    exported = exported_class().eval()
    assert {name: tensor.shape for name, tensor in exported.state_dict().items()} == {
        name: tensor.shape for name, tensor in trained.state_dict().items()
    }
    exported.load_state_dict(trained.state_dict(), strict=True)
    images = torch.randn(3, in_channels, image_size, image_size)
    with torch.no_grad():
        expected = trained(images)
        actual = exported(images)
    assert actual.shape == (3, num_classes)
    assert (actual - expected).abs().max().item() <= 1e-6


@pytest.mark.parametrize("case", list(CASES))
def test_the_exported_class_initialises_exactly_like_build_model(case, tmp_path):
    spec, in_channels, num_classes, image_size = CASES[case]
    info = ExportInfo(in_channels=in_channels, num_classes=num_classes, image_size=image_size)
    module = import_file(write_export(tmp_path, spec, info, class_name="Model"), "exported_init")
    torch.manual_seed(0)
    reference = build_model(spec, in_channels=in_channels, num_classes=num_classes)
    torch.manual_seed(0)
    exported = module.Model()
    for (name, expected), (exported_name, actual) in zip(
        reference.state_dict().items(), exported.state_dict().items(), strict=True
    ):
        assert exported_name == name
        assert torch.equal(actual, expected), name
    assert exported.num_features == reference.num_features
    assert exported.num_classes == reference.num_classes


@pytest.mark.parametrize("case", list(CASES))
def test_every_stage_has_a_shape_comment_that_matches_its_real_output(case, tmp_path):
    spec, in_channels, num_classes, image_size = CASES[case]
    info = ExportInfo(in_channels=in_channels, num_classes=num_classes, image_size=image_size)
    source = export_source(spec, info)
    comments = re.findall(r"x = self\.stages\.(s\d+)\(x\)  # N x (\d+) x (\d+) x (\d+)", source)
    assert [stage for stage, *_ in comments] == [f"s{index}" for index in range(len(spec.stages))]
    model = build_model(spec, in_channels=in_channels, num_classes=num_classes).eval()
    x = torch.zeros(1, in_channels, image_size, image_size)
    assert f"# N x {in_channels} x {image_size} x {image_size}\n" in source
    for stage, channels, height, width in comments:
        x = getattr(model.stages, stage)(x)
        assert tuple(x.shape[1:]) == (int(channels), int(height), int(width)), stage
    assert f"return self.head(x)  # N x {num_classes}\n" in source


def test_nin_cifar10_gets_the_header_and_shape_comments_of_the_paper_network(tmp_path):
    spec = presets.nin_cifar10()
    params = count_params(build_model(spec, in_channels=3, num_classes=10))
    macs = count_macs(spec, in_channels=3, num_classes=10, image_size=32)
    info = ExportInfo(
        in_channels=3,
        num_classes=10,
        image_size=32,
        study_name="cifar10",
        trial_number=42,
        val_accuracy=0.8934,
        params=params,
        macs=macs,
        class_names=CIFAR10_CLASSES,
        weights_file="runs/cifar10_trial42.safetensors",
        created="2025-06-01",
    )
    source = export_source(spec, info)
    header = ast.get_docstring(ast.parse(source))
    assert header.startswith("Cifar10Net: ")
    assert re.search(r"^Study: +cifar10$", header, re.MULTILINE)
    assert re.search(r"^Trial: +42$", header, re.MULTILINE)
    assert re.search(r"^Validation accuracy: +89\.34%$", header, re.MULTILINE)
    assert re.search(r"^Parameters: +966,986$", header, re.MULTILINE)
    assert re.search(rf"^MACs: +{macs:,} per image$", header, re.MULTILINE)
    assert re.search(r"^Input: +3 x 32 x 32 ", header, re.MULTILINE)
    assert re.search(r"^Classes: +10: airplane, automobile, .*, truck$", header, re.MULTILINE)
    assert re.search(r"^Exported: +2025-06-01 ", header, re.MULTILINE)
    assert "from safetensors.torch import load_file" in header
    assert 'model.load_state_dict(load_file("cifar10_trial42.safetensors"))' in header
    assert "x = self.stages.s0(x)  # N x 96 x 16 x 16\n" in source
    assert "x = self.stages.s1(x)  # N x 192 x 8 x 8\n" in source
    assert "x = self.stages.s2(x)  # N x 192 x 8 x 8\n" in source
    assert "nn.Dropout(0.5)" in source
    assert "count_include_pad=False" in source


def test_the_header_leaves_out_what_it_does_not_know_and_dates_the_export_today():
    info = ExportInfo(in_channels=1, num_classes=5, image_size=8)
    header = ast.get_docstring(ast.parse(export_source(PLAIN_ONLY, info)))
    for key in ("Study", "Trial", "Validation accuracy", "Parameters", "MACs"):
        assert f"\n{key}:" not in header
    assert re.search(r"^Classes: +5$", header, re.MULTILINE)
    assert f"Exported:            {datetime.date.today().isoformat()} " in header
    assert 'load_file("model.safetensors")' in header


def test_the_mlp_conv_class_is_written_only_when_a_stage_uses_it():
    info = ExportInfo(in_channels=1, num_classes=5, image_size=8)
    assert "MLPConv2d" not in export_source(PLAIN_ONLY, info)
    assert "class MLPConv2d(nn.Module):" in export_source(MIXED, info)
    assert "class MLPConv2d(nn.Module):" in export_source(MLP_ONLY, info)


def test_the_exported_file_imports_only_torch_and_the_standard_library():
    info = ExportInfo(in_channels=1, num_classes=5, image_size=8)
    tree = ast.parse(export_source(MIXED, info))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported == {"collections", "torch"}


def test_the_exported_file_runs_where_nin_search_is_not_installed(tmp_path):
    spec, in_channels, num_classes, image_size = CASES["mixed"]
    info = ExportInfo(in_channels=in_channels, num_classes=num_classes, image_size=image_size)
    path = write_export(tmp_path, spec, info, class_name="MixedNet")
    trained = randomize(build_model(spec, in_channels=in_channels, num_classes=num_classes)).eval()
    save_weights(trained.state_dict(), tmp_path / "mixed.safetensors")
    images = torch.randn(2, in_channels, image_size, image_size)
    with torch.no_grad():
        save_file(
            {"images": images, "logits": trained(images)}, str(tmp_path / "check.safetensors")
        )
    child = textwrap.dedent(
        """
        import sys

        sys.modules["nin_search"] = None  # any import of nin_search now fails
        repo, folder = sys.argv[1], sys.argv[2]
        sys.path[:] = [
            entry
            for entry in sys.path
            if not (entry in ("", ".") or entry.startswith(repo))
            or entry.startswith(sys.prefix)  # the virtualenv (torch) may live in the repo
        ]
        import importlib.util

        import torch
        from safetensors.torch import load_file

        spec = importlib.util.spec_from_file_location("exported", folder + "/exported_model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = module.MixedNet()
        model.load_state_dict(load_file(folder + "/mixed.safetensors"), strict=True)
        model.eval()
        check = load_file(folder + "/check.safetensors")
        with torch.no_grad():
            difference = (model(check["images"]) - check["logits"]).abs().max().item()
        assert difference <= 1e-6, difference
        assert sys.modules["nin_search"] is None
        assert not [name for name in sys.modules if name.startswith("nin_search.")]
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", child, str(REPO), str(path.parent)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.skipif(RUFF_COMMAND is None, reason="ruff is not installed")
@pytest.mark.parametrize("case", ["plain-only", "mlp-only", "mixed", "nin_cifar10", "injection"])
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_the_exported_file_passes_ruff_with_the_project_settings(case, command, tmp_path):
    if case == "injection":
        spec = ArchSpec(
            stages=(
                StageSpec("mlp", kernel_size=5, width=4096, mlp_widths=(2048,) * 12, pool="avg"),
                StageSpec("plain", kernel_size=3, width=123456789),
            ),
            dropout=0.1 + 0.2,
        )
        info = ExportInfo(
            in_channels=3,
            num_classes=3,
            image_size=224,
            study_name=INJECTION + "a very long study name " * 10,
            class_names=("x\\", 'a"""', "long class name " * 20),
            weights_file="weights\n" * 30,
            val_accuracy=1,
            params=10**12,
            macs=10**15,
            trial_number=0,
        )
    else:
        spec, in_channels, num_classes, image_size = CASES[case]
        info = ExportInfo(
            in_channels=in_channels,
            num_classes=num_classes,
            image_size=image_size,
            study_name=case,
            trial_number=3,
            val_accuracy=0.5,
        )
    path = write_export(tmp_path, spec, info)
    result = subprocess.run(
        [RUFF_COMMAND, *command, "--no-cache", "--config", str(REPO / "pyproject.toml"), str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_user_text_cannot_inject_code_into_the_exported_file(tmp_path, monkeypatch):
    info = ExportInfo(
        in_channels=1,
        num_classes=3,
        image_size=8,
        study_name=INJECTION,
        class_names=('cat"""\nimport os', "dog\\", "\n'''bird'''\r\n"),
        weights_file='w.safetensors"))\nimport os\nos.system("touch PWNED")\n#',
    )
    source = export_source(MIXED, info)
    compile(source, "exported_model.py", "exec")
    assert 'os.system("touch PWNED")' not in source
    assert "\nimport os" not in source
    assert '"""' not in ast.get_docstring(ast.parse(source))
    names = {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
    assert "os" not in names
    monkeypatch.chdir(tmp_path)
    module = import_file(write_export(tmp_path, MIXED, info), "exported_injection")
    module.XImportOsOsSystemTouchPWNEDNet()
    assert not (tmp_path / "PWNED").exists()
    header = module.__doc__
    assert header.startswith("XImportOsOsSystemTouchPWNEDNet: ")
    assert re.search(r"^Classes: +3: cat import os, dog, bird$", header, re.MULTILINE)


def test_class_names_in_any_script_keep_their_letters_in_the_header(tmp_path):
    info = ExportInfo(
        in_channels=3, num_classes=3, image_size=8, class_names=("café", "猫", "red car\u202e")
    )
    source = export_source(MIXED, info)
    compile(source, "exported_model.py", "exec")
    header = ast.get_docstring(ast.parse(source))
    assert re.search(r"^Classes: +3: café, 猫, red car$", header, re.MULTILINE), header
    assert "\u202e" not in source  # a bidi control character is not a letter: dropped


@pytest.mark.parametrize(
    ("study_name", "class_name"),
    [
        ("digits", "DigitsNet"),
        ("my study-2!", "MyStudy2Net"),
        ("cifar10", "Cifar10Net"),
        ("myStudy", "MyStudyNet"),
        ("ResNet", "ResNet"),
        ("2024 run", "Study2024RunNet"),
        (None, "NinSearchNet"),
        ("", "NinSearchNet"),
        ("!!!", "NinSearchNet"),
        (INJECTION, "XImportOsOsSystemTouchPWNEDNet"),
    ],
)
def test_class_name_for_makes_an_identifier_ending_in_net(study_name, class_name):
    assert class_name_for(study_name) == class_name


def test_class_name_for_caps_the_length():
    name = class_name_for("word " * 100)
    assert name.isidentifier() and name.endswith("Net") and len(name) <= 60


@pytest.mark.parametrize(
    "class_name", ["class", "1Net", "My Net", "Net;", "ConvNormAct", "print", "Ünet", "N" * 61]
)
def test_an_unusable_class_name_is_refused_with_the_name_quoted(class_name):
    info = ExportInfo(in_channels=1, num_classes=5, image_size=8)
    with pytest.raises(ValueError, match=re.escape(repr(class_name))):
        export_source(PLAIN_ONLY, info, class_name=class_name)


def test_a_tampered_spec_is_refused_before_anything_is_written():
    spec = ArchSpec(stages=(StageSpec("plain", kernel_size=3, width=4),))
    object.__setattr__(spec, "activation", "relu()\nimport os")
    info = ExportInfo(in_channels=1, num_classes=5, image_size=8)
    with pytest.raises(SpecError, match="activation"):
        export_source(spec, info)


@pytest.mark.parametrize(
    ("options", "quoted"),
    [
        ({"val_accuracy": 1.5}, "val_accuracy=1.5"),
        ({"num_classes": 1}, "num_classes=1"),
        ({"image_size": 0}, "image_size=0"),
        ({"trial_number": -1}, "trial_number=-1"),
        ({"class_names": ("a", "b")}, "class_names=['a', 'b']"),
        ({"created": "yesterday"}, "created='yesterday'"),
    ],
)
def test_export_info_refuses_impossible_values_and_quotes_them(options, quoted):
    arguments = {"in_channels": 1, "num_classes": 5, "image_size": 8, **options}
    with pytest.raises(ValueError, match=re.escape(quoted)):
        ExportInfo(**arguments)


def test_weights_round_trip_through_safetensors(tmp_path):
    model = randomize(build_model(MIXED, in_channels=2, num_classes=4))
    state = model.state_dict()
    state["extra.transposed"] = torch.randn(3, 5).t()  # not contiguous
    save_weights(state, tmp_path / "weights.safetensors")
    loaded = load_weights(tmp_path / "weights.safetensors")
    assert set(loaded) == set(state)
    for name, tensor in state.items():
        assert loaded[name].dtype == tensor.dtype
        assert torch.equal(loaded[name], tensor), name


class CreatesAFileWhenUnpickled:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_load_weights_refuses_a_pickle_without_running_it(writer, tmp_path):
    marker = tmp_path / "PWNED"
    path = tmp_path / "weights.safetensors"
    payload = {"weight": CreatesAFileWhenUnpickled(marker)}
    if writer == "pickle":
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, path)
    with pytest.raises(UserError) as raised:
        load_weights(path)
    assert "\n" not in str(raised.value)
    assert "safetensors" in str(raised.value)
    assert not marker.exists()
    if writer == "pickle":  # the payload is real: unpickling it does create the file
        pickle.loads(path.read_bytes()).get("weight").close()
        assert marker.exists()


@pytest.mark.parametrize("keep", [4, 60, -8])
def test_load_weights_refuses_a_truncated_file(keep, tmp_path):
    path = tmp_path / "weights.safetensors"
    save_weights({"weight": torch.randn(16, 16), "bias": torch.randn(16)}, path)
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    with pytest.raises(UserError) as raised:
        load_weights(path)
    assert "\n" not in str(raised.value)


def test_load_weights_refuses_a_missing_file(tmp_path):
    with pytest.raises(UserError, match="missing.safetensors"):
        load_weights(tmp_path / "missing.safetensors")


# ----------------------------------------------------------------------------------------------
# The deployable file: preprocessing constants, CLASSES, preprocess; metadata
# ----------------------------------------------------------------------------------------------

FACTS = Preprocessing(channels=3, image_size=13, mean=(0.5, 0.25, 0.125), std=(0.2, 0.3, 0.4))
WEIRD_CLASSES = (
    'cat"""\nimport os',
    "dog\\",
    "\n'''bird'''\r\n",
    "café",
    "\U0001f600 tab\there",
    '\'q\' "q" "',
    "\udcff surrogate",
    "long class name " * 20,
)


def deployable_info(**changes) -> ExportInfo:
    arguments = {
        "in_channels": 3,
        "num_classes": len(WEIRD_CLASSES),
        "image_size": 13,
        "study_name": INJECTION,
        "trial_number": 4,
        "val_accuracy": 0.75,
        "test_accuracy": 0.5,
        "class_names": WEIRD_CLASSES,
        "preprocessing": FACTS,
        "weights_file": "w.safetensors",
        "module_name": "exported_model",
        **changes,
    }
    return ExportInfo(**arguments)


def test_the_deployable_file_carries_the_facts_as_constants_and_preprocess(tmp_path):
    info = deployable_info()
    path = write_export(tmp_path, MIXED, info)
    module = import_file(path, "exported_deployable")
    assert module.CLASSES == WEIRD_CLASSES  # exactly the names, whatever their characters
    constants = ("CHANNELS", "IMAGE_SIZE", "MEAN", "STD", "INPUT_MAX", "RESIZE")
    facts = Preprocessing(*(getattr(module, name) for name in constants))
    assert facts == FACTS and isinstance(module.MEAN, tuple)
    assert module.__all__ == [
        "CHANNELS",
        "CLASSES",
        "IMAGE_SIZE",
        "INPUT_MAX",
        "MEAN",
        "META",
        "RESIZE",
        "STD",
        class_name_for(INJECTION),
        "preprocess",
        "transforms",
    ]
    pixels = torch.randint(0, 256, (2, 3, 20, 9), dtype=torch.uint8)
    expected = to_model_input(
        pixels, channels=3, image_size=13, mean=FACTS.mean, std=FACTS.std, input_max=255.0
    )
    assert torch.equal(module.preprocess(pixels), expected)
    assert module.preprocess(pixels.float() / 255, input_max=1.0).shape == (2, 3, 13, 13)
    # torchvision's weights API: meta, and transforms() as a module a Dataset can use.
    assert module.META["categories"] == WEIRD_CLASSES and module.META["input_size"] == (3, 13, 13)
    assert (module.META["val_accuracy"], module.META["test_accuracy"]) == (0.75, 0.5)
    assert module.META["study"] == INJECTION and module.META["trial"] == 4
    transform = module.transforms()
    assert isinstance(transform, torch.nn.Module)
    assert torch.equal(transform(pixels[0]), expected[0])  # one image: C x H x W
    assert torch.equal(transform(pixels), expected)  # a batch stays a batch
    # Grey pixels for an RGB network are repeated to three channels, as Pillow converts them.
    grey = pixels[0, 0]
    assert torch.equal(module.preprocess(grey), module.preprocess(grey.expand(3, -1, -1)))
    with pytest.warns(UserWarning, match="pass input_max=1.0"):
        module.preprocess(pixels.float() / 255)  # to_tensor's [0, 1], read as 0..255
    header = module.__doc__
    assert re.search(r"^Test accuracy: +50\.00%$", header, re.MULTILINE)
    assert re.search(r"^Preprocessing: +pixels 0\.\.255 -> 13 x 13 ", header, re.MULTILINE)
    assert "from exported_model import CLASSES, " in header
    assert "batch = preprocess(image)  # 1 x 3 x 13 x 13" in header
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.skipif(RUFF_COMMAND is None, reason="ruff is not installed")
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_the_deployable_file_passes_ruff_with_the_project_settings(command, tmp_path):
    path = write_export(tmp_path, presets.nin_cifar10(), deployable_info())
    result = subprocess.run(
        [RUFF_COMMAND, *command, "--no-cache", "--config", str(REPO / "pyproject.toml"), str(path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_export_info_refuses_preprocessing_of_another_shape():
    with pytest.raises(ValueError, match="must give 3 x 8 x 8 inputs"):
        deployable_info(image_size=8)
    with pytest.raises(ValueError, match="precision=.auto."):
        deployable_info(precision="auto")  # a run's precision is resolved


def test_metadata_round_trips_every_fact_as_strings():
    info = deployable_info(
        params=1234, macs=56789, created="2025-06-01", seed=3756574777, precision="bf16"
    )
    metadata = export_metadata(MIXED, info)
    assert (metadata["seed"], metadata["precision"]) == ("3756574777", "bf16")
    assert all(isinstance(key, str) and isinstance(value, str) for key, value in metadata.items())
    spec, back = info_from_metadata(metadata, weights_file=info.weights_file)
    assert spec == MIXED
    assert back == dataclasses.replace(info, module_name=None)


def test_metadata_without_the_facts_is_refused_by_name():
    with pytest.raises(ValueError, match="arch, in_channels, num_classes, image_size missing"):
        info_from_metadata({"format": "pt"})
    metadata = export_metadata(MIXED, deployable_info())
    with pytest.raises(ValueError, match="unreadable nin-search metadata"):
        info_from_metadata({**metadata, "arch": '{"stages": "x"}'})


def test_weights_carry_metadata_and_get_normal_permissions(tmp_path):
    path = tmp_path / "w.safetensors"
    save_weights({"weight": torch.ones(2)}, path, metadata={"study": "x"})
    assert read_metadata(path) == {"study": "x"}
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temporary left
