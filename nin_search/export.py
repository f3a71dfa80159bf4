"""``export_source(spec, info)``: an :class:`ArchSpec` -> one standalone PyTorch source file.

The generated file imports only ``torch`` and the standard library, reads like a hand-written
torchvision model (named blocks, shape comments, ``forward_features`` / ``forward_head``), and
its ``state_dict`` matches :func:`nin_search.build_model` key for key, so trained weights load
with ``strict=True``. It comes out already formatted the way ``ruff format`` would write it.

With :class:`~nin_search.preprocessing.Preprocessing` facts in ``info`` the file is deployable:
it also holds them as constants (``CHANNELS``, ``IMAGE_SIZE``, ``RESIZE``, ``INPUT_MAX``,
``MEAN``, ``STD``, ``CLASSES``) and a ``preprocess(image)`` function built from the functions of
:mod:`nin_search.transforms`, copied verbatim, so a decoded image becomes exactly the tensor the
network was trained on. :func:`export_metadata` gives the same facts as strings for the
metadata of a safetensors or ONNX file; :func:`info_from_metadata` reads them back.

User text (study name, weights file name, module name) only reaches the docstring, reduced to
``[A-Za-z0-9 _.-]`` and capped in length. Class names reach the code only as string literals
that this module escapes itself (every character outside printable text becomes an escape), so
they evaluate to exactly the names given. Everything else in the code comes from a re-validated
spec and validated preprocessing facts (integers, floats written with ``repr``, and fixed
snippets looked up by choice).

Weights travel as safetensors: :func:`save_weights` and :func:`load_weights` (from
:mod:`nin_search.weights`) never pickle, so loading a file never runs code.
"""

from __future__ import annotations

import ast
import builtins
import datetime
import json
import keyword
import math
import os
import re
import textwrap
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from nin_search import __version__, transforms
from nin_search.config import downsampled_size
from nin_search.preprocessing import Preprocessing
from nin_search.spec import ArchSpec, SpecError, StageSpec
from nin_search.weights import load_weights, save_weights

__all__ = [
    "ExportInfo",
    "class_name_for",
    "export_metadata",
    "export_source",
    "info_from_metadata",
    "load_weights",
    "save_weights",
]

LINE_LENGTH = 100  # characters, the project's ruff setting
MAX_CLASS_NAME_LENGTH = 60  # characters; keeps `model = ClassName()` lines short
_MAX_STUDY_NAME_LENGTH = 60  # characters shown in the header
_MAX_CLASS_LABEL_LENGTH = 40  # characters per class name shown in the header
_MAX_CLASS_LABELS = 100  # class names shown in the header; the rest are counted
_MAX_WEIGHTS_NAME_LENGTH = 60  # characters of the weights file name in the loading example
_MAX_MODULE_NAME_LENGTH = 30  # characters of the module name in the usage example
_DEFAULT_WEIGHTS_FILE = "model.safetensors"
_DEFAULT_CLASS_NAME = "NinSearchNet"
_UNSAFE_TEXT = re.compile(r"[^A-Za-z0-9 _.\-]+")
_DEFAULT_MODULE_NAME = "model"
_KEY_WIDTH = len("Validation accuracy: ")  # header values start in this column
# The constants that carry the preprocessing facts, in the order the file defines them.
_CONSTANTS = ("CHANNELS", "IMAGE_SIZE", "RESIZE", "INPUT_MAX", "MEAN", "STD", "CLASSES")
# The functions of nin_search.transforms, which the exported file carries verbatim.
_TRANSFORM_FUNCTIONS = tuple(transforms.__all__)
# Names the generated module defines or uses: a model class must not shadow them.
_GENERATED_NAMES = {
    "Any",
    "ConvNormAct",
    "F",
    "MLPConv2d",
    "OrderedDict",
    "nn",
    "preprocess",
    "torch",
    "__all__",
    "__file__",
    *_CONSTANTS,
    *_TRANSFORM_FUNCTIONS,
}
_RESERVED_NAMES = frozenset(_GENERATED_NAMES | set(dir(builtins)))

# Code snippets by choice: a spec's strings select code, they are never written into it.
_ACTIVATION_CODE = {"relu": "nn.ReLU(inplace=True)", "gelu": "nn.GELU()", "silu": "nn.SiLU()"}
_ACTIVATION_NAMES = {"relu": "ReLU", "gelu": "GELU", "silu": "SiLU"}
_POOL_ARGUMENTS = ("kernel_size=3", "stride=2", "padding=1")


@dataclass(frozen=True)
class ExportInfo:
    """What the header of an exported file tells about the network and where it came from.

    Args:
        in_channels: Channels of the input images (the exported class's default).
        num_classes: Number of classes (the exported class's default).
        image_size: Side of the (square) training images, in pixels; sets the shape comments.
        study_name: The study's name. User text: shown only in a reduced, safe form.
        trial_number: The trial the architecture comes from.
        val_accuracy: Validation accuracy in [0, 1] (shown as a percentage).
        params: Number of trainable parameters.
        macs: Multiply-accumulates per image.
        class_names: One name per class, in label order (e.g. image folder names). User text:
            shown only in a reduced, safe form.
        weights_file: Name of the weights file in the loading example. User text: reduced to
            a safe file name.
        created: ISO date of the export (``YYYY-MM-DD``); today when None.
        preprocessing: What turns a decoded image into the input, as in training; with it
            the file carries the preprocessing constants and ``preprocess`` (its channels and
            image size must equal ``in_channels`` and ``image_size``).
        test_accuracy: Test accuracy in [0, 1] (after ``nin-search train``).
        module_name: The name the file is imported by in the usage example (``model`` for
            ``model.py``); a name that is not an identifier gives ``model``.
    """

    in_channels: int
    num_classes: int
    image_size: int
    study_name: str | None = None
    trial_number: int | None = None
    val_accuracy: float | None = None
    params: int | None = None
    macs: int | None = None
    class_names: tuple[str, ...] = ()
    weights_file: str | None = None
    created: str | None = None
    preprocessing: Preprocessing | None = None
    test_accuracy: float | None = None
    module_name: str | None = None

    def __post_init__(self) -> None:
        _check_int("in_channels", self.in_channels, minimum=1)
        _check_int("num_classes", self.num_classes, minimum=2)
        _check_int("image_size", self.image_size, minimum=1)
        for name in ("trial_number", "params", "macs"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), minimum=0)
        for name in ("val_accuracy", "test_accuracy"):
            accuracy = getattr(self, name)
            if accuracy is not None and (
                isinstance(accuracy, bool)
                or not isinstance(accuracy, (int, float))
                or not 0.0 <= accuracy <= 1.0
            ):
                raise ValueError(f"{name} must be in [0, 1], but got {name}={accuracy!r}.")
        for name in ("study_name", "created", "module_name"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ValueError(
                    f"{name} must be a string, but got {name}={getattr(self, name)!r}."
                )
        if self.weights_file is not None:
            if not isinstance(self.weights_file, (str, os.PathLike)):
                raise ValueError(
                    f"weights_file must be a file name, but got weights_file={self.weights_file!r}."
                )
            object.__setattr__(self, "weights_file", os.fspath(self.weights_file))
        if isinstance(self.class_names, str) or not all(
            isinstance(name, str) for name in self.class_names
        ):
            raise ValueError(
                "class_names must be a sequence of strings, "
                f"but got class_names={self.class_names!r}."
            )
        object.__setattr__(self, "class_names", tuple(self.class_names))
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names must name all {self.num_classes} classes, "
                f"but got {len(self.class_names)}: class_names={list(self.class_names)!r}."
            )
        if self.created is not None:
            _parse_date(self.created)
        preprocessing = self.preprocessing
        if preprocessing is not None:
            if not isinstance(preprocessing, Preprocessing):
                raise ValueError(
                    "preprocessing must be a Preprocessing, "
                    f"but got preprocessing={preprocessing!r}."
                )
            if (preprocessing.channels, preprocessing.image_size) != (
                self.in_channels,
                self.image_size,
            ):
                raise ValueError(
                    f"preprocessing must give {self.in_channels} x {self.image_size} x "
                    f"{self.image_size} inputs, but got preprocessing={preprocessing!r}."
                )


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, but got {name}={value!r}.")


def _parse_date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return datetime.datetime.fromisoformat(text).date()
    except ValueError:
        raise ValueError(
            f"created must be an ISO date like '2025-01-31', but got created={text!r}."
        ) from None


def _safe_text(text: str, *, max_length: int) -> str:
    """``text`` with every run of characters outside ``[A-Za-z0-9 _.-]`` made one space."""
    cleaned = " ".join(_UNSAFE_TEXT.sub(" ", text).split())
    return cleaned[:max_length].rstrip()


def class_name_for(study_name: str | None) -> str:
    """A Python class name for a study: ``"digits"`` -> ``"DigitsNet"``.

    Words (runs of ASCII letters and digits) are capitalised and joined, and ``Net`` is appended
    unless the name already ends with it: ``"my study-2!"`` -> ``"MyStudy2Net"``. A name that
    would start with a digit gets a ``Study`` prefix; an empty one gives ``"NinSearchNet"``.

    Args:
        study_name: The study's name; any text, or None.

    Returns:
        A valid identifier of at most :data:`MAX_CLASS_NAME_LENGTH` characters, ending in ``Net``.
    """
    words = re.findall(r"[A-Za-z0-9]+", study_name or "")
    name = "".join(word[0].upper() + word[1:] for word in words)[: MAX_CLASS_NAME_LENGTH - 12]
    if not name:
        return _DEFAULT_CLASS_NAME
    if name[0].isdigit():
        name = f"Study{name}"
    return name if name.endswith("Net") else f"{name}Net"


def _check_class_name(class_name: object) -> str:
    if (
        not isinstance(class_name, str)
        or not class_name.isascii()
        or not class_name.isidentifier()
        or keyword.iskeyword(class_name)
        or len(class_name) > MAX_CLASS_NAME_LENGTH
    ):
        raise ValueError(
            f"class_name must be an ASCII Python identifier of at most {MAX_CLASS_NAME_LENGTH} "
            f"characters (not a keyword), but got class_name={class_name!r}."
        )
    if class_name in _RESERVED_NAMES:
        raise ValueError(
            f"class_name must not shadow a name the exported file uses, "
            f"but got class_name={class_name!r}; try {class_name + 'Net'!r}."
        )
    return class_name


# A tiny expression tree, rendered the way `ruff format` writes it (the "black" style):
# on one line if it fits, else the arguments on one indented line if they fit, else one
# argument a line with a trailing comma. `explode=True` forces the last form, and its
# trailing comma ("magic") tells ruff to keep it.
@dataclass(frozen=True)
class _Call:
    function: str  # "nn.Conv2d"; "" for a tuple
    arguments: tuple[_Node, ...]
    explode: bool = False


@dataclass(frozen=True)
class _Keyword:
    name: str
    value: _Node


_Node = str | _Call | _Keyword


def _tuple(values: tuple[int, ...]) -> _Call:
    return _Call("", tuple(str(int(value)) for value in values))


def _flat(node: _Node) -> str | None:
    """The node on one line, or None when it must span several."""
    if isinstance(node, str):
        return node
    if isinstance(node, _Keyword):
        value = _flat(node.value)
        return None if value is None else f"{node.name}={value}"
    if node.explode:
        return None
    arguments = [_flat(argument) for argument in node.arguments]
    if None in arguments:
        return None
    if not node.function and len(arguments) == 1:
        return f"({arguments[0]},)"  # a one-element tuple
    return f"{node.function}({', '.join(arguments)})"


def _render(node: _Node, indent: int, prefix: str = "", suffix: str = "") -> list[str]:
    """Source lines for ``prefix + node + suffix`` at ``indent`` spaces."""
    pad = " " * indent
    if isinstance(node, _Keyword):
        return _render(node.value, indent, f"{prefix}{node.name}=", suffix)
    flat = _flat(node)
    if flat is not None and (
        isinstance(node, str) or _width(pad + prefix + flat + suffix) <= LINE_LENGTH
    ):
        return [pad + prefix + flat + suffix]
    arguments = node.arguments
    opening, closing = f"{pad}{prefix}{node.function}(", f"{pad}){suffix}"
    if not node.explode and node.function:  # a tuple that does not fit is one item a line
        body = [_flat(argument) for argument in arguments]
        line = " " * (indent + 4) + ", ".join(body) if None not in body else None
        if line is not None and _width(line) <= LINE_LENGTH:
            return [opening, line, closing]
        if len(arguments) == 1:
            return [opening, *_render(arguments[0], indent + 4), closing]
    lines = [opening]
    for argument in arguments:
        lines += _render(argument, indent + 4, suffix=",")
    return [*lines, closing]


def _module_name(info: ExportInfo) -> str:
    name = info.module_name or ""
    usable = name.isascii() and name.isidentifier() and not keyword.iskeyword(name)
    return name if usable and len(name) <= _MAX_MODULE_NAME_LENGTH else _DEFAULT_MODULE_NAME


def _usage_example(info: ExportInfo, class_name: str, weights_name: str) -> list[str]:
    """The docstring's example: load the weights; with preprocessing, classify an image file."""
    load = [
        f"    model = {class_name}()",
        f'    model.load_state_dict(load_file("{weights_name}"))',
        "    model.eval()",
    ]
    if info.preprocessing is None:
        return [
            "Load the trained weights (a safetensors file)::",
            "",
            "    from safetensors.torch import load_file",
            "",
            *load,
        ]
    channels, size = info.preprocessing.channels, info.preprocessing.image_size
    module = _module_name(info)
    names = f"CLASSES, {class_name}, preprocess"
    imports = [f"    from {module} import {names}"]
    if len(imports[0]) > LINE_LENGTH:
        imports = [
            f"    from {module} import (",
            *(f"        {n}," for n in names.split(", ")),
            ")",
        ]
    return [
        "Classify an image file (Pillow decodes it; ``preprocess`` does what training did)::",
        "",
        "    import torch",
        "    from PIL import Image",
        "    from safetensors.torch import load_file",
        "",
        *imports,
        "",
        *load,
        '    with Image.open("image.png") as image:',
        f"        batch = preprocess(image)  # 1 x {channels} x {size} x {size}",
        "    with torch.no_grad():",
        "        probabilities = model(batch).softmax(dim=1)[0]",
        '    print(CLASSES[int(probabilities.argmax())], f"{float(probabilities.max()):.1%}")',
    ]


def _header(spec: ArchSpec, info: ExportInfo, class_name: str) -> str:
    """The module docstring: provenance, numbers, preprocessing, and how to use the file."""
    rows: list[tuple[str, str]] = []
    study = _safe_text(info.study_name or "", max_length=_MAX_STUDY_NAME_LENGTH)
    if study:
        rows.append(("Study", study))
    if info.trial_number is not None:
        rows.append(("Trial", str(int(info.trial_number))))
    if info.val_accuracy is not None:
        rows.append(("Validation accuracy", f"{100 * float(info.val_accuracy):.2f}%"))
    if info.test_accuracy is not None:
        rows.append(("Test accuracy", f"{100 * float(info.test_accuracy):.2f}%"))
    if info.params is not None:
        rows.append(("Parameters", f"{int(info.params):,}"))
    if info.macs is not None:
        rows.append(("MACs", f"{int(info.macs):,} per image"))
    channels, size = int(info.in_channels), int(info.image_size)
    rows.append(("Input", f"{channels} x {size} x {size} (channels x height x width)"))
    if info.preprocessing is not None:
        rows.append(("Preprocessing", f"{info.preprocessing.describe()}; see preprocess"))
    classes = str(int(info.num_classes))
    if info.class_names:
        labels = [
            _safe_text(name, max_length=_MAX_CLASS_LABEL_LENGTH) or f"class {index}"
            for index, name in enumerate(info.class_names[:_MAX_CLASS_LABELS])
        ]
        hidden = len(info.class_names) - len(labels)
        classes += f": {', '.join(labels)}" + (f" and {hidden} more" if hidden else "")
    rows.append(("Classes", classes))
    rows.append(("Architecture", spec.summary()))
    created = _parse_date(info.created) if info.created else datetime.date.today()
    rows.append(("Exported", f"{created.isoformat()} by nin-search; needs only PyTorch"))
    lines = [f'"""{class_name}: an image classifier found by nin-search.', ""]
    for key, value in rows:
        wrapped = textwrap.wrap(
            value,
            width=LINE_LENGTH,
            initial_indent=f"{key}:".ljust(_KEY_WIDTH),
            subsequent_indent=" " * _KEY_WIDTH,
            break_on_hyphens=False,
        )
        lines += [line.rstrip() for line in wrapped]  # wrap leaves a space before a broken word
    weights_name = re.split(r"[/\\]", info.weights_file or "")[-1]
    weights_name = _safe_text(weights_name, max_length=_MAX_WEIGHTS_NAME_LENGTH)
    weights_name = weights_name.lstrip(".") or _DEFAULT_WEIGHTS_FILE
    lines += ["", *_usage_example(info, class_name, weights_name), '"""']
    return "\n".join(lines)


def _width(text: str) -> int:
    """Columns ``text`` takes, as ruff counts them (wide East Asian characters take two)."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def _string_literal(text: str) -> str:
    """``text`` as a Python string literal in the quotes ``ruff format`` picks.

    Backslashes and the quote are escaped; every character that is not printable (newlines,
    controls, surrogates, zero-width and other format characters) becomes an escape, so the
    literal is one line and evaluates to exactly ``text``.
    """
    quote = "'" if text.count('"') > text.count("'") else '"'
    characters = []
    for character in text:
        code = ord(character)
        if character in ("\\", quote):
            characters.append("\\" + character)
        elif character.isprintable():
            characters.append(character)
        elif code < 0x100:
            characters.append(f"\\x{code:02x}")
        elif code < 0x10000:
            characters.append(f"\\u{code:04x}")
        else:
            characters.append(f"\\U{code:08x}")
    return quote + "".join(characters) + quote


def _natural_key(name: str) -> list[tuple[int, int | str]]:
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name)]


def _all_list(names: list[str]) -> str:
    """``__all__ = [...]`` sorted the way ruff's RUF022 wants (isort style)."""

    def key(name: str) -> tuple[int, list[tuple[int, int | str]]]:
        if len(name) > 1 and name.upper() == name and name.lower() != name:
            category = 0  # CONSTANT
        elif name[0].isupper():
            category = 1  # Class
        else:
            category = 2  # function
        return category, _natural_key(name)

    items = [f'"{name}"' for name in sorted(names, key=key)]
    line = f"__all__ = [{', '.join(items)}]"
    if _width(line) <= LINE_LENGTH:
        return line
    return "\n".join(["__all__ = [", *(f"    {item}," for item in items), "]"])


def _constants(info: ExportInfo) -> str:
    """The preprocessing facts as constants (``info.preprocessing`` is set)."""
    facts = info.preprocessing
    assert facts is not None

    def floats(values: tuple[float, ...]) -> _Call:
        return _Call("", tuple(repr(float(value)) for value in values))

    names = info.class_names or tuple(str(index) for index in range(info.num_classes))
    lines = [
        "# What training did to every decoded image (preprocess does the same): pixels to 0..255,",
        "# resized to IMAGE_SIZE x IMAGE_SIZE by RESIZE, divided by 255, then per channel minus",
        "# MEAN and divided by STD (statistics of the training images, in [0, 1] units).",
        f'CHANNELS = {int(facts.channels)}  # 1: grey (Pillow mode "L"), 3: RGB',
        f"IMAGE_SIZE = {int(facts.image_size)}  # pixels, square (the aspect ratio is not kept)",
        f"RESIZE = {_string_literal(facts.resize)}  # F.interpolate, antialias=True, rounded",
        f"INPUT_MAX = {float(facts.input_max)!r}  # a white pixel in the training data's raw"
        " pixels",
        *_render(floats(facts.mean), 0, "MEAN = "),
        *_render(floats(facts.std), 0, "STD = "),
        "# The class names, in the order of the network's outputs.",
        *_render(_Call("", tuple(_string_literal(name) for name in names)), 0, "CLASSES = "),
    ]
    # A class name longer than a line cannot be split; say so to the linter.
    return "\n".join(
        f"{line}  # noqa: E501" if _width(line) > LINE_LENGTH else line for line in lines
    )


def _transform_functions() -> str:
    """The functions of :mod:`nin_search.transforms`, verbatim, in the module's order."""
    source = Path(transforms.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    functions = [
        ast.get_source_segment(source, node)
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name in _TRANSFORM_FUNCTIONS
    ]
    return "\n\n\n".join(segment for segment in functions if segment)


_PREPROCESS_FUNCTION = '''\
def preprocess(image: Any, *, input_max: float = INPUT_MAX) -> torch.Tensor:
    """A decoded image -> this network's input: float32 ``N x CHANNELS x IMAGE_SIZE x IMAGE_SIZE``.

    Exactly what training did to every image: pixels to 0..255 (float pixels in
    ``[0, input_max]`` scaled and rounded), resized to ``IMAGE_SIZE x IMAGE_SIZE`` (``RESIZE``)
    unless already that size, divided by 255, then per channel minus ``MEAN``, divided by ``STD``.

    Args:
        image: A Pillow image (``Image.open(path)``; converted to grey or RGB to match
            ``CHANNELS``), or pixels as a tensor or NumPy array shaped ``H x W``,
            ``C x H x W`` or ``N x C x H x W``: uint8 0..255, or floats in ``[0, input_max]``.
        input_max: The value of a white pixel in float pixels; default ``INPUT_MAX``, the
            training data's own scale (pass 1.0 for pixels in [0, 1]).

    Returns:
        ``N x CHANNELS x IMAGE_SIZE x IMAGE_SIZE`` float32 (N = 1 for one image).
    """
    return to_model_input(
        image, channels=CHANNELS, image_size=IMAGE_SIZE, mean=MEAN, std=STD, input_max=input_max
    )'''


def _conv_norm_act_class(spec: ArchSpec) -> str:
    activation = _ACTIVATION_CODE[spec.activation]
    activation_name = _ACTIVATION_NAMES[spec.activation]
    if spec.batch_norm:
        doc = f'``conv`` (k x k, "same" padding, no bias) -> ``bn`` -> ``act`` ({activation_name}).'
        conv_keywords = ("padding=kernel_size // 2", "bias=False")
    else:
        doc = f'``conv`` (k x k, "same" padding, with bias) -> ``act`` ({activation_name}).'
        conv_keywords = ("padding=kernel_size // 2",)
    layers = [
        _Keyword(
            "conv",
            _Call("nn.Conv2d", ("in_channels", "out_channels", "kernel_size", *conv_keywords)),
        )
    ]
    if spec.batch_norm:
        layers.append(_Keyword("bn", _Call("nn.BatchNorm2d", ("out_channels",))))
    layers.append(_Keyword("act", activation))
    body = _render(
        _Call("super().__init__", (_Call("OrderedDict", tuple(layers), explode=True),)), 8
    )
    return "\n".join(
        [
            "class ConvNormAct(nn.Sequential):",
            f'    """{doc}"""',
            "",
            "    def __init__("
            "self, in_channels: int, out_channels: int, kernel_size: int = 1) -> None:",
            *body,
            "        self.out_channels = out_channels",
        ]
    )


_MLP_CONV_CLASS = '''\
class MLPConv2d(nn.Module):
    """MLP conv, the Network-in-Network block: one k x k conv, then stacked 1x1 convs."""

    def __init__(
        self, in_channels: int, width: int, kernel_size: int, mlp_widths: tuple[int, ...]
    ) -> None:
        super().__init__()
        self.conv = ConvNormAct(in_channels, width, kernel_size)
        layers = []
        channels = width
        for mlp_width in mlp_widths:
            layers.append(ConvNormAct(channels, mlp_width))
            channels = mlp_width
        self.mlp = nn.Sequential(*layers)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.conv(x))'''

_INIT_WEIGHTS = """\
    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.01)
                nn.init.zeros_(module.bias)"""


def _stage_node(index: int, stage: StageSpec, in_channels: str, dropout: float) -> _Keyword:
    kernel = f"kernel_size={int(stage.kernel_size)}"
    if stage.kind == "mlp":
        block = _Call(
            "MLPConv2d",
            (
                in_channels,
                str(int(stage.width)),
                kernel,
                _Keyword("mlp_widths", _tuple(stage.mlp_widths)),
            ),
        )
    else:
        block = _Call("ConvNormAct", (in_channels, str(int(stage.width)), kernel))
    layers: list[_Node] = [_Keyword("block", block)]
    if stage.pool != "none":
        pool = {
            "max": _Call("nn.MaxPool2d", _POOL_ARGUMENTS),
            "avg": _Call("nn.AvgPool2d", (*_POOL_ARGUMENTS, "count_include_pad=False")),
        }[stage.pool]
        layers.append(_Keyword("pool", pool))
        if dropout > 0:
            layers.append(_Keyword("drop", _Call("nn.Dropout", (repr(float(dropout)),))))
    return _Keyword(
        f"s{index}", _Call("nn.Sequential", (_Call("OrderedDict", tuple(layers), explode=True),))
    )


def _model_class(spec: ArchSpec, info: ExportInfo, class_name: str) -> str:
    in_channels, num_classes = int(info.in_channels), int(info.num_classes)
    stages: list[_Node] = []
    forward_lines = [f"        # N x {in_channels} x {info.image_size} x {info.image_size}"]
    channels, size = "in_channels", int(info.image_size)
    for index, stage in enumerate(spec.stages):
        stages.append(_stage_node(index, stage, channels, float(spec.dropout)))
        channels = str(int(stage.out_channels))
        if stage.pool != "none":
            size = downsampled_size(size)
        forward_lines.append(
            f"        x = self.stages.s{index}(x)  # N x {channels} x {size} x {size}"
        )
    if spec.head == "nin":
        head = (
            _Keyword("conv", _Call("nn.Conv2d", (channels, "num_classes", "kernel_size=1"))),
            _Keyword("pool", "nn.AdaptiveAvgPool2d(1)"),
            _Keyword("flatten", "nn.Flatten(1)"),
        )
    else:
        head = (
            _Keyword("pool", "nn.AdaptiveAvgPool2d(1)"),
            _Keyword("flatten", "nn.Flatten(1)"),
            _Keyword("fc", _Call("nn.Linear", (channels, "num_classes"))),
        )
    head_doc = {
        "nin": "a 1x1 conv to the classes and global average pooling",
        "linear": "global average pooling and a linear layer",
    }[spec.head]
    num_stages = len(spec.stages)
    return "\n".join(
        [
            f"class {class_name}(nn.Module):",
            f'    """{num_stages} stage{"s" if num_stages > 1 else ""}, then {head_doc}.',
            "",
            "    Args:",
            "        in_channels: Channels of the input images "
            f"(the trained weights expect {in_channels}).",
            f"        num_classes: Number of classes (the trained weights expect {num_classes}).",
            '    """',
            "",
            f"    def __init__(self, *, in_channels: int = {in_channels}, "
            f"num_classes: int = {num_classes}) -> None:",
            "        super().__init__()",
            "        self.num_classes = num_classes",
            *_render(
                _Call("nn.Sequential", (_Call("OrderedDict", tuple(stages), explode=True),)),
                8,
                "self.stages = ",
            ),
            f"        self.num_features = {channels}",
            *_render(
                _Call("nn.Sequential", (_Call("OrderedDict", head, explode=True),)),
                8,
                "self.head = ",
            ),
            "        self._init_weights()",
            "",
            _INIT_WEIGHTS,
            "",
            "    def forward_features(self, x: torch.Tensor) -> torch.Tensor:",
            *forward_lines,
            "        return x",
            "",
            "    def forward_head(self, x: torch.Tensor) -> torch.Tensor:",
            f"        return self.head(x)  # N x {num_classes}",
            "",
            "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
            "        return self.forward_head(self.forward_features(x))",
        ]
    )


def export_source(spec: ArchSpec, info: ExportInfo, *, class_name: str | None = None) -> str:
    """One standalone Python file defining the network of ``spec`` as a PyTorch class.

    The file needs only ``torch``. Its class builds the same modules as
    :func:`nin_search.build_model` (same ``state_dict`` keys and shapes, same initialisation),
    so ``model.load_state_dict(trained.state_dict())`` works with ``strict=True``.

    Args:
        spec: The architecture.
        info: What the header tells: input shape, classes, trial, accuracy, cost.
        class_name: Name of the model class; by default :func:`class_name_for` the study name.

    Returns:
        The source, formatted as ``ruff format`` writes it, ending in a newline.

    Raises:
        ValueError: If ``class_name`` is not a usable identifier, or ``spec`` or ``info``
            holds an impossible value.
    """
    if not isinstance(spec, ArchSpec):
        raise ValueError(f"spec must be an ArchSpec, but got spec={spec!r}.")
    if not isinstance(info, ExportInfo):
        raise ValueError(f"info must be an ExportInfo, but got info={info!r}.")
    # Re-validate: only checked integers, floats and choices may reach the code.
    spec = ArchSpec.from_dict(spec.to_dict())
    if not math.isfinite(spec.dropout):
        raise ValueError(f"dropout must be finite, but got dropout={spec.dropout!r}.")
    name = (
        _check_class_name(class_name) if class_name is not None else class_name_for(info.study_name)
    )
    uses_mlp = any(stage.kind == "mlp" for stage in spec.stages)
    if info.preprocessing is None:
        imports = "from collections import OrderedDict\n\nimport torch\nfrom torch import nn"
        top = [_header(spec, info, name), imports, _all_list([name])]
        preprocessing: list[str] = []
    else:
        imports = (
            "from collections import OrderedDict\nfrom typing import Any\n\n"
            "import torch\nimport torch.nn.functional as F\nfrom torch import nn"
        )
        exported = [*_CONSTANTS, name, "preprocess"]
        top = [_header(spec, info, name), imports, _all_list(exported), _constants(info)]
        preprocessing = [_transform_functions(), _PREPROCESS_FUNCTION]
    definitions = [
        *preprocessing,
        _conv_norm_act_class(spec),
        *([_MLP_CONV_CLASS] if uses_mlp else []),
        _model_class(spec, info, name),
    ]
    # Top-level definitions are two blank lines apart; the header, imports and constants one.
    return "\n\n".join(top) + "\n\n\n" + "\n\n\n".join(definitions) + "\n"


# The metadata keys of a safetensors or ONNX file, all strings (JSON where a value is not).
METADATA_KEYS = (
    "producer",
    "exported",
    "study",
    "trial",
    "val_accuracy",
    "test_accuracy",
    "params",
    "macs",
    "arch",
    "arch_summary",
    "in_channels",
    "num_classes",
    "image_size",
    "classes",
    "preprocessing",
)


def export_metadata(spec: ArchSpec, info: ExportInfo) -> dict[str, str]:
    """What a weights (or ONNX) file needs to say about itself, as strings.

    Args:
        spec: The architecture.
        info: The facts of the export (preprocessing, classes, trial, accuracies, cost).

    Returns:
        The keys of :data:`METADATA_KEYS` that are known: ``producer``, ``exported`` (ISO
        date), ``arch`` (the spec as JSON), ``arch_summary``, shape and counts as decimal
        strings, ``classes`` and ``preprocessing`` as JSON, accuracies as decimal fractions.
    """
    created = _parse_date(info.created) if info.created else datetime.date.today()
    metadata = {
        "producer": f"nin-search {__version__}",
        "exported": created.isoformat(),
        "arch": json.dumps(spec.to_dict(), sort_keys=True),
        "arch_summary": spec.summary(),
        "in_channels": str(int(info.in_channels)),
        "num_classes": str(int(info.num_classes)),
        "image_size": str(int(info.image_size)),
    }
    optional = {
        "study": info.study_name,
        "trial": info.trial_number,
        "val_accuracy": info.val_accuracy,
        "test_accuracy": info.test_accuracy,
        "params": info.params,
        "macs": info.macs,
    }
    metadata.update({key: str(value) for key, value in optional.items() if value is not None})
    if info.class_names:
        metadata["classes"] = json.dumps(list(info.class_names), ensure_ascii=False)
    if info.preprocessing is not None:
        metadata["preprocessing"] = json.dumps(info.preprocessing.to_dict())
    return metadata


def info_from_metadata(
    metadata: dict[str, str], *, weights_file: str | None = None
) -> tuple[ArchSpec, ExportInfo]:
    """The architecture and export facts that :func:`export_metadata` wrote.

    Raises:
        ValueError: When a fact is missing or does not parse (the message names it).
    """
    missing = [
        key for key in ("arch", "in_channels", "num_classes", "image_size") if key not in metadata
    ]
    if missing:
        raise ValueError(f"no nin-search metadata ({', '.join(missing)} missing)")
    try:
        spec = ArchSpec.from_dict(json.loads(metadata["arch"]))
        preprocessing = metadata.get("preprocessing")
        numbers = {
            key: int(metadata[key])
            for key in ("in_channels", "num_classes", "image_size", "trial", "params", "macs")
            if key in metadata
        }
        accuracies = {
            key: float(metadata[key])
            for key in ("val_accuracy", "test_accuracy")
            if key in metadata
        }
        info = ExportInfo(
            in_channels=numbers["in_channels"],
            num_classes=numbers["num_classes"],
            image_size=numbers["image_size"],
            study_name=metadata.get("study"),
            trial_number=numbers.get("trial"),
            params=numbers.get("params"),
            macs=numbers.get("macs"),
            class_names=tuple(json.loads(metadata.get("classes", "[]"))),
            weights_file=weights_file,
            created=metadata.get("exported"),
            preprocessing=(
                None
                if preprocessing is None
                else Preprocessing.from_dict(json.loads(preprocessing))
            ),
            **accuracies,
        )
    except (ValueError, TypeError, SpecError) as error:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"unreadable nin-search metadata: {error}") from None
    return spec, info
