"""The network part of an exported file: ``ConvNormAct``, ``MLPConv2d`` and the model class,
with the same modules (and ``state_dict`` keys) as :func:`nin_search.build_model`."""

from __future__ import annotations

from nin_search.config import downsampled_size
from nin_search.export._format import Call, Keyword, Node, render, tuple_node
from nin_search.export._info import ExportInfo
from nin_search.spec import ArchSpec, StageSpec
from nin_search.vocabulary import MLP, NO_POOL

# Code snippets by choice, keyed by the vocabulary's names (a test asserts the keys agree): a
# spec's strings select code, they are never written into it.
ACTIVATION_CODE = {"relu": "nn.ReLU(inplace=True)", "gelu": "nn.GELU()", "silu": "nn.SiLU()"}
ACTIVATION_NAMES = {"relu": "ReLU", "gelu": "GELU", "silu": "SiLU"}
_POOL_ARGUMENTS = ("kernel_size=3", "stride=2", "padding=1")
POOL_CODE = {
    "max": Call("nn.MaxPool2d", _POOL_ARGUMENTS),
    "avg": Call("nn.AvgPool2d", (*_POOL_ARGUMENTS, "count_include_pad=False")),
}
HEAD_DOCS = {
    "nin": "a 1x1 conv to the classes and global average pooling",
    "linear": "global average pooling and a linear layer",
}


def conv_norm_act_class(spec: ArchSpec) -> str:
    activation = ACTIVATION_CODE[spec.activation]
    activation_name = ACTIVATION_NAMES[spec.activation]
    if spec.batch_norm:
        doc = f'``conv`` (k x k, "same" padding, no bias) -> ``bn`` -> ``act`` ({activation_name}).'
        conv_keywords = ("padding=kernel_size // 2", "bias=False")
    else:
        doc = f'``conv`` (k x k, "same" padding, with bias) -> ``act`` ({activation_name}).'
        conv_keywords = ("padding=kernel_size // 2",)
    layers = [
        Keyword(
            "conv",
            Call("nn.Conv2d", ("in_channels", "out_channels", "kernel_size", *conv_keywords)),
        )
    ]
    if spec.batch_norm:
        layers.append(Keyword("bn", Call("nn.BatchNorm2d", ("out_channels",))))
    layers.append(Keyword("act", activation))
    body = render(Call("super().__init__", (Call("OrderedDict", tuple(layers), explode=True),)), 8)
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


MLP_CONV_CLASS = '''\
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


def stage_node(index: int, stage: StageSpec, in_channels: str, dropout: float) -> Keyword:
    kernel = f"kernel_size={int(stage.kernel_size)}"
    if stage.kind == MLP:
        block = Call(
            "MLPConv2d",
            (
                in_channels,
                str(int(stage.width)),
                kernel,
                Keyword("mlp_widths", tuple_node(stage.mlp_widths)),
            ),
        )
    else:
        block = Call("ConvNormAct", (in_channels, str(int(stage.width)), kernel))
    layers: list[Node] = [Keyword("block", block)]
    if stage.pool != NO_POOL:
        layers.append(Keyword("pool", POOL_CODE[stage.pool]))
        if dropout > 0:
            layers.append(Keyword("drop", Call("nn.Dropout", (repr(float(dropout)),))))
    return Keyword(
        f"s{index}", Call("nn.Sequential", (Call("OrderedDict", tuple(layers), explode=True),))
    )


def _stages(spec: ArchSpec, info: ExportInfo) -> tuple[list[Node], list[str], str]:
    """The stage nodes, the body of ``forward_features`` with shape comments, and the
    channels of the last stage (the ``num_features``)."""
    stages: list[Node] = []
    forward_lines = [
        f"        # N x {int(info.in_channels)} x {info.image_size} x {info.image_size}"
    ]
    channels, size = "in_channels", int(info.image_size)
    for index, stage in enumerate(spec.stages):
        stages.append(stage_node(index, stage, channels, float(spec.dropout)))
        channels = str(int(stage.out_channels))
        if stage.pool != NO_POOL:
            size = downsampled_size(size)
        forward_lines.append(
            f"        x = self.stages.s{index}(x)  # N x {channels} x {size} x {size}"
        )
    return stages, forward_lines, channels


def _head(head: str, channels: str) -> tuple[Keyword, ...]:
    """The head's layers: ``nin`` (1x1 conv to the classes, then GAP) or ``linear``."""
    if head == "nin":
        return (
            Keyword("conv", Call("nn.Conv2d", (channels, "num_classes", "kernel_size=1"))),
            Keyword("pool", "nn.AdaptiveAvgPool2d(1)"),
            Keyword("flatten", "nn.Flatten(1)"),
        )
    return (
        Keyword("pool", "nn.AdaptiveAvgPool2d(1)"),
        Keyword("flatten", "nn.Flatten(1)"),
        Keyword("fc", Call("nn.Linear", (channels, "num_classes"))),
    )


def _sequential(layers: tuple[Node, ...], prefix: str) -> list[str]:
    """``prefix nn.Sequential(OrderedDict(...))`` in the class's ``__init__``."""
    return render(Call("nn.Sequential", (Call("OrderedDict", layers, explode=True),)), 8, prefix)


def model_class(spec: ArchSpec, info: ExportInfo, class_name: str) -> str:
    """The model class: stages, then the head, with timm's ``forward_features`` and
    ``forward_head``."""
    in_channels, num_classes = int(info.in_channels), int(info.num_classes)
    stages, forward_lines, channels = _stages(spec, info)
    num_stages = len(spec.stages)
    stages_text = f"{num_stages} stage{'s' if num_stages > 1 else ''}"
    return "\n".join(
        [
            f"class {class_name}(nn.Module):",
            f'    """{stages_text}, then {HEAD_DOCS[spec.head]}.',
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
            *_sequential(tuple(stages), "self.stages = "),
            f"        self.num_features = {channels}",
            *_sequential(_head(spec.head, channels), "self.head = "),
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
