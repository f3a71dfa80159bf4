"""``export_source(spec, info)``: an :class:`ArchSpec` -> one standalone PyTorch source file.

The generated file imports only ``torch`` and the standard library, reads like a hand-written
torchvision model (named blocks, shape comments, ``forward_features`` / ``forward_head``), and
its ``state_dict`` matches :func:`nin_search.build_model` key for key, so trained weights load
with ``strict=True``. It comes out already formatted the way ``ruff format`` would write it.

User text (study name, class names, weights file name) only ever reaches the docstring, reduced
to ``[A-Za-z0-9 _.-]`` and capped in length; everything in the code comes from a re-validated spec
(integers, floats written with ``repr``, and fixed snippets looked up by choice).

Weights travel as safetensors: :func:`save_weights` and :func:`load_weights` (from
:mod:`nin_search.weights`) never pickle, so loading a file never runs code.
"""

from __future__ import annotations

import builtins
import datetime
import keyword
import math
import os
import re
import textwrap
from dataclasses import dataclass

from nin_search.config import downsampled_size
from nin_search.spec import ArchSpec, StageSpec
from nin_search.weights import load_weights, save_weights

__all__ = ["ExportInfo", "class_name_for", "export_source", "load_weights", "save_weights"]

LINE_LENGTH = 100  # characters, the project's ruff setting
MAX_CLASS_NAME_LENGTH = 60  # characters; keeps `model = ClassName()` lines short
_MAX_STUDY_NAME_LENGTH = 60  # characters shown in the header
_MAX_CLASS_LABEL_LENGTH = 40  # characters per class name shown in the header
_MAX_CLASS_LABELS = 100  # class names shown in the header; the rest are counted
_MAX_WEIGHTS_NAME_LENGTH = 60  # characters of the weights file name in the loading example
_DEFAULT_WEIGHTS_FILE = "model.safetensors"
_DEFAULT_CLASS_NAME = "NinSearchNet"
_UNSAFE_TEXT = re.compile(r"[^A-Za-z0-9 _.\-]+")
_KEY_WIDTH = len("Validation accuracy: ")  # header values start in this column
# Names the generated module defines or uses: a model class must not shadow them.
_GENERATED_NAMES = {"ConvNormAct", "MLPConv2d", "OrderedDict", "nn", "torch", "__all__", "__file__"}
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

    def __post_init__(self) -> None:
        _check_int("in_channels", self.in_channels, minimum=1)
        _check_int("num_classes", self.num_classes, minimum=2)
        _check_int("image_size", self.image_size, minimum=1)
        for name in ("trial_number", "params", "macs"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), minimum=0)
        accuracy = self.val_accuracy
        if accuracy is not None and (
            isinstance(accuracy, bool)
            or not isinstance(accuracy, (int, float))
            or not 0.0 <= accuracy <= 1.0
        ):
            raise ValueError(f"val_accuracy must be in [0, 1], but got val_accuracy={accuracy!r}.")
        for name in ("study_name", "created"):
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
        isinstance(node, str) or len(pad + prefix + flat + suffix) <= LINE_LENGTH
    ):
        return [pad + prefix + flat + suffix]
    arguments = node.arguments
    opening, closing = f"{pad}{prefix}{node.function}(", f"{pad}){suffix}"
    if not node.explode and node.function:  # a tuple that does not fit is one item a line
        body = [_flat(argument) for argument in arguments]
        line = " " * (indent + 4) + ", ".join(body) if None not in body else None
        if line is not None and len(line) <= LINE_LENGTH:
            return [opening, line, closing]
        if len(arguments) == 1:
            return [opening, *_render(arguments[0], indent + 4), closing]
    lines = [opening]
    for argument in arguments:
        lines += _render(argument, indent + 4, suffix=",")
    return [*lines, closing]


def _header(spec: ArchSpec, info: ExportInfo, class_name: str) -> str:
    """The module docstring: provenance, numbers, and how to load the weights."""
    rows: list[tuple[str, str]] = []
    study = _safe_text(info.study_name or "", max_length=_MAX_STUDY_NAME_LENGTH)
    if study:
        rows.append(("Study", study))
    if info.trial_number is not None:
        rows.append(("Trial", str(int(info.trial_number))))
    if info.val_accuracy is not None:
        rows.append(("Validation accuracy", f"{100 * float(info.val_accuracy):.2f}%"))
    if info.params is not None:
        rows.append(("Parameters", f"{int(info.params):,}"))
    if info.macs is not None:
        rows.append(("MACs", f"{int(info.macs):,} per image"))
    channels, size = int(info.in_channels), int(info.image_size)
    rows.append(("Input", f"{channels} x {size} x {size} (channels x height x width)"))
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
    lines += [
        "",
        "Load the trained weights (a safetensors file)::",
        "",
        "    from safetensors.torch import load_file",
        "",
        f"    model = {class_name}()",
        f'    model.load_state_dict(load_file("{weights_name}"))',
        "    model.eval()",
        '"""',
    ]
    return "\n".join(lines)


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
    sections = [
        _header(spec, info, name),
        "from collections import OrderedDict\n\nimport torch\nfrom torch import nn",
        f'__all__ = ["{name}"]',
        _conv_norm_act_class(spec),
        *([_MLP_CONV_CLASS] if uses_mlp else []),
        _model_class(spec, info, name),
    ]
    # Top-level definitions are two blank lines apart; the header and imports one.
    return (
        f"{sections[0]}\n\n{sections[1]}\n\n{sections[2]}\n\n\n"
        + "\n\n\n".join(sections[3:])
        + "\n"
    )
