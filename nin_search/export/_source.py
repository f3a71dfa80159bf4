"""``export_source(spec, info)``: the whole standalone file, from its parts."""

from __future__ import annotations

import builtins
import keyword
import math

from nin_search.export._format import all_list
from nin_search.export._header import header
from nin_search.export._info import MAX_CLASS_NAME_LENGTH, ExportInfo, class_name_for
from nin_search.export._network import MLP_CONV_CLASS, conv_norm_act_class, model_class
from nin_search.export._preprocess import (
    PREPROCESS_CONSTANTS,
    PREPROCESS_FUNCTION,
    PREPROCESS_NAMES,
    TRANSFORM_FUNCTIONS,
    preprocess_constants,
    transform_functions,
)
from nin_search.spec import ArchSpec
from nin_search.vocabulary import MLP

# Names the generated module defines or uses: a model class must not shadow them.
_GENERATED_NAMES = {
    "Any",
    "ConvNormAct",
    "F",
    "MLPConv2d",
    "OrderedDict",
    "nn",
    "torch",
    "warnings",
    "__all__",
    "__file__",
    *PREPROCESS_CONSTANTS,
    *PREPROCESS_NAMES,
    *TRANSFORM_FUNCTIONS,
}
_RESERVED_NAMES = frozenset(_GENERATED_NAMES | set(dir(builtins)))


def check_class_name(class_name: object) -> str:
    if (
        not isinstance(class_name, str)
        or not class_name.isascii()
        or not class_name.isidentifier()
        or keyword.iskeyword(class_name)
        or len(class_name) > MAX_CLASS_NAME_LENGTH
    ):
        raise ValueError(
            f"class_name must be an ASCII Python identifier of at most {MAX_CLASS_NAME_LENGTH} "
            f"characters (not a keyword), but got class_name={class_name!r}."
        )
    if class_name in _RESERVED_NAMES:
        raise ValueError(
            f"class_name must not shadow a name the exported file uses, "
            f"but got class_name={class_name!r}; try {class_name + 'Net'!r}."
        )
    return class_name


def export_source(spec: ArchSpec, info: ExportInfo, *, class_name: str | None = None) -> str:
    """One standalone Python file defining the network of ``spec`` as a PyTorch class.

    The file needs only ``torch``. Its class builds the same modules as
    :func:`nin_search.build_model` (same ``state_dict`` keys and shapes, same initialisation),
    so ``model.load_state_dict(trained.state_dict())`` works with ``strict=True``.

    Args:
        spec: The architecture.
        info: What the header tells: input shape, classes, trial, accuracy, cost.
        class_name: Name of the model class; by default :func:`class_name_for` the study name.

    Returns:
        The source, formatted as ``ruff format`` writes it, ending in a newline.

    Raises:
        ValueError: If ``class_name`` is not a usable identifier, or ``spec`` or ``info``
            holds an impossible value.
    """
    if not isinstance(spec, ArchSpec):
        raise ValueError(f"spec must be an ArchSpec, but got spec={spec!r}.")
    if not isinstance(info, ExportInfo):
        raise ValueError(f"info must be an ExportInfo, but got info={info!r}.")
    # Re-validate: only checked integers, floats and choices may reach the code.
    spec = ArchSpec.from_dict(spec.to_dict())
    if not math.isfinite(spec.dropout):
        raise ValueError(f"dropout must be finite, but got dropout={spec.dropout!r}.")
    name = (
        check_class_name(class_name) if class_name is not None else class_name_for(info.study_name)
    )
    uses_mlp = any(stage.kind == MLP for stage in spec.stages)
    if info.preprocessing is None:
        imports = "from collections import OrderedDict\n\nimport torch\nfrom torch import nn"
        top = [header(spec, info, name), imports, all_list([name])]
        preprocessing: list[str] = []
    else:
        imports = (
            "import warnings\nfrom collections import OrderedDict\nfrom typing import Any\n\n"
            "import torch\nimport torch.nn.functional as F\nfrom torch import nn"
        )
        exported = [*PREPROCESS_CONSTANTS, "META", name, "preprocess", "transforms"]
        top = [header(spec, info, name), imports, all_list(exported), preprocess_constants(info)]
        preprocessing = [transform_functions(), PREPROCESS_FUNCTION]
    definitions = [
        *preprocessing,
        conv_norm_act_class(spec),
        *([MLP_CONV_CLASS] if uses_mlp else []),
        model_class(spec, info, name),
    ]
    # Top-level definitions are two blank lines apart; the header, imports and constants one.
    return "\n\n".join(top) + "\n\n\n" + "\n\n\n".join(definitions) + "\n"
