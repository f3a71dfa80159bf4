"""Writing output files: never half-written, with the permissions any new file gets.

Every file nin-search hands to a user (exported model, weights, ONNX, history, study file) is
written to a unique temporary name in the same folder and renamed into place, so a crash or a
refused input never leaves a partial file, and readers see the old file or the new one. The
result gets the mode a plain ``open(path, "w")`` would give (``0o666`` minus the umask, usually
``0o644``), whatever the writer used for its temporary file (safetensors writes ``0o600``).
No torch, no optuna here.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_output", "default_file_mode", "write_bytes", "write_text"]


def default_file_mode() -> int:
    """The mode of a new regular file under the current umask (``0o644`` for umask 022)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``path``; renamed to ``path`` when the block ends normally.

    The temporary file is removed when the block raises (nothing is left at ``path`` or beside
    it), and given :func:`default_file_mode` before the rename.

    Args:
        path: The file to write. Its folder must exist.

    Yields:
        The temporary path to write (it does not exist yet).
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    try:
        yield temporary
        os.chmod(temporary, default_file_mode())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path) as temporary:
        temporary.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_output`)."""
    write_bytes(path, text.encode("utf-8"))
