"""``build_model(spec)``: an :class:`ArchSpec` -> a PyTorch network, plus its params and MACs."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor, nn

from nin_search.layers import ConvNormAct, Dropout, MLPConv2d
from nin_search.spec import ArchSpec, StageSpec
from nin_search.vocabulary import MLP, NO_POOL

__all__ = [
    "NINNet",
    "build_model",
    "count_macs",
    "count_params",
    "measure_latency_ms",
]


def _make_pool(kind: str) -> nn.Module:
    # NIN's 3x3/2 pooling; padding 1 so that every size >= 1 stays >= 1.
    if kind == "max":
        return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    return nn.AvgPool2d(kernel_size=3, stride=2, padding=1, count_include_pad=False)


def _make_stage(stage: StageSpec, in_channels: int, spec: ArchSpec) -> nn.Sequential:
    """``block`` (plain conv or MLP conv) -> ``pool`` -> ``drop``; the last two when used."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    norm_act = {"batch_norm": spec.batch_norm, "activation": spec.activation}
    if stage.kind == MLP:
        layers["block"] = MLPConv2d(
            in_channels, stage.width, stage.kernel_size, stage.mlp_widths, **norm_act
        )
    else:
        layers["block"] = ConvNormAct(in_channels, stage.width, stage.kernel_size, **norm_act)
    if stage.pool != NO_POOL:
        layers["pool"] = _make_pool(stage.pool)
        if spec.dropout > 0:
            layers["drop"] = Dropout(spec.dropout)
    return nn.Sequential(layers)


def _make_head(kind: str, in_channels: int, num_classes: int) -> nn.Sequential:
    if kind == "nin":
        # NIN: a 1x1 conv to one map per class, then global average pooling.
        return nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(in_channels, num_classes, kernel_size=1),
                pool=nn.AdaptiveAvgPool2d(1),
                flatten=nn.Flatten(1),
            )
        )
    return nn.Sequential(
        OrderedDict(
            pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(1),
            fc=nn.Linear(in_channels, num_classes),
        )
    )


class NINNet(nn.Module):
    """Stages ``s0, s1, ...`` then a head, with timm's interface.

    ``forward_features`` returns the last stage's feature map, ``forward_head`` the logits.

    Weights keep PyTorch's default initialisation. In the short runs a search trains, it
    scored higher than torchvision ResNet's Kaiming-normal (fan-out) convs and N(0, 0.01)
    classifier, which nin-search used before: +2.8 points of validation accuracy on average over
    12 random cifar10-mini-quick trials (95% CI -0.2..+5.9, so likely rather than certain; up to
    +13 at low learning rates, where batch norm makes larger conv weights train slower).
    ``benchmarks/same_trials.py`` measures it.
    """

    def __init__(self, spec: ArchSpec, *, in_channels: int, num_classes: int) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, but got num_classes={num_classes}.")
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, but got in_channels={in_channels}.")
        self.spec = spec
        self.num_classes = num_classes
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        channels = in_channels
        for index, stage in enumerate(spec.stages):
            stages[f"s{index}"] = _make_stage(stage, channels, spec)
            channels = stage.out_channels
        self.stages = nn.Sequential(stages)
        self.num_features = channels
        self.head = _make_head(spec.head, channels, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        return self.stages(x)

    def forward_head(self, x: Tensor) -> Tensor:
        return self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def build_model(spec: ArchSpec, *, in_channels: int, num_classes: int) -> NINNet:
    """Builds the network an :class:`ArchSpec` describes.

    Args:
        spec: The architecture.
        in_channels: Channels of the input images (1 for digits/MNIST, 3 for CIFAR).
        num_classes: Number of classes.

    Returns:
        A :class:`NINNet` with stages named ``stages.s0``, ``stages.s1``, ... and a ``head``.
    """
    return NINNet(spec, in_channels=in_channels, num_classes=num_classes)


def count_params(
    spec: ArchSpec | nn.Module, *, in_channels: int | None = None, num_classes: int | None = None
) -> int:
    """Number of trainable parameters of the network ``spec`` describes, or of a built model.

    Takes the same keywords as :func:`count_macs` (but ``image_size``, which parameters do
    not depend on). A spec is built on PyTorch's meta device: shapes only, no memory.

    Args:
        spec: An :class:`ArchSpec` (then ``in_channels`` and ``num_classes`` are required),
            or a built ``nn.Module``.
        in_channels: Channels of the input images.
        num_classes: Number of classes.

    Raises:
        TypeError: For a spec without ``in_channels`` or ``num_classes``.
    """
    model = spec
    if isinstance(spec, ArchSpec):
        if in_channels is None or num_classes is None:
            raise TypeError(
                "count_params(spec) needs in_channels= and num_classes=, but got "
                f"in_channels={in_channels!r}, num_classes={num_classes!r}."
            )
        with torch.device("meta"):
            model = build_model(spec, in_channels=in_channels, num_classes=num_classes)
    return sum(param.numel() for param in model.parameters() if param.requires_grad)


def _two(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def _window_output(size: tuple[int, int], window: nn.Module) -> tuple[int, int]:
    """The output height and width of a conv or pooling window, by PyTorch's size rule."""
    if isinstance(getattr(window, "padding", 0), str) or getattr(window, "ceil_mode", False):
        raise NotImplementedError(f"count_macs cannot follow {window!r}")  # not built here
    kernel, stride, padding = (
        _two(getattr(window, name)) for name in ("kernel_size", "stride", "padding")
    )
    dilation = _two(getattr(window, "dilation", 1))
    return (
        (size[0] + 2 * padding[0] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1,
        (size[1] + 2 * padding[1] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1,
    )


def count_macs(spec: ArchSpec, *, in_channels: int, num_classes: int, image_size: int) -> int:
    """Multiply-accumulates per image (convs and linear layers), as PyTorch counts them.

    Builds the network on the meta device (no memory) and walks its layers in the order they
    run (the stages and the head are one chain), following the image's size through each conv
    and pooling window: no compute. ``torch.utils.flop_counter.FlopCounterMode`` gives the
    same count (a test compares them on sampled architectures), but its forward pass on the
    meta device cost about a second the first time in each process: every worker's first
    trial paid it.
    """
    with torch.device("meta"):
        model = build_model(spec, in_channels=in_channels, num_classes=num_classes)
    size = (image_size, image_size)
    macs = 0
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            size = _window_output(size, module)
            kernel = module.kernel_size[0] * module.kernel_size[1]
            per_output = kernel * module.in_channels // module.groups
            macs += size[0] * size[1] * module.out_channels * per_output
        elif isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
            size = _window_output(size, module)
        elif isinstance(module, nn.AdaptiveAvgPool2d):
            size = _two(module.output_size)
        elif isinstance(module, nn.Linear):
            macs += module.in_features * module.out_features
    return macs


def measure_latency_ms(
    model: nn.Module,
    *,
    in_channels: int,
    image_size: int,
    batch_size: int,
    runs: int,
    warmup: int = 3,
) -> float:
    """Median milliseconds of one inference forward pass of ``batch_size`` images, over
    ``runs`` passes after ``warmup`` untimed ones (``cost.latency_batch_size`` and
    ``cost.latency_runs`` of the study), on the model's device."""
    import statistics
    import time

    device = next(model.parameters()).device
    images = torch.randn(batch_size, in_channels, image_size, image_size, device=device)
    images = images.contiguous(memory_format=torch.channels_last)
    was_training = model.training
    model.eval()
    timings = []
    with torch.inference_mode():
        for index in range(warmup + runs):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            started = time.perf_counter()
            model(images)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if index >= warmup:
                timings.append((time.perf_counter() - started) * 1000.0)
    model.train(was_training)
    return statistics.median(timings)
