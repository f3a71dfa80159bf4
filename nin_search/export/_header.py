"""The module docstring of an exported file: provenance, numbers, and how to use it."""

from __future__ import annotations

import datetime
import keyword
import re
import textwrap

from nin_search.export._format import LINE_LENGTH
from nin_search.export._info import ExportInfo, parse_date, safe_text
from nin_search.spec import ArchSpec

_MAX_STUDY_NAME_LENGTH = 60  # characters shown in the header
_MAX_CLASS_LABEL_LENGTH = 40  # characters per class name shown in the header
_MAX_CLASS_LABELS = 100  # class names shown in the header; the rest are counted
_MAX_WEIGHTS_NAME_LENGTH = 60  # characters of the weights file name in the loading example
_MAX_MODULE_NAME_LENGTH = 30  # characters of the module name in the usage example
_MAX_TRAINING_LENGTH = 200  # characters of the training note
_DEFAULT_WEIGHTS_FILE = "model.safetensors"
_DEFAULT_MODULE_NAME = "model"
_KEY_WIDTH = len("Validation accuracy: ")  # header values start in this column


def _module_name(info: ExportInfo) -> str:
    name = info.module_name or ""
    usable = name.isascii() and name.isidentifier() and not keyword.iskeyword(name)
    return name if usable and len(name) <= _MAX_MODULE_NAME_LENGTH else _DEFAULT_MODULE_NAME


def _usage_example(info: ExportInfo, class_name: str, weights_name: str) -> list[str]:
    """The docstring's example: load the weights; with preprocessing, classify an image file."""
    load = [
        f"    model = {class_name}()",
        f'    model.load_state_dict(load_file("{weights_name}"))',
        "    model.eval()",
    ]
    if info.preprocessing is None:
        return [
            "Load the trained weights (a safetensors file)::",
            "",
            "    from safetensors.torch import load_file",
            "",
            *load,
        ]
    channels, size = info.preprocessing.channels, info.preprocessing.image_size
    module = _module_name(info)
    names = f"CLASSES, {class_name}, preprocess"
    imports = [f"    from {module} import {names}"]
    if len(imports[0]) > LINE_LENGTH:
        imports = [
            f"    from {module} import (",
            *(f"        {n}," for n in names.split(", ")),
            "    )",
        ]
    return [
        "As torchvision's weights API: ``transforms()`` is ``preprocess`` as a module (one",
        "image gives one input, for ``ImageFolder(root, transform=transforms())``), and",
        '``META["categories"]`` is ``CLASSES``.',
        "",
        "Classify an image file (Pillow decodes it; ``preprocess`` does what training did)::",
        "",
        "    import torch",
        "    from PIL import Image",
        "    from safetensors.torch import load_file",
        "",
        *imports,
        "",
        *load,
        '    with Image.open("image.png") as image:',
        f"        batch = preprocess(image)  # 1 x {channels} x {size} x {size}",
        "    with torch.no_grad():",
        "        probabilities = model(batch).softmax(dim=1)[0]",
        '    print(CLASSES[int(probabilities.argmax())], f"{float(probabilities.max()):.1%}")',
    ]


def header(spec: ArchSpec, info: ExportInfo, class_name: str) -> str:
    """The module docstring: provenance, numbers, preprocessing, and how to use the file."""
    rows: list[tuple[str, str]] = []
    study = safe_text(info.study_name or "", max_length=_MAX_STUDY_NAME_LENGTH)
    if study:
        rows.append(("Study", study))
    if info.trial_number is not None:
        rows.append(("Trial", str(int(info.trial_number))))
    note = safe_text(info.val_note or "", max_length=_MAX_STUDY_NAME_LENGTH)
    if info.val_accuracy is not None:
        accuracy = f"{100 * float(info.val_accuracy):.2f}%" + (f" ({note})" if note else "")
        rows.append(("Validation accuracy", accuracy))
    elif note:
        rows.append(("Validation accuracy", f"none ({note})"))
    if info.test_accuracy is not None:
        rows.append(("Test accuracy", f"{100 * float(info.test_accuracy):.2f}%"))
    if info.seed is not None or info.precision is not None:
        trained = ", ".join(
            part
            for part in (
                None if info.seed is None else f"seed {int(info.seed)}",
                None if info.precision is None else f"{info.precision} (this file runs float32)",
            )
            if part
        )
        rows.append(("Trained with", trained))
    training = safe_text(info.training or "", max_length=_MAX_TRAINING_LENGTH)
    if training:
        rows.append(("Training", training))
    if info.params is not None:
        rows.append(("Parameters", f"{int(info.params):,}"))
    if info.macs is not None:
        rows.append(("MACs", f"{int(info.macs):,} per image"))
    channels, size = int(info.in_channels), int(info.image_size)
    rows.append(("Input", f"{channels} x {size} x {size} (channels x height x width)"))
    if info.preprocessing is not None:
        rows.append(("Preprocessing", f"{info.preprocessing.describe()}; see preprocess"))
    classes = str(int(info.num_classes))
    if info.class_names:
        labels = [
            safe_text(name, max_length=_MAX_CLASS_LABEL_LENGTH) or f"class {index}"
            for index, name in enumerate(info.class_names[:_MAX_CLASS_LABELS])
        ]
        hidden = len(info.class_names) - len(labels)
        classes += f": {', '.join(labels)}" + (f" and {hidden} more" if hidden else "")
    rows.append(("Classes", classes))
    rows.append(("Architecture", spec.summary()))
    created = parse_date(info.created) if info.created else datetime.date.today()
    rows.append(
        (
            "Exported",
            f"{created.isoformat()} by nin-search; needs PyTorch (and safetensors to read a "
            "weights file)",
        )
    )
    lines = [f'"""{class_name}: an image classifier found by nin-search.', ""]
    for key, value in rows:
        wrapped = textwrap.wrap(
            value,
            width=LINE_LENGTH,
            initial_indent=f"{key}:".ljust(_KEY_WIDTH),
            subsequent_indent=" " * _KEY_WIDTH,
            break_on_hyphens=False,
        )
        lines += [line.rstrip() for line in wrapped]  # wrap leaves a space before a broken word
    weights_name = re.split(r"[/\\]", info.weights_file or "")[-1]
    weights_name = safe_text(weights_name, max_length=_MAX_WEIGHTS_NAME_LENGTH)
    weights_name = weights_name.lstrip(".") or _DEFAULT_WEIGHTS_FILE
    lines += ["", *_usage_example(info, class_name, weights_name), '"""']
    return "\n".join(lines)
