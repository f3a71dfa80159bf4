"""Output paths: every one checked before any work, every file written atomically; and the
input paths a command reads, whose messages tell a missing path from one of the wrong kind.

No command may write over its own storage, its artifact store or another of its own outputs,
or fail after hours of work because an output cannot be written. A command lists the files it
will write and calls :func:`check_outputs` before it trains, downloads or renders anything;
then it writes each file with :func:`write_atomic`: into a temporary file beside the target
whose name is unique to the process, renamed over the target once complete and removed on
any failure. A reader never sees a half-written file, and a killed run leaves no temporary
file that blocks the next one.

No optuna and no torch here; only ``errors`` of nin-search.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from nin_search.errors import UserError

__all__ = [
    "JsonLines",
    "check_folder",
    "check_input_file",
    "check_input_folder",
    "check_outputs",
    "default_file_mode",
    "process_is_alive",
    "sqlite_files",
    "write_atomic",
    "write_bytes_atomic",
    "write_text_atomic",
    "written_in_place",
]

T = TypeVar("T")

# A SQLite database is several files: the database and, beside it, its journals.
SQLITE_WAL_FILES = ("-wal", "-shm")  # beside a database in WAL mode (storage tidies them)
SQLITE_COMPANIONS = ("", *SQLITE_WAL_FILES, "-journal")
SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


def _real(path: Path) -> Path:
    """The absolute path with every existing symbolic link resolved."""
    return Path(os.path.realpath(Path(path).expanduser()))


def _same(first: Path, second: Path) -> bool:
    """Same file: same real path, or (for two existing files) the same inode (a hard link)."""
    if _real(first) == _real(second):
        return True
    with contextlib.suppress(OSError):
        return os.path.samefile(first, second)
    return False


def _inside(path: Path, folder: Path) -> bool:
    real, real_folder = _real(path), _real(folder)
    return real == real_folder or real_folder in real.parents


def sqlite_files(storage_url: str | None) -> list[Path]:
    """The files of a SQLite storage (database and journals); none for a server database."""
    if not storage_url:
        return []
    from sqlalchemy.engine import make_url  # here: the training side never needs SQLAlchemy

    try:
        parsed = make_url(storage_url)
    except Exception:  # a malformed URL is reported where the storage is opened
        return []
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return []
    database = Path(parsed.database)
    return [database.with_name(database.name + suffix) for suffix in SQLITE_COMPANIONS]


def _is_sqlite_database(path: Path) -> bool:
    """Whether ``path`` is an SQLite database (any study's storage, not only this command's)."""
    try:
        with open(path, "rb") as file:
            return file.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def _probe_writable(folder: Path, what: str) -> None:
    """Creates and removes a file in ``folder``: the only test that root, read-only mounts and
    immutable folders all answer truthfully."""
    try:
        descriptor, probe = tempfile.mkstemp(dir=folder, prefix=".nin-search-probe-")
    except OSError as error:
        raise UserError(
            f"cannot write {what}: folder {str(folder)!r} is not writable "
            f"({error.strerror or error}); pass a path in a folder you can write"
        ) from None
    os.close(descriptor)
    os.unlink(probe)


def _existing_ancestor(path: Path) -> Path:
    """``path`` itself or its nearest ancestor that exists."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _check_location(option: str, path: Path, folder: Path, *, create: bool) -> None:
    """``folder`` (which will hold ``path``) exists or can be created, and can be written."""
    existing = _existing_ancestor(folder)
    shown = f"{option} {str(path)!r}"
    if not existing.is_dir():
        raise UserError(f"{shown} lies under the file {str(existing)!r}; pass a path in a folder")
    if existing != folder and not create:
        raise UserError(f"folder {str(folder)!r} for {option} does not exist; create it")
    _probe_writable(existing, shown)


def check_folder(option: str, folder: Path, *, create: bool = True, parents: bool = False) -> None:
    """Checks that ``folder`` is, or can be created as, a folder this process can write.

    Args:
        option: What names the folder, for messages (``"--artifact-dir"``).
        folder: The folder.
        create: Whether a missing folder may be created.
        parents: Whether its missing parent folders may be created too (else, as for every
            output, the folder that holds it must exist).

    Raises:
        UserError: If the folder is a file, lies under a file, is missing (``create=False``),
            lies in a missing folder (``parents=False``) or cannot be written.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{option} {str(folder)!r} is a file; pass a folder")
    if folder.exists() or parents or not create:
        _check_location(option, folder, folder, create=create)
    else:  # created here: the folder that holds it must exist, as for every output
        _check_location(option, folder, folder.parent, create=False)


def check_input_file(what: str, path: Path, fix: str) -> None:
    """Checks that a file a command reads exists and is a file.

    Raises:
        UserError: ``"<what> '<path>' not found; <fix>"``, or ``"... is a folder; <fix>"``
            (or not a regular file).
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"{what} {str(path)!r} is a folder; {fix}")
    if not path.exists():
        raise UserError(f"{what} {str(path)!r} not found; {fix}")
    if not path.is_file():  # a pipe or a device: reading it could block
        raise UserError(f"{what} {str(path)!r} is not a regular file; {fix}")


def check_input_folder(what: str, path: Path, fix: str) -> None:
    """Checks that a folder a command reads exists and is a folder.

    Raises:
        UserError: ``"<what> '<path>' not found; <fix>"``, or ``"... is a file; <fix>"``.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {str(path)!r} is a file; {fix}")
    if not path.exists():
        raise UserError(f"{what} {str(path)!r} not found; {fix}")


def check_outputs(
    outputs: Sequence[tuple[str, Path]],
    *,
    storage_url: str | None = None,
    artifact_dir: Path | None = None,
    protected: Iterable[tuple[str, Path]] = (),
    created_folders: Iterable[Path] = (),
    replace: bool = True,
) -> None:
    """Checks the files a command will write, before it does any work.

    Args:
        outputs: ``(option, path)`` for every file the command writes; the option names it in
            messages (``("--output", Path("model.py"))``). Several files may share an option.
        storage_url: The command's storage: no output may be its SQLite database or journal.
        artifact_dir: The artifact store: no output may lie in it.
        protected: More ``(what, path)`` that no output may be or lie in (inputs, say).
        created_folders: Folders the command creates (``train -o DIR``): an output directly in
            one may have a missing folder; every other output's folder must exist.
        replace: Whether an existing file may be replaced (``--force`` of ``export`` and
            ``train``, whose files are what a user hands over).

    Raises:
        UserError: For an output that is a folder, lies under a file, sits in a missing or
            unwritable folder, is the storage or any other SQLite database, lies in the
            artifact store or a protected path, or is the same file as another output.
            Nothing is written.
    """
    database = sqlite_files(storage_url)
    guarded = [(f"the study's database (--storage {storage_url})", path) for path in database]
    if artifact_dir is not None:
        guarded.append((f"the artifact store {str(artifact_dir)!r}", Path(artifact_dir)))
    guarded += [(what, Path(path)) for what, path in protected]
    created = [Path(folder).expanduser() for folder in created_folders]
    seen: list[tuple[str, Path]] = []
    for option, path in outputs:
        path = Path(path).expanduser()
        shown = f"{option} {str(path)!r}"
        for what, guarded_path in guarded:
            if _same(path, guarded_path) or _inside(path, guarded_path):
                raise UserError(
                    f"{shown} is {what}: writing it would destroy it; pass another path"
                    if _same(path, guarded_path)
                    else f"{shown} lies in {what}; pass a path outside it"
                )
        for other_option, other in seen:
            if _same(path, other):
                raise UserError(
                    f"{other_option} and {option} name the same file {str(path)!r}; "
                    "pass two different paths"
                )
        seen.append((option, path))
        if path.is_dir():
            raise UserError(f"{shown} is a folder; pass a file path")
        if path.exists() and _is_stream(path):
            continue  # written in place, like a terminal
        if path.exists() and not path.is_file():
            raise UserError(f"{shown} is a device, not a file; pass a file path")
        if path.is_file() and _is_sqlite_database(path):
            raise UserError(
                f"{option} {str(path)!r} is an SQLite database (a study's storage?): writing "
                "it would destroy it; pass another path"
            )
        if path.exists() and not replace:
            raise UserError(f"{shown} exists; pass --force to replace it, or another path")
        create = any(_same(path.parent, folder) for folder in created)
        _check_location(option, path, path.parent, create=create)


def written_in_place(path: Path) -> bool:
    """Whether an output at ``path`` is a stream written in place (``/dev/stdout``, a pipe),
    not a file replaced by a rename."""
    return Path(path).exists() and _is_stream(Path(path))


def _is_stream(path: Path) -> bool:
    """A pipe or a character device (``/dev/null``, ``/dev/stdout``), or a standard stream
    or file descriptor by name (``/dev/stdout`` redirected to a file, ``/dev/fd/3``): written
    in place, as a stream; a rename would replace the device itself, or a link in ``/proc``.
    Other files under ``/dev`` (``/dev/shm``) are files."""
    mode = os.stat(path).st_mode
    parts = Path(os.path.abspath(path)).parts
    by_name = parts[:3] in (("/", "dev", "stdout"), ("/", "dev", "stderr"), ("/", "dev", "fd"))
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or by_name


def default_file_mode() -> int:
    """The mode of a new regular file under the current umask (``0o644`` for umask 022)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


STALE_PARTIAL_SECONDS = 600  # a partial file this old, of a dead process, is removed


def _temporary_path(path: Path) -> Path:
    """A hidden name beside ``path``, unique to this process and call."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")


def process_is_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process (PermissionError): alive
        return True
    return True


def _remove_stale_partials(target: Path) -> None:
    """Removes the temporary files an earlier write of ``target`` left when it was killed
    (SIGKILL cannot be caught): only names of :func:`_temporary_path`'s pattern for this
    target, of a process that no longer runs on this machine, untouched for
    ``STALE_PARTIAL_SECONDS``."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)-[0-9a-f]{{8}}\.partial")
    with contextlib.suppress(OSError):
        for entry in os.scandir(target.parent):
            match = pattern.fullmatch(entry.name)
            if match is None or int(match.group(1)) == os.getpid():
                continue
            with contextlib.suppress(OSError):
                old = time.time() - entry.stat(follow_symlinks=False).st_mtime
                if old > STALE_PARTIAL_SECONDS and not process_is_alive(int(match.group(1))):
                    os.unlink(entry.path)


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """While it lasts, SIGTERM raises ``SystemExit(143)`` (so ``finally`` and ``except``
    clauses run) where it would otherwise end the process at once: the default handler, in
    the main thread. Another handler someone installed is left alone."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def write_atomic(path: Path, write: Callable[[Path], T]) -> T:
    """Calls ``write(temporary)``, then renames the temporary file over ``path``.

    The temporary file is beside ``path`` (the rename is atomic on one file system) and its
    name, ``.NAME.PID-HEX.partial``, unique to this process and call. It is removed if
    ``write`` fails, on an exception (Ctrl-C included) and on SIGTERM (which then exits with
    status 143, unless the program installed its own SIGTERM handler). A process killed
    outright (SIGKILL, a power cut) cannot remove it: a later write of the same ``path``
    removes such leftovers, once their process is gone and they are 10 minutes old. A
    symbolic link at ``path`` is written through (its target is replaced); a pipe or
    character device (``/dev/stdout``) is written in place.

    Raises:
        UserError: When the file system refuses the write (a full disk, say).

    Returns:
        What ``write`` returned.
    """
    if written_in_place(path):  # before resolving: a pipe's link in /proc (/dev/stdout ->
        return write(Path(path))  # /proc/self/fd/1 -> pipe:[...]) names no file
    target = _real(path)
    _remove_stale_partials(target)
    temporary = _temporary_path(target)
    try:
        with _terminate_as_exit():
            result = write(temporary)
            # The mode a plain open(path, "w") gives, whatever the writer used (safetensors: 0600).
            os.chmod(temporary, default_file_mode())
            os.replace(temporary, target)
    except OSError as error:  # the disk filled up, the folder went away, ...
        temporary.unlink(missing_ok=True)
        raise UserError(
            f"cannot write {str(path)!r} ({error.strerror or error}); nothing was written there"
        ) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return result


def write_text_atomic(path: Path, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` atomically (see :func:`write_atomic`)."""
    write_atomic(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (see :func:`write_atomic`)."""
    write_atomic(path, lambda temporary: temporary.write_bytes(data))


class JsonLines:
    """Appends one JSON object per line to a log file (``--log-file trials.jsonl``).

    The one output that is not written atomically: it grows while the command runs, so that
    ``tail -f`` and scripts can follow it. Each line is one ``write`` followed by a flush, so a
    killed run leaves whole lines only, and a re-run appends to the same file. Check the path
    with :func:`check_outputs` first; the file is opened on the first line.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()
        self._file: Any = None

    def write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close)
        self._file.write(json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
