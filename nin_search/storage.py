"""Optuna RDB storages: URL checks, SQLite settings for many workers, clear errors (their
words: :mod:`nin_search.storage_messages`).

SQLite runs in WAL mode (a live dashboard never blocks the workers), with a busy timeout and
transactions that take the write lock when they begin (so two workers never claim one queued
trial). PostgreSQL gets a connect timeout and pre-ping. Nothing here writes to a database
before the URL has been checked.

Only ``optimize`` creates Optuna's tables, and only in a new or empty database or one that
already is an Optuna storage. Every other command opens an existing Optuna storage without
creating anything; the commands that only read open a SQLite file read-only (they never need
its write lock, so a running search never blocks them). A database failure met at any point
becomes one line (:func:`describe_storage_error`).
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import random
import time
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
import sqlalchemy.event
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from nin_search.compat import OPTUNA_SCHEMA_TABLES
from nin_search.config import (
    CONNECT_TIMEOUT,
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    MAX_RETRY,
    SQLITE_TIMEOUT,
    STORAGE_ATTEMPTS,
)
from nin_search.errors import UserError
from nin_search.outputs import SQLITE_HEADER, SQLITE_WAL_FILES
from nin_search.storage_messages import (
    database_path,
    describe_storage_error,
    display_url,
    read_only_message,
    unusable_message,
)

__all__ = [
    "check_storage_url",
    "open_storage",
    "use_wal",
]

# Facts of the backends and of Optuna's schema, not tunable (the timeouts are in config).
SUPPORTED_BACKENDS = ("sqlite", "postgresql", "mysql")
OPTUNA_TABLES = ("studies", "version_info")  # tables every Optuna RDB storage has
# pip packages of the database drivers SQLAlchemy imports, by driver name.
DRIVER_PACKAGES = {
    "psycopg2": "psycopg2-binary",
    "psycopg": "'psycopg[binary]'",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "mysqldb": "mysqlclient",
    "pymysql": "pymysql",
    "mysqlconnector": "mysql-connector-python",
}


def check_storage_url(url: str, *, must_exist: bool) -> None:
    """Validates an Optuna RDB storage URL without connecting to it.

    Args:
        url: ``sqlite:///path.db``, ``postgresql+psycopg://user@host/db``, ...
        must_exist: For SQLite, the database file must already exist (reading commands).

    Raises:
        UserError: For a malformed URL, an unknown backend, or an unusable SQLite path.
    """
    example = "e.g. sqlite:///nin_search.db or postgresql+psycopg://user:pass@host/db"
    try:
        parsed = make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise UserError(f"bad storage URL {display_url(url)!r}; use {example}") from None
    shown = display_url(url)  # never a password in a message
    if "@" in (parsed.host or ""):  # SQLAlchemy split user:p@ss@host at the first @
        raise UserError(
            f"the storage URL {shown!r} has an unescaped '@' in its password; percent-encode "
            "it: @ as %40 (urllib.parse.quote_plus does it for the whole password)"
        )
    backend = parsed.get_backend_name()
    if backend == "postgres":  # Heroku's and libpq's spelling; SQLAlchemy has no such name
        raise UserError(
            f"unsupported storage 'postgres' in {shown!r}; spell it postgresql:// (or "
            "postgresql+psycopg://), as SQLAlchemy does"
        )
    if backend not in SUPPORTED_BACKENDS:
        raise UserError(f"unsupported storage {backend!r} in {shown!r}; use {example}")
    _check_driver(parsed, url)
    if backend != "sqlite":
        return
    database = parsed.database or ""
    if database in ("", ":memory:"):
        raise UserError(f"storage {shown!r} is in memory and would be lost; use sqlite:///FILE.db")
    path = Path(database)
    if path.is_dir():
        raise UserError(f"storage {shown!r} is a folder, not a database file; pass a .db file")
    if path.exists() and not path.is_file():  # a pipe would hang the first read, a device...
        raise UserError(
            f"storage {shown!r} is not a regular file (a pipe or a device); pass a .db file"
        )
    if must_exist and not path.is_file():
        raise UserError(
            f"no database at {str(path)!r}; run `nin-search optimize` first or pass --storage"
        )
    if not path.parent.is_dir():
        raise UserError(f"folder {str(path.parent)!r} for the database does not exist; create it")


def _check_driver(parsed: sqlalchemy.engine.URL, url: str) -> None:
    """The URL's database driver is known and installed (SQLAlchemy imports it late)."""
    try:
        dialect = parsed.get_dialect()
    except sqlalchemy.exc.NoSuchModuleError:
        raise UserError(
            f"unknown database driver {parsed.drivername!r} in {display_url(url)!r}; "
            "use e.g. postgresql+psycopg://user:pass@host/db"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as error:
        driver = parsed.get_driver_name()
        package = DRIVER_PACKAGES.get(driver, driver)
        raise UserError(
            f"the database driver {driver!r} for {display_url(url)!r} is not installed "
            f"({error}); install it (pip install {package}) or name an installed one in the "
            "URL, e.g. postgresql+psycopg://"
        ) from None


def use_wal(url: str) -> None:
    """Puts a SQLite database in WAL mode (a property of the file, kept from then on), so
    that readers such as a live dashboard never block the workers' writes."""
    import random
    import sqlite3
    import time

    database = make_url(url).database
    deadline = time.monotonic() + SQLITE_TIMEOUT
    connection = sqlite3.connect(database, timeout=SQLITE_TIMEOUT)
    try:
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as error:
                # Workers that start together switch the same new file at once; SQLite then
                # answers "locked" at once, without waiting on its busy timeout: retry.
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0.01, 0.1))
    except sqlite3.DatabaseError as error:
        raise UserError(
            describe_storage_error(error, url) or unusable_message(url, error)
        ) from None
    finally:
        connection.close()


def _check_sqlite_file(url: str, *, create: bool) -> None:
    """Refuses, before anything opens it, a SQLite file that is not a database, belongs to
    another application, or (for commands that do not create) is empty.

    Args:
        url: A ``sqlite:///`` URL (already checked by :func:`check_storage_url`).
        create: ``optimize``: a missing or empty file is a new storage, and the file must be
            writable. Otherwise the file must already hold an Optuna storage.
    """
    path = database_path(url)
    if not path.exists():
        return
    header = _read_header(url, create=create)
    if not header:
        if create:
            return
        raise UserError(
            f"{str(path)!r} is an empty file, not a nin-search database; run `nin-search "
            "optimize` to create a study in it, or pass the --storage that optimize used"
        )
    if header != SQLITE_HEADER:
        raise UserError(unusable_message(url, "file is not a database"))
    tables = _sqlite_tables(url)
    # A part of Optuna's schema: another worker is creating the storage (one table at a time).
    if set(OPTUNA_TABLES) <= tables or (create and tables and tables <= OPTUNA_SCHEMA_TABLES):
        return
    if tables:
        listed = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise UserError(
            f"{str(path)!r} is another application's SQLite database (tables: {listed}), "
            "not an Optuna storage; nin-search leaves it alone: pass another --storage"
        )
    if not create:
        raise UserError(
            f"{str(path)!r} is an empty SQLite database with no study; run `nin-search "
            "optimize` to create one, or pass the --storage that optimize used"
        )


def _read_header(url: str, *, create: bool) -> bytes:
    """The first bytes of the SQLite file; with ``create``, also checks that it is writable
    (opening for writing writes nothing)."""
    path = database_path(url)
    try:
        with open(path, "r+b" if create else "rb") as file:
            return file.read(len(SQLITE_HEADER))
    except OSError as error:
        if create and error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise UserError(read_only_message(f"database {display_url(url)!r}")) from None
        raise UserError(f"cannot read database {str(path)!r} ({error.strerror})") from None


def _sqlite_tables(url: str) -> set[str]:
    """The names of the tables in the SQLite file, read without writing or locking it."""
    import sqlite3
    from urllib.parse import quote

    uri = f"file:{quote(str(database_path(url).resolve()))}?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=SQLITE_TIMEOUT)
        try:
            rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            return {row[0] for row in rows}
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        raise UserError(
            describe_storage_error(error, url) or unusable_message(url, error)
        ) from None


def _read_only_url(url: str) -> str:
    """The SQLite URL opened read-only (``mode=ro``): no write, no lock, no journal change."""
    from urllib.parse import quote

    path = quote(str(database_path(url).resolve()))  # SQLite decodes the URI's escapes
    read_only = sqlalchemy.engine.URL.create(
        "sqlite", database=f"file:{path}", query={"mode": "ro", "uri": "true"}
    )
    return read_only.render_as_string(hide_password=False)  # escaped again for SQLAlchemy


def _check_server_schema(url: str, engine_kwargs: dict[str, Any]) -> None:
    """A server database (PostgreSQL, MySQL) already holds Optuna's tables."""
    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        inspector = sqlalchemy.inspect(engine)
        missing = [table for table in OPTUNA_TABLES if not inspector.has_table(table)]
    finally:
        engine.dispose()
    if missing:
        raise UserError(
            f"storage {display_url(url)!r} holds no Optuna study (no {missing[0]!r} table); "
            "run `nin-search optimize` with it first, or pass the --storage that optimize used"
        )


def _connect_storage(
    url: str, *, heartbeat: bool, create: bool = True, read_only: bool = False
) -> optuna.storages.RDBStorage:
    engine_kwargs: dict[str, Any] = {}
    sqlite = url.startswith("sqlite")
    # SQLite's side files, which reading may create (tidied at exit when none were there).
    leftovers = sqlite and read_only and any(path.exists() for path in _sqlite_side_files(url))
    if sqlite:
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT}
        _check_sqlite_file(url, create=create)
    else:
        engine_kwargs["pool_pre_ping"] = True
        if url.startswith("postgresql"):
            engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
        if not create:
            _check_server_schema(url, engine_kwargs)
    options: dict[str, Any] = {"skip_table_creation": not create}
    if heartbeat:
        options |= {
            "heartbeat_interval": HEARTBEAT_INTERVAL,
            "grace_period": GRACE_PERIOD,
            "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=MAX_RETRY
            ),
        }
    opened_url = _read_only_url(url) if sqlite and read_only else url
    # Creating a schema races with other creators, and so does opening one: a reader (report,
    # dashboard) can see the file or the tables before the creator has finished, and Optuna
    # itself stamps a missing version row and alembic table even with skip_table_creation.
    # Only errors of that race are retried; others are reported at once.
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            storage = optuna.storages.RDBStorage(opened_url, engine_kwargs=engine_kwargs, **options)
        except (
            sqlalchemy.exc.OperationalError,
            sqlalchemy.exc.IntegrityError,
            sqlalchemy.exc.ProgrammingError,
        ) as error:
            # Workers (or a worker and a dashboard) that start together race to create the
            # schema of a new database: wait and retry. On a server the loser's CREATE TABLE
            # fails with a duplicate key (PostgreSQL's pg_type) or "already exists". A SQLite
            # lock held past the busy timeout is another process's: report it.
            if attempt == STORAGE_ATTEMPTS - 1 or not _lost_schema_race(error, sqlite=sqlite):
                raise
            time.sleep(0.2 * (attempt + 1) + random.random() * 0.3)
            continue
        if sqlite and not read_only:
            _lock_on_begin(storage.engine)
        if sqlite and read_only:
            _track_read_only(storage.engine, url, tidy=not leftovers)
        return storage
    raise AssertionError("unreachable")


def _sqlite_side_files(url: str) -> list[Path]:
    database = database_path(url)
    return [database.with_name(database.name + suffix) for suffix in SQLITE_WAL_FILES]


# The read-only engines this process opened, by database file (their connections are closed
# at exit, before SQLite is asked to tidy its side files).
_READ_ONLY_ENGINES: dict[Path, list[sqlalchemy.engine.Engine]] = {}


def _track_read_only(engine: sqlalchemy.engine.Engine, url: str, *, tidy: bool) -> None:
    """Remembers a read-only engine; the first one of a file, opened where no side file was,
    has them tidied at exit (:func:`_remove_sqlite_leftovers`)."""
    path = database_path(url).resolve()
    if path not in _READ_ONLY_ENGINES:
        _READ_ONLY_ENGINES[path] = []
        if tidy:
            atexit.register(_remove_sqlite_leftovers, url)
    _READ_ONLY_ENGINES[path].append(engine)


def _remove_sqlite_leftovers(url: str) -> None:
    """At exit, has SQLite delete the ``-wal`` and ``-shm`` files this read-only process made.

    A read-only connection creates them and cannot delete them; the last read-write connection
    to close does. So this closes this process's read-only connections to the file and opens
    and closes one read-write connection that reads nothing: the log is empty, so the
    checkpoint writes no byte, and SQLite keeps the files while another process still has the
    database open.
    """
    import sqlite3

    for engine in _READ_ONLY_ENGINES.get(database_path(url).resolve(), []):
        engine.dispose()
    wal, _ = _sqlite_side_files(url)
    if not wal.exists() or wal.stat().st_size:
        return  # nothing of ours to tidy, or another process's log
    with contextlib.suppress(sqlite3.Error, OSError):
        connection = sqlite3.connect(str(database_path(url)), timeout=0.1)
        try:
            connection.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        finally:
            connection.close()


def _lost_schema_race(error: sqlalchemy.exc.DBAPIError, *, sqlite: bool) -> bool:
    """Whether opening a storage failed because another process was creating its schema."""
    if sqlite:
        return not isinstance(error, sqlalchemy.exc.ProgrammingError) and "locked" not in str(error)
    return isinstance(error, sqlalchemy.exc.IntegrityError) or "already exists" in str(error)


def _lock_on_begin(engine: sqlalchemy.engine.Engine) -> None:
    """SQLite transactions take the write lock when they begin (``BEGIN IMMEDIATE``).

    Optuna claims a queued (WAITING) trial with ``SELECT ... FOR UPDATE``, which SQLite
    ignores, so two workers could both run one enqueued trial (optuna#4621). Taking the lock
    at the start of every transaction makes each claim atomic; waits are bounded by the busy
    timeout. (The SQLAlchemy recipe for pysqlite's transaction handling.)
    """

    @sqlalchemy.event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        # In WAL mode, synchronous=NORMAL cannot corrupt the database (SQLite's documentation):
        # a power cut may only lose the last commits (a trial that then runs again), and each
        # commit skips an fsync (benchmarks/RESULTS.md §5: 3% of a 12-trial digits search).
        if dbapi_connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners existed are dropped


def _schema_advice(message: str, url: str) -> str:
    """Optuna's schema-version error, with the command that fixes it."""
    if "pip install" in message:  # Optuna's own advice: the database is newer than Optuna
        return f"{message} (the database was written by a newer Optuna; upgrade this one)"
    shown = display_url(url)
    return f"{message} Back up the database, then run: optuna storage upgrade --storage '{shown}'"


def open_storage(
    url: str, *, heartbeat: bool, create: bool = True, read_only: bool = False
) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats (for writers) and one clear error per failure.

    Args:
        url: An Optuna RDB URL (checked by :func:`check_storage_url`).
        heartbeat: Record heartbeats of running trials (writers that run trials).
        create: Create Optuna's tables in a new or empty database (``optimize`` only);
            otherwise the database must already be an Optuna storage.
        read_only: Open a SQLite file read-only (implies ``create=False``): nothing can be
            written and no write lock is ever needed.

    Raises:
        UserError: For a database of another Optuna schema (naming the command that fixes
            it), a corrupt, empty, locked or read-only file, another application's database,
            or a server that cannot be reached.
    """
    create = create and not read_only
    try:
        return _connect_storage(url, heartbeat=heartbeat, create=create, read_only=read_only)
    except RuntimeError as error:  # schema written by another Optuna version
        raise UserError(_schema_advice(str(error).splitlines()[0], url)) from None
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as error:
        described = describe_storage_error(error, url)
        if described:
            raise UserError(described) from None
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()
        raise UserError(
            f"cannot open storage {display_url(url)!r}: {reason[0] if reason else error!r}"
        ) from None
    except ImportError as error:  # a driver the URL names late (checked before, normally)
        raise UserError(f"cannot open storage {display_url(url)!r}: {error}") from None
