"""Trained weights on disk: safetensors only, so loading never unpickles (never runs) code."""

from __future__ import annotations

from pathlib import Path

import torch

from nin_search.errors import UserError

__all__ = ["load_weights", "save_weights"]


def save_weights(state_dict: dict[str, torch.Tensor], path: str | Path) -> None:
    """Writes a state dict as safetensors (contiguous CPU tensors)."""
    from safetensors.torch import save_file

    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in state_dict.items()}
    save_file(tensors, str(path))


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Reads a safetensors file.

    Raises:
        UserError: If the file is missing or is not safetensors (a pickle is refused unread).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file {str(path)!r} not found; check the path")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise UserError(
            f"{path} is not a safetensors weights file ({str(error).splitlines()[0]}); "
            "nin-search loads only safetensors (pickles can run code): write the file with "
            "nin-search export --weights or safetensors.torch.save_file"
        ) from None
