"""Python source written the way ``ruff format`` writes it: a tiny expression tree and its
renderer, string literals, ``__all__`` lists, and display widths."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

LINE_LENGTH = 100  # characters, the project's ruff setting


# A tiny expression tree, rendered the way `ruff format` writes it (the "black" style):
# on one line if it fits, else the arguments on one indented line if they fit, else one
# argument a line with a trailing comma. `explode=True` forces the last form, and its
# trailing comma ("magic") tells ruff to keep it.
@dataclass(frozen=True)
class Call:
    function: str  # "nn.Conv2d"; "" for a tuple
    arguments: tuple[Node, ...]
    explode: bool = False


@dataclass(frozen=True)
class Keyword:
    name: str
    value: Node


Node = str | Call | Keyword


def tuple_node(values: tuple[int, ...]) -> Call:
    return Call("", tuple(str(int(value)) for value in values))


def _flat(node: Node) -> str | None:
    """The node on one line, or None when it must span several."""
    if isinstance(node, str):
        return node
    if isinstance(node, Keyword):
        value = _flat(node.value)
        return None if value is None else f"{node.name}={value}"
    if node.explode:
        return None
    arguments = [_flat(argument) for argument in node.arguments]
    if None in arguments:
        return None
    if not node.function and len(arguments) == 1:
        return f"({arguments[0]},)"  # a one-element tuple
    return f"{node.function}({', '.join(arguments)})"


def render(node: Node, indent: int, prefix: str = "", suffix: str = "") -> list[str]:
    """Source lines for ``prefix + node + suffix`` at ``indent`` spaces."""
    pad = " " * indent
    if isinstance(node, Keyword):
        return render(node.value, indent, f"{prefix}{node.name}=", suffix)
    flat = _flat(node)
    if flat is not None and (
        isinstance(node, str) or display_width(pad + prefix + flat + suffix) <= LINE_LENGTH
    ):
        return [pad + prefix + flat + suffix]
    arguments = node.arguments
    opening, closing = f"{pad}{prefix}{node.function}(", f"{pad}){suffix}"
    if not node.explode and node.function:  # a tuple that does not fit is one item a line
        body = [_flat(argument) for argument in arguments]
        line = " " * (indent + 4) + ", ".join(body) if None not in body else None
        if line is not None and display_width(line) <= LINE_LENGTH:
            return [opening, line, closing]
        if len(arguments) == 1:
            return [opening, *render(arguments[0], indent + 4), closing]
    lines = [opening]
    for argument in arguments:
        lines += render(argument, indent + 4, suffix=",")
    return [*lines, closing]


def display_width(text: str) -> int:
    """Columns ``text`` takes, as ruff counts them (wide East Asian characters take two)."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def string_literal(text: str) -> str:
    """``text`` as a Python string literal in the quotes ``ruff format`` picks.

    Backslashes and the quote are escaped; every character that is not printable (newlines,
    controls, surrogates, zero-width and other format characters) becomes an escape, so the
    literal is one line and evaluates to exactly ``text``.
    """
    quote = "'" if text.count('"') > text.count("'") else '"'
    characters = []
    for character in text:
        code = ord(character)
        if character in ("\\", quote):
            characters.append("\\" + character)
        elif character.isprintable():
            characters.append(character)
        elif code < 0x100:
            characters.append(f"\\x{code:02x}")
        elif code < 0x10000:
            characters.append(f"\\u{code:04x}")
        else:
            characters.append(f"\\U{code:08x}")
    return quote + "".join(characters) + quote


def _natural_key(name: str) -> list[tuple[int, int | str]]:
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name)]


def all_list(names: list[str]) -> str:
    """``__all__ = [...]`` sorted the way ruff's RUF022 wants (isort style)."""

    def key(name: str) -> tuple[int, list[tuple[int, int | str]]]:
        if len(name) > 1 and name.upper() == name and name.lower() != name:
            category = 0  # CONSTANT
        elif name[0].isupper():
            category = 1  # Class
        else:
            category = 2  # function
        return category, _natural_key(name)

    items = [f'"{name}"' for name in sorted(names, key=key)]
    line = f"__all__ = [{', '.join(items)}]"
    if display_width(line) <= LINE_LENGTH:
        return line
    return "\n".join(["__all__ = [", *(f"    {item}," for item in items), "]"])
