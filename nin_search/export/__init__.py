"""``export_source(spec, info)``: an :class:`ArchSpec` -> one standalone PyTorch source file.

The generated file imports only ``torch`` and the standard library, reads like a hand-written
torchvision model (named blocks, shape comments, ``forward_features`` / ``forward_head``), and
its ``state_dict`` matches :func:`nin_search.build_model` key for key, so trained weights load
with ``strict=True``. It comes out already formatted the way ``ruff format`` would write it.

With :class:`~nin_search.preprocessing.Preprocessing` facts in ``info`` the file is deployable:
it also holds them as constants (``CHANNELS``, ``IMAGE_SIZE``, ``RESIZE``, ``INPUT_MAX``,
``MEAN``, ``STD``, ``CLASSES``) and a ``preprocess(image)`` function built from the functions of
:mod:`nin_search.transforms`, copied verbatim, so a decoded image becomes exactly the tensor the
network was trained on. :func:`export_metadata` gives the same facts as strings for the
metadata of a safetensors or ONNX file; :func:`info_from_metadata` reads them back.

User text (study name, weights file name, module name) only reaches the docstring, reduced to
``[A-Za-z0-9 _.-]`` and capped in length. Class names reach the code only as string literals
that this module escapes itself (every character outside printable text becomes an escape), so
they evaluate to exactly the names given. Everything else in the code comes from a re-validated
spec and validated preprocessing facts (integers, floats written with ``repr``, and fixed
snippets looked up by choice).

Weights travel as safetensors: :func:`save_weights` and :func:`load_weights` (from
:mod:`nin_search.weights`) never pickle, so loading a file never runs code.
"""

from typing import TYPE_CHECKING, Any

from nin_search.export._info import MAX_CLASS_NAME_LENGTH, ExportInfo, class_name_for
from nin_search.export._metadata import METADATA_KEYS, export_metadata, info_from_metadata
from nin_search.export._source import export_source

if TYPE_CHECKING:
    from nin_search.weights import load_weights, save_weights

__all__ = [
    "MAX_CLASS_NAME_LENGTH",
    "METADATA_KEYS",
    "ExportInfo",
    "class_name_for",
    "export_metadata",
    "export_source",
    "info_from_metadata",
    "load_weights",
    "save_weights",
]


def __getattr__(name: str) -> Any:
    """``load_weights`` and ``save_weights`` on first use (PEP 562): they load PyTorch, and
    writing a source file does not need it."""
    if name in ("load_weights", "save_weights"):
        from nin_search import weights

        return getattr(weights, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
