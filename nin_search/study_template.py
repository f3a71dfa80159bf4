"""``nin-search init``: a fully commented study file to edit, for any dataset.

The file is the shipped ``digits`` study (every key, with its value and a comment; a test
keeps it equal to the embedded default) with the study name and the ``[data]`` section
written for the chosen dataset; its header names the keys whose built-in default (a key
left out) differs from the value shown. No torch, no optuna here.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

import tomllib
from pydantic import ValidationError

from nin_search.config import NATIVE_IMAGE_SIZES, StudyConfig, default_config, torchvision_root
from nin_search.errors import UserError
from nin_search.outputs import check_outputs, write_text_atomic
from nin_search.study_files import SHIPPED_STUDIES_DIR
from nin_search.vocabulary import DATASETS

__all__ = ["left_out_defaults", "study_file_text", "write_study_file"]

_TEMPLATE = "digits.toml"
# Augmentation that suits each dataset: a mirrored digit or letter is another symbol.
_AUGMENT = {
    "digits": (0, False),
    "imagefolder": (4, True),
    "cifar10": (4, True),
    "cifar100": (4, True),
    "mnist": (0, False),
    "fashion-mnist": (2, True),
    "svhn": (4, False),
}


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a TOML basic string takes JSON's escapes


def _leaves(table: dict, prefix: str = "") -> dict[str, object]:
    """``{"study": {"seed": 0}}`` -> ``{"study.seed": 0}`` (a range table stays one value)."""
    leaves: dict[str, object] = {}
    for key, value in table.items():
        if isinstance(value, dict) and not {"low", "high"} <= set(value):
            leaves.update(_leaves(value, f"{prefix}{key}."))
        else:
            leaves[f"{prefix}{key}"] = value
    return leaves


def left_out_defaults(config: StudyConfig | None = None) -> dict[str, object]:
    """The keys whose value in ``config`` differs from what leaving them out gives.

    A key left out of a study file takes :class:`StudyConfig`'s default. The file ``init``
    writes shows the embedded default study (:func:`default_config`), which differs from those
    defaults in three keys (a few-second digits study can afford more random trials and the
    ablation at the end than a study file of unknown cost gets without asking), and in the
    study name and the ``[data]`` section ``init`` writes.

    Args:
        config: The study a file shows; None for the embedded default study.

    Returns:
        ``{"study.random_trials": 10, ...}``: dotted key -> the value a file without it gets
        (``None``: unset).
    """
    built_in = _leaves(StudyConfig().model_dump(mode="json"))
    shown = _leaves((config or default_config()).model_dump(mode="json"))
    return {key: value for key, value in built_in.items() if shown[key] != value}


def _toml_value(value: object) -> str:
    return "unset" if value is None else json.dumps(value)


def _header(config: StudyConfig) -> str:
    exceptions = ", ".join(
        f"{key} = {_toml_value(value)}" for key, value in left_out_defaults(config).items()
    )
    lines = [
        "A nin-search study, written by `nin-search init`: edit it, then run",
        "    nin-search optimize THIS_FILE",
        "Every key is shown with its value; a study file only needs the keys it changes. A key",
        "left out takes its built-in default, which is the value shown except for",
        *textwrap.wrap(exceptions + ".", width=94),
        "",
        "A searchable value is a scalar (fixed), a list (a choice), or a table { low, high, log }",
        "(a range; an integer range when both bounds are integers).",
    ]
    return "".join(f"# {line}\n" if line else "#\n" for line in lines) + "\n"


def _home_relative(path: Path) -> str:
    """``/home/me/.cache/x`` -> ``~/.cache/x`` (a path elsewhere as it is)."""
    home = Path.home()
    return f"~/{path.relative_to(home)}" if path.is_relative_to(home) else str(path)


def _data_section(dataset: str, root: str | None) -> str:
    size = NATIVE_IMAGE_SIZES[dataset]
    crop_padding, flip = _AUGMENT[dataset]
    if dataset == "digits":
        lines = [
            'dataset = "digits"  # scikit-learn\'s 1,797 8x8 handwritten digits, no download',
            "val_fraction = 0.2  # carved from the training images, stratified, fixed seed",
            "split_seed = 0",
            f"# image_size = {size}   # pixels; the dataset's own size when unset",
        ]
    elif dataset == "imagefolder":
        lines = [
            'dataset = "imagefolder"',
            "# root holds train/<class>/*.jpg (and test/<class>/* for `nin-search train`);",
            "# a relative root is relative to this file's folder.",
            f"root = {_toml_string(root or '')}",
            f"image_size = {size}    # pixels: every image is resized (bilinear, antialiased)",
            "val_fraction = 0.2  # carved from the training images, stratified, fixed seed",
            "split_seed = 0",
        ]
    else:
        lines = [
            f"dataset = {_toml_string(dataset)}",
            "# root: where the dataset is, or will be downloaded to.",
            f"root = {_toml_string(root or _home_relative(torchvision_root()))}",
            "download = true  # fetch it on the first run (needs internet)",
            "val_fraction = 0.1  # carved from the training images, stratified, fixed seed",
            "split_seed = 0",
            f"# image_size = {size}  # pixels; the dataset's own size when unset",
        ]
    augment = [
        "",
        "[data.augment]",
        f"crop_padding = {crop_padding}  # random crop after zero padding (pixels); 0 = off",
        f"flip = {'true' if flip else 'false'}  # random horizontal flip (off where a mirror "
        "makes another symbol)",
    ]
    return "\n".join(["[data]", *lines, *augment]) + "\n\n"


def study_file_text(
    *, dataset: str = "digits", root: Path | None = None, name: str, folder: Path
) -> str:
    """The text of a commented study file for ``dataset``.

    Args:
        dataset: One of :data:`nin_search.vocabulary.DATASETS`.
        root: The data folder (required for ``imagefolder``: it must hold ``train/``); written
            relative to ``folder`` so that the study file and its data can move together.
        name: The study's name.
        folder: The folder the study file goes to.

    Raises:
        UserError: For an unknown dataset or an unusable root.
    """
    if dataset not in DATASETS:
        raise UserError(f"--dataset must be one of {', '.join(DATASETS)}, but got {dataset!r}")
    root_text = None
    if dataset == "digits" and root is not None:
        raise UserError(
            "--root is for the image-folder and torchvision datasets; digits ships with "
            "scikit-learn (leave --root out, or pass --dataset)"
        )
    if dataset == "imagefolder":
        if root is None:
            raise UserError("--dataset imagefolder needs --root DIR (the folder holding train/)")
        if not (root / "train").is_dir():
            raise UserError(
                f"--root {str(root)!r} has no train/ folder; pass a folder in ImageFolder "
                "layout: train/<class>/*.jpg (and test/<class>/*.jpg)"
            )
    if root is not None:
        # Relative when the data lives inside the study's folder (they move together).
        resolved, base = root.expanduser().resolve(), folder.resolve()
        inside = resolved == base or base in resolved.parents
        root_text = os.path.relpath(resolved, base) if inside else str(resolved)
    template = (SHIPPED_STUDIES_DIR / _TEMPLATE).read_text(encoding="utf-8")
    body = template[template.index("[study]") :]
    name_line = f"name = {_toml_string(name)}"  # a function: re.sub reads no escapes in it
    body = re.sub(r'^name = ".*"$', lambda _: name_line, body, count=1, flags=re.M)
    start, end = body.index("[data]\n"), body.index("[space]\n")
    body = body[:start] + _data_section(dataset, root_text) + body[end:]
    try:
        config = StudyConfig.model_validate(tomllib.loads(body))
    except ValidationError as error:  # only the name can make it invalid
        message = error.errors()[0]["msg"].removeprefix("Value error, ")
        raise UserError(f"--name {name!r}: {message}") from None
    return _header(config) + body


def write_study_file(
    output: Path,
    *,
    dataset: str = "digits",
    root: Path | None = None,
    name: str | None = None,
    force: bool = False,
) -> None:
    """``nin-search init``: writes :func:`study_file_text` to ``output``, whole or not at all.

    Args:
        output: The study file to write.
        dataset: One of :data:`nin_search.vocabulary.DATASETS`.
        root: The data folder (``imagefolder``: the folder holding ``train/``).
        name: The study's name; the file's name without ``.toml`` when ``None``.
        force: Replace an existing file.

    Raises:
        UserError: For an existing file without ``force``, an unusable output path, an
            unknown dataset or an unusable root. Nothing is written.
    """
    output = Path(output)
    check_outputs([("--output", output)], replace=force)
    text = study_file_text(
        dataset=dataset, root=root, name=output.stem if name is None else name, folder=output.parent
    )
    write_text_atomic(output, text)
