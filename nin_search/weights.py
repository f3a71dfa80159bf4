"""Trained weights on disk: safetensors only, so loading never unpickles (never runs) code.

A safetensors file carries a string-to-string metadata header; nin-search writes there what the
weights are and how to use them (see :func:`nin_search.export.export_metadata`), so a weights
file alone says what it is: ``safe_open(path, "pt").metadata()`` reads it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from nin_search.errors import UserError
from nin_search.outputs import check_input_file, write_bytes_atomic

WEIGHTS_FIX = "pass the .safetensors file `nin-search export --weights` or `train` wrote"

__all__ = ["load_weights", "read_metadata", "save_weights"]


def save_weights(
    state_dict: dict[str, torch.Tensor],
    path: str | Path,
    *,
    metadata: dict[str, str] | None = None,
) -> None:
    """Writes a state dict as safetensors (contiguous CPU tensors), atomically, mode 0644.

    Args:
        state_dict: The tensors.
        path: The file to write (written to a temporary name, then renamed).
        metadata: Strings for the file's metadata header (e.g. from ``export_metadata``).
    """
    from safetensors.torch import save

    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state_dict.items()}
    write_bytes_atomic(Path(path), save(tensors, metadata=metadata))


def _refuse(path: Path, error: Exception) -> UserError:
    return UserError(
        f"{path} is not a safetensors weights file ({str(error).splitlines()[0]}); "
        "nin-search loads only safetensors (pickles can run code): write the file with "
        "nin-search export --weights or safetensors.torch.save_file"
    )


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Reads a safetensors file.

    Raises:
        UserError: If the file is missing or is not safetensors (a pickle is refused unread).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    check_input_file("weights file", path, WEIGHTS_FIX)
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise _refuse(path, error) from None


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata header of a safetensors file (empty when it has none).

    Raises:
        UserError: If the file is missing or is not safetensors.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    check_input_file("weights file", path, WEIGHTS_FIX)
    try:
        with safe_open(str(path), framework="pt") as file:
            return dict(file.metadata() or {})
    except (SafetensorError, OSError, ValueError) as error:
        raise _refuse(path, error) from None
