"""Study files: finding one by path or shipped name, reading its TOML, and one line for
what is wrong in it (the key, what it holds, a spelling hint for an unknown key).
:mod:`nin_search.config` defines what a study file may hold.
"""

from __future__ import annotations

import difflib
import json
import typing
from pathlib import Path

import tomllib
from pydantic import BaseModel, ValidationError

from nin_search.config import StudyConfig
from nin_search.errors import UserError

__all__ = [
    "SHIPPED_STUDIES_DIR",
    "describe_validation_error",
    "load_study_config",
    "shipped_studies",
    "study_file_path",
]

# The study files that ship with nin-search (package data; `studies/` in the repository).
SHIPPED_STUDIES_DIR = Path(__file__).parent / "studies"

_UNION_TAGS = ("int", "float", "bool", "str", "IntRange", "FloatRange")


def _location(loc: tuple) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in _UNION_TAGS or "[" in part:
            continue  # which member of a union pydantic tried: noise for the user
        else:
            text += f".{part}" if text else part
    return text


def _member_of_input(error: dict) -> bool:
    """Whether the error comes from the union member of the input's own kind: a list's from
    ``list[...]``, a table's from a range (not "Input should be a valid integer")."""
    tags = [part for part in error["loc"] if isinstance(part, str) and "[" in part]
    tags += [part for part in error["loc"] if part in _UNION_TAGS]
    if isinstance(error.get("input"), list):
        return any("list[" in tag for tag in tags)
    if isinstance(error.get("input"), dict):
        return any("Range" in tag for tag in tags)
    return True


def _keys_of(table: list[str]) -> list[str]:
    """The keys a study file accepts in ``table`` (``["space"]``, ``["data", "augment"]``;
    a range's ``low``, ``high`` and ``log`` for a searchable value), for spelling hints."""
    models: list[type[BaseModel]] = [StudyConfig]
    for part in table:
        found = []
        for model in models:
            field = model.model_fields.get(part)
            if field is None:
                continue
            annotation = field.annotation
            members = typing.get_args(annotation) or (annotation,)
            for member in (arg for m in members for arg in (typing.get_args(m) or (m,))):
                if isinstance(member, type) and issubclass(member, BaseModel):
                    found.append(member)
        models = found
    return sorted({name for model in models for name in model.model_fields})


def describe_validation_error(error: ValidationError) -> str:
    """One line for the most specific of pydantic's errors (unions report one per member)."""
    errors = error.errors()
    field = errors[0]["loc"][:2]
    same_field = [e for e in errors if e["loc"][:2] == field]
    same_field = [e for e in same_field if _member_of_input(e)] or same_field
    custom = [e for e in same_field if e["type"] == "value_error"]
    unknown = [e for e in same_field if e["type"] == "extra_forbidden"]  # a typo: say it first
    best = (custom or unknown or [max(same_field, key=lambda e: len(e["loc"]))])[0]
    location = _location(best["loc"])
    if best["type"] == "extra_forbidden":
        *table, key = location.split(".")
        close = difflib.get_close_matches(key, _keys_of(table), n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return (
            f"unknown key '{location}' ({hint}check the spelling against the commented study "
            "file `nin-search init` writes)"
        )
    if best["type"] == "too_short" and best.get("input") == []:
        return f"{location} is an empty list; list at least one choice"
    message = best["msg"].removeprefix("Value error, ")
    if best["type"] != "value_error" and "input" in best:
        message = f"{message}, but got {_toml_text(best['input'])}"
    if location and message.startswith(f"{location.split('.')[0]}."):
        return message  # the message names its key already ("space.widths must be ...")
    return f"{location}: {message}" if location else message


def _toml_text(value: object) -> str:
    """A value as the study file spells it: ``true``, ``"16"``, ``[1, 2]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_text(item) for item in value) + "]"
    return repr(value)


def shipped_studies() -> list[str]:
    """Names of the study files that ship with nin-search (``digits``, ``cifar10-mini``, ...)."""
    return sorted(path.stem for path in SHIPPED_STUDIES_DIR.glob("*.toml"))


def study_file_path(name_or_path: str | Path) -> Path:
    """A study file: ``name_or_path`` when it is a file, else the shipped study of that name.

    A shipped study is found by its bare name (``digits``, or ``digits.toml``) from any folder;
    a local file of that name wins, ``NAME.toml`` too (``nin-search init -o digits.toml``, then
    ``optimize digits``, runs the file written); a local folder of that name does not.

    Raises:
        UserError: When neither exists (the message lists the shipped names).
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    local = path.with_name(f"{path.name}.toml") if path.suffix != ".toml" and path.name else None
    if local is not None and local.is_file():
        return local
    shipped = SHIPPED_STUDIES_DIR / f"{path.name.removesuffix('.toml')}.toml"
    if len(path.parts) == 1 and shipped.is_file():
        return shipped  # before a folder of that name: ./mnist/ may hold its images
    if path.is_dir():
        raise UserError(
            f"{str(path)!r} is a folder; pass a study file (.toml), or write one with "
            "`nin-search init -o my-study.toml`"
        )
    raise UserError(
        f"study file {str(path)!r} not found; pass a path to a study file, a shipped study's "
        f"name ({', '.join(shipped_studies())}), or write one with `nin-search init -o "
        "my-study.toml`"
    )


def _check_shipped_data(path: Path, config: StudyConfig) -> None:
    """A shipped image-folder study says what is missing, and where to get it, in one line."""
    if path.resolve().parent != SHIPPED_STUDIES_DIR.resolve():
        return
    root = Path(config.data.root or "")
    if config.data.dataset != "imagefolder" or root.is_dir():
        return
    raise UserError(
        f"shipped study {path.stem!r} needs its image folder {str(root)!r} (train/<class>/*.jpg "
        "and test/<class>/*.jpg), which is not here: it comes with a nin-search repository "
        "checkout (shared/data/ beside the repository), so run from there; or run "
        "`nin-search optimize cifar10` (downloads CIFAR-10), or make a study for your own "
        "images: nin-search init --dataset imagefolder --root DIR -o my-study.toml"
    )


def load_study_config(path: str | Path) -> StudyConfig:
    """Reads a study TOML file and validates it.

    Args:
        path: The study file, or the name of a shipped study (see :func:`study_file_path`).

    Returns:
        The frozen config; ``data.root`` is made absolute (relative to the file's folder).

    Raises:
        UserError: If the file is missing, is not valid TOML, or holds a bad value; or a
            shipped image-folder study's images are not where it expects them.
    """
    path = study_file_path(path)
    try:
        # utf-8-sig: a byte-order mark, as some editors save it, is not part of the TOML.
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid TOML ({error}); fix the syntax") from None
    try:
        config = StudyConfig.model_validate(raw)
    except ValidationError as error:
        raise UserError(f"{path}: {describe_validation_error(error)}") from None
    root = config.data.root
    if root and not Path(root).expanduser().is_absolute():
        root = str((path.parent / Path(root).expanduser()).resolve())
        config = config.model_copy(update={"data": config.data.model_copy(update={"root": root})})
    _check_shipped_data(path, config)
    return config
