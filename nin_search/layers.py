"""Building blocks: a conv-norm-activation unit and the MLP conv (Network-in-Network) block."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from nin_search.spec import check_kernel_size
from nin_search.vocabulary import ACTIVATIONS

__all__ = ["ACTIVATION_MODULES", "ConvNormAct", "Dropout", "MLPConv2d", "make_activation"]

# vocabulary.ACTIVATIONS -> the module class (a test asserts the keys agree).
ACTIVATION_MODULES: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}


def make_activation(name: str) -> nn.Module:
    """``"relu"``, ``"gelu"`` or ``"silu"`` as a module (in-place where it can be)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, but got {name!r}.")
    return nn.ReLU(inplace=True) if name == "relu" else ACTIVATION_MODULES[name]()


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose mask costs about a third as much when training on the CPU.

    On the CPU ``nn.Dropout`` draws its mask with ``bernoulli_``, which took a sixth of a bf16
    training step at the cifar10-mini study's typical widths (``benchmarks/cpu_bf16.py
    --profile``). This draws 15 random bits per element from the same generator (four per
    64-bit ``random_`` draw) and keeps an element when they reach a threshold, so the drop
    rate is ``p`` rounded to 1/32768 and kept values are scaled by 1 / (1 - that rate): the
    same expectation as ``nn.Dropout``. Seeded runs stay reproducible. Evaluation, other
    devices and memory layouts other than contiguous or channels-last use ``nn.Dropout``
    itself, and the exported code writes ``nn.Dropout``: the two differ only in how the
    random mask is drawn.
    """

    def forward(self, input: Tensor) -> Tensor:
        if (
            not self.training
            or self.inplace
            or not 0.0 < self.p < 1.0
            or input.device.type != "cpu"
            or not (input.is_contiguous() or input.is_contiguous(memory_format=torch.channels_last))
        ):
            return super().forward(input)
        threshold = min(round(self.p * 32768), 32767)  # drop where 15 random bits are below
        count = input.numel()
        words = torch.empty((count + 3) // 4, dtype=torch.int64, device=input.device)
        # random_() fills 63 bits: four 15-bit fields per word once the sign bits are masked.
        bits = words.random_().view(torch.int16)[:count].bitwise_and_(0x7FFF)
        keep = bits.as_strided(input.shape, input.stride()) >= threshold
        scale = 32768 / (32768 - threshold)
        return input * (keep.to(input.dtype) * scale)


class ConvNormAct(nn.Sequential):
    """``conv`` (k x k, "same" padding) -> optional ``bn`` -> ``act``.

    The conv has a bias only when there is no BatchNorm (NIN used biases and no BN).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        *,
        batch_norm: bool = True,
        activation: str = "relu",
    ) -> None:
        check_kernel_size(kernel_size)  # a SpecError, which is a ValueError
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["conv"] = nn.Conv2d(
            in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=not batch_norm
        )
        if batch_norm:
            layers["bn"] = nn.BatchNorm2d(out_channels)
        layers["act"] = make_activation(activation)
        super().__init__(layers)
        self.out_channels = out_channels


class MLPConv2d(nn.Module):
    """MLP conv, the Network-in-Network block: one k x k conv, then stacked 1x1 convs.

    Each conv is followed by optional BatchNorm and the activation. Usable on its own::

        block = MLPConv2d(3, 192, kernel_size=5, mlp_widths=(160, 96), batch_norm=False)
        block(torch.randn(8, 3, 32, 32)).shape  # (8, 96, 32, 32)

    Args:
        in_channels: Input channels.
        width: Out channels of the k x k conv.
        kernel_size: Side of the k x k conv (odd).
        mlp_widths: Out channels of each 1x1 conv, in order (at least one).
        batch_norm: BatchNorm after every conv (biases off when on).
        activation: ``"relu"``, ``"gelu"`` or ``"silu"``.
    """

    def __init__(
        self,
        in_channels: int,
        width: int,
        kernel_size: int,
        mlp_widths: Sequence[int],
        *,
        batch_norm: bool = True,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if not mlp_widths:
            raise ValueError("MLPConv2d needs at least one 1x1 layer, but got mlp_widths=[].")
        self.conv = ConvNormAct(
            in_channels, width, kernel_size, batch_norm=batch_norm, activation=activation
        )
        layers = []
        channels = width
        for mlp_width in mlp_widths:
            layers.append(
                ConvNormAct(channels, mlp_width, 1, batch_norm=batch_norm, activation=activation)
            )
            channels = mlp_width
        self.mlp = nn.Sequential(*layers)
        self.out_channels = channels

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(self.conv(x))
