"""A trained network -> an ONNX file with a dynamic batch and the preprocessing in its metadata.

PyTorch's ``torch.export``-based exporter (``torch.onnx.export(..., dynamo=True)``, the default
since PyTorch 2.9; it needs ``onnx`` and ``onnxscript``) writes the graph: one input
``images`` (float32 ``batch x C x H x W``, already preprocessed) and one output ``logits``
(``batch x num_classes``). The metadata props hold :func:`nin_search.export.export_metadata`
(preprocessing as JSON, class names, architecture, study, trial, accuracies), which
``onnx.load(path).metadata_props`` and ``onnxruntime``'s ``get_modelmeta().custom_metadata_map``
read. The extra that brings these packages: ``pip install 'nin-search[onnx]'``. No optuna here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import warnings
from pathlib import Path

import torch
from torch import nn

from nin_search.errors import UserError
from nin_search.outputs import write_atomic

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "check_onnx_available", "export_onnx"]

INPUT_NAME = "images"  # the graph's input: preprocessed images, batch x C x H x W
OUTPUT_NAME = "logits"  # the graph's output: batch x num_classes
_NEEDED = ("onnx", "onnxscript")  # what torch.onnx.export(dynamo=True) imports


def check_onnx_available() -> None:
    """Raises :class:`UserError` (one line: what to install) when the ONNX exporter cannot run."""
    missing = [name for name in _NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(
            f"ONNX export needs {' and '.join(missing)}, which are not installed; "
            "install the extra: pip install 'nin-search[onnx]'"
        )


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    in_channels: int,
    image_size: int,
    metadata: dict[str, str],
) -> None:
    """Writes ``model`` as ONNX to ``path`` (atomically; mode 0644 under the usual umask).

    Args:
        model: The trained network (moved to the CPU and put in eval mode here).
        path: The ``.onnx`` file to write.
        in_channels: Channels of the input images.
        image_size: Side of the (square) input images, in pixels.
        metadata: Strings for the model's metadata props.

    Raises:
        UserError: When the ``onnx`` extra is missing.
    """
    check_onnx_available()
    model = model.cpu().eval()
    sample = torch.zeros(2, in_channels, image_size, image_size)
    batch = torch.export.Dim("batch")
    # The exporter reports its progress on stdout and warns about its own internals.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (sample,),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            verbose=False,
        )
    program.model.metadata_props.update(metadata)
    write_atomic(Path(path), lambda temporary: program.save(str(temporary)))
