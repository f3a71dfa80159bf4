"""Batches of a device-resident split: index slices of one permutation, augmented on the device.

Nothing here syncs with the host (the airbench design): the random crop and flip of a batch are
one gather from the split's images.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from nin_search.config import AugmentConfig
from nin_search.data import DeviceData

__all__ = ["augment_batch", "iterate_batches"]


def _crop_flip(
    source: Tensor, index: Tensor, augment: AugmentConfig, generator: torch.Generator
) -> Tensor:
    """``source[index]``, randomly cropped and flipped, in one gather.

    The random crop of the zero-padded image and the flip become one index per output pixel
    into ``source`` (seen as ``(N * H * W) x C`` rows); pixels that fall into the padding are
    zeroed by a mask. No padded copy, no per-image work.
    """
    pad = augment.crop_padding
    batch = index.shape[0]
    _, channels, height, width = source.shape
    device = source.device
    offsets = torch.randint(-pad, pad + 1, (2, batch), device=device, generator=generator)
    columns_in_order = torch.arange(width, device=device)
    if augment.flip:
        flip = torch.rand(batch, device=device, generator=generator) < 0.5
        columns_in_order = torch.where(
            flip[:, None], width - 1 - columns_in_order, columns_in_order
        )
    rows = offsets[0, :, None] + torch.arange(height, device=device)  # N x H
    cols = offsets[1, :, None] + columns_in_order  # N x W
    rows_inside, cols_inside = rows.clamp(0, height - 1), cols.clamp(0, width - 1)
    inside = (rows == rows_inside)[:, :, None] & (cols == cols_inside)[:, None, :]  # N x H x W
    image_rows = index[:, None] * height + rows_inside  # N x H, rows of the (N * H) x W grid
    pixel = image_rows[:, :, None] * width + cols_inside[:, None, :]  # N x H x W
    pixels = source.permute(0, 2, 3, 1).reshape(-1, channels)  # a view when channels_last
    images = pixels.index_select(0, pixel.view(-1)).view(batch, height, width, channels)
    images = images.mul_(inside[..., None].to(images.dtype))
    return images.permute(0, 3, 1, 2)  # N x C x H x W, channels_last memory


def augment_batch(images: Tensor, augment: AugmentConfig, generator: torch.Generator) -> Tensor:
    """Random crop (zero = mean padding) and horizontal flip, batched on the device.

    Returns ``images`` itself when ``augment`` does nothing; otherwise a channels_last batch.
    """
    if augment.crop_padding > 0:
        index = torch.arange(images.shape[0], device=images.device)
        return _crop_flip(images, index, augment, generator)
    if augment.flip:
        flip = torch.rand(images.shape[0], device=images.device, generator=generator) < 0.5
        images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
    return images


def iterate_batches(
    split: DeviceData,
    *,
    batch_size: int,
    augment: AugmentConfig | None = None,
    generator: torch.Generator,
) -> Iterator[tuple[Tensor, Tensor]]:
    """One epoch of shuffled (and augmented) ``(images, labels)`` batches, all on the device.

    Batches are index slices of one device-side permutation; the ragged last batch is dropped.
    Augmentation gathers straight from the split (no intermediate batch copy). Nothing here
    syncs with the host.

    Args:
        split: Normalised images (channels_last) and labels on the device.
        batch_size: Images per batch (at most ``len(split)``).
        augment: Random crop and flip; None for none.
        generator: A generator on the split's device (shuffling and augmentation).
    """
    augment = augment or AugmentConfig()
    images, labels = split.images, split.labels
    num_images = labels.shape[0]
    batch_size = min(batch_size, num_images)
    crop = augment.crop_padding > 0
    if crop and not images.is_contiguous(memory_format=torch.channels_last):
        images = images.contiguous(memory_format=torch.channels_last)  # once, not per batch
    order = torch.randperm(num_images, device=images.device, generator=generator)
    for step in range(max(1, num_images // batch_size)):
        index = order[step * batch_size : (step + 1) * batch_size]
        if crop:
            yield _crop_flip(images, index, augment, generator), labels[index]
        else:
            yield augment_batch(images[index], augment, generator), labels[index]
