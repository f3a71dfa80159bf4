"""What people read about a storage: its URL without the password, the ``--storage ...
--study-name ...`` options a message suggests, and one line (what is wrong, how to fix it) for
each database failure a user can fix: locked, read-only, corrupt, full, or a server that went
away. Used by every command, the workers and the trials (:mod:`nin_search.storage` opens the
storages).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import sqlalchemy
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from nin_search.config import SQLITE_TIMEOUT

__all__ = [
    "database_path",
    "describe_lost_connection",
    "describe_storage_error",
    "display_url",
    "read_only_message",
    "study_options",
    "unusable_message",
]


def display_url(url: str) -> str:
    """The URL as shown to people: any password is replaced by ``***``.

    A password with an unescaped ``@`` is hidden whole: everything between the user's
    ``:`` and the authority's last ``@`` (SQLAlchemy would split it at the first ``@``).
    """
    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):  # not a URL: hide what looks like one
        parsed = None
    if parsed is not None and "@" not in (parsed.host or ""):
        return parsed.render_as_string(hide_password=True)
    return re.sub(r"(://[^/:@]*:)[^/?#]*@", r"\1***@", url, count=1)


def study_options(url: str, study_name: str) -> str:
    """``--storage URL --study-name NAME`` for a command line a message suggests, quoted for a
    shell, with any password shown as ``***``."""
    return f"--storage {shlex.quote(display_url(url))} --study-name {shlex.quote(study_name)}"


def unusable_message(url: str, error: BaseException | str) -> str:
    """A SQLite file that is no usable database, and what to do."""
    return (
        f"{database_path(url)} is not a usable SQLite database ({error}); restore it from a "
        "backup or pass another --storage"
    )


def database_path(url: str) -> Path:
    """The file of a ``sqlite:///`` URL."""
    return Path(make_url(url).database or "")


def _errors_of(error: BaseException) -> list[BaseException]:
    """``error``, the errors it wraps (``orig``, cause, context), and theirs."""
    found: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is seen for seen in found):
            continue
        found.append(current)
        pending += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return found


def describe_storage_error(error: BaseException, url: str | None = None) -> str | None:
    """One line (what is wrong, how to fix it) for a database failure, or None when
    ``error`` is not one that a user can fix.

    Optuna wraps SQLAlchemy's errors (``StorageInternalError``: "invalid data in the commit"),
    which wrap the driver's; the driver's message decides.
    """
    text = " | ".join(str(item) for item in _errors_of(error)).lower()
    where = f"database {display_url(url)!r}" if url else "the database"
    if "database is locked" in text or "database table is locked" in text:
        return (
            f"{where} is locked by another process (waited {SQLITE_TIMEOUT} s for its write "
            "lock); wait until that process finishes or stop it, then run the command again"
        )
    if "readonly database" in text or "read-only file system" in text:
        return read_only_message(where)
    if "malformed" in text or "file is not a database" in text or "not a database" in text:
        reason = "file is not a database" if "not a database" in text else "its pages are corrupt"
        return (
            f"{where} is not a usable SQLite database ({reason}); restore it from a backup "
            "or pass another --storage"
        )
    if "disk is full" in text or "disk i/o error" in text:
        return f"{where} cannot be written ({text.split(' | ')[-1]}); free disk space or move it"
    return None


# What the drivers say when the server goes away under an open connection (a restart, a
# network cut): PostgreSQL (psycopg 2 and 3) and MySQL.
_LOST_CONNECTION = (
    "connection refused",
    "the database system is shutting down",
    "the database system is starting up",
    "terminating connection",
    "server closed the connection",
    "connection is closed",
    "connection already closed",
    "consuming input failed",
    "could not receive data",
    "could not send data",
    "lost connection to mysql server",
    "mysql server has gone away",
)


def describe_lost_connection(error: BaseException, url: str | None = None) -> str | None:
    """One line for a database server that went away during a command (a restart, a network
    cut), or None when ``error`` is not that. Nothing is lost: a re-run resumes the study, and
    the trials that were running are failed and queued again."""
    for item in _errors_of(error):
        message = str(item).strip().splitlines()[0] if str(item).strip() else ""
        if isinstance(item, sqlalchemy.exc.DBAPIError) or not message:
            continue  # SQLAlchemy's wrapper repeats the driver's message, with more
        if any(words in message.lower() for words in _LOST_CONNECTION):
            where = f"database {display_url(url)!r}" if url else "the database server"
            return (
                f"lost the connection to {where} ({message}); once the server is back, run the "
                "same command again: it resumes the study, and the trials that were running are "
                "failed and queued again"
            )
    return None


def read_only_message(where: str) -> str:
    """A database that cannot be written, and what to do."""
    return (
        f"{where} is read-only (attempt to write a readonly database); make the file and its "
        "folder writable, or copy it to a folder you can write and pass that --storage"
    )
