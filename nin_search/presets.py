"""Named architectures: the original NIN for CIFAR-10 and its plain-conv counterpart.

Both are built from :data:`nin_search.config_space.NIN_REFERENCE`, the reference table that a
new study's baseline trials are also made from (resolved against the study's space).
"""

from __future__ import annotations

from nin_search.config_space import NIN_REFERENCE, Reference
from nin_search.spec import ArchSpec, StageSpec
from nin_search.vocabulary import MLP, PLAIN

__all__ = ["nin_cifar10", "plain_cifar10"]


def _build(reference: Reference, *, kind: str) -> ArchSpec:
    """The reference network with every stage of ``kind`` (``"plain"`` drops the 1x1 layers)."""
    stages = tuple(
        StageSpec(
            kind,
            kernel_size=stage.kernel_size,
            width=stage.width,
            mlp_widths=stage.mlp_widths if kind == MLP else (),
            pool=stage.pool,
        )
        for stage in reference.stages
    )
    return ArchSpec(
        stages=stages,
        head=reference.head,
        batch_norm=reference.batch_norm,
        activation=reference.activation,
        dropout=reference.dropout,
    )


def nin_cifar10() -> ArchSpec:
    """The NIN CIFAR-10 network of the Caffe model zoo (Lin et al., 2014).

    conv 5x5/192 -> cccp 160 -> cccp 96, max-pool 3x3/2, dropout 0.5;
    conv 5x5/192 -> cccp 192 -> cccp 192, avg-pool 3x3/2, dropout 0.5;
    conv 3x3/192 -> cccp 192; head: 1x1 conv to the classes + global average pooling.
    No BatchNorm, conv biases on: 966,986 parameters for 3 input channels and 10 classes.
    """
    return _build(NIN_REFERENCE, kind=MLP)


def plain_cifar10() -> ArchSpec:
    """:func:`nin_cifar10` with every 1x1 layer removed: each stage one plain k x k conv."""
    return _build(NIN_REFERENCE, kind=PLAIN)
