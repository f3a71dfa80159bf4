"""Named architectures: the original NIN for CIFAR-10 and its plain-conv counterpart."""

from __future__ import annotations

from nin_search.spec import ArchSpec, StageSpec

__all__ = ["PRESETS", "nin_cifar10", "plain_cifar10"]


def nin_cifar10() -> ArchSpec:
    """The NIN CIFAR-10 network of the Caffe model zoo (Lin et al., 2014).

    conv 5x5/192 -> cccp 160 -> cccp 96, max-pool 3x3/2, dropout 0.5;
    conv 5x5/192 -> cccp 192 -> cccp 192, avg-pool 3x3/2, dropout 0.5;
    conv 3x3/192 -> cccp 192; head: 1x1 conv to the classes + global average pooling.
    No BatchNorm, conv biases on: 966,986 parameters for 3 input channels and 10 classes.
    """
    return ArchSpec(
        stages=(
            StageSpec("mlp", kernel_size=5, width=192, mlp_widths=(160, 96), pool="max"),
            StageSpec("mlp", kernel_size=5, width=192, mlp_widths=(192, 192), pool="avg"),
            StageSpec("mlp", kernel_size=3, width=192, mlp_widths=(192,), pool="none"),
        ),
        head="nin",
        batch_norm=False,
        activation="relu",
        dropout=0.5,
    )


def plain_cifar10() -> ArchSpec:
    """:func:`nin_cifar10` with every 1x1 layer removed: each stage one plain k x k conv."""
    nin = nin_cifar10()
    stages = tuple(
        StageSpec("plain", kernel_size=stage.kernel_size, width=stage.width, pool=stage.pool)
        for stage in nin.stages
    )
    return ArchSpec(
        stages=stages,
        head=nin.head,
        batch_norm=nin.batch_norm,
        activation=nin.activation,
        dropout=nin.dropout,
    )


PRESETS = {"nin_cifar10": nin_cifar10, "plain_cifar10": plain_cifar10}
