"""Optuna RDB storages: URL checks, SQLite settings for many workers, clear errors.

SQLite runs in WAL mode (a live dashboard never blocks the workers), with a busy timeout and
transactions that take the write lock when they begin (so two workers never claim one queued
trial). PostgreSQL gets a connect timeout and pre-ping. Nothing here writes to a database
before the URL has been checked.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
import sqlalchemy.event
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from nin_search.errors import UserError

__all__ = [
    "check_storage_url",
    "delete_trial_attrs",
    "display_url",
    "open_storage",
    "use_wal",
]

HEARTBEAT_INTERVAL = 10  # seconds between a running trial's heartbeats
GRACE_PERIOD = 60  # seconds without a heartbeat before a trial counts as dead (>= 2x interval)
MAX_RETRY = 2  # times a trial killed by a crash is retried with the same parameters
SQLITE_TIMEOUT = 30  # seconds a SQLite writer waits on a lock before failing
CONNECT_TIMEOUT = 10  # seconds to reach a PostgreSQL server
STORAGE_ATTEMPTS = 6  # tries to open a SQLite storage that is locked or being created
SUPPORTED_BACKENDS = ("sqlite", "postgresql", "mysql")


def display_url(url: str) -> str:
    """The URL as shown to people: any password is replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return url


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
        raise UserError(f"bad storage URL {url!r}; use {example}") from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise UserError(f"unsupported storage {backend!r} in {url!r}; use {example}")
    if backend != "sqlite":
        return
    database = parsed.database or ""
    if database in ("", ":memory:"):
        raise UserError(f"storage {url!r} is in memory and would be lost; use sqlite:///FILE.db")
    path = Path(database)
    if must_exist and not path.is_file():
        raise UserError(
            f"no database at {str(path)!r}; run `nin-search optimize` first or pass --storage"
        )
    if not path.parent.is_dir():
        raise UserError(f"folder {str(path.parent)!r} for the database does not exist; create it")


def use_wal(url: str) -> None:
    """Puts a SQLite database in WAL mode (a property of the file, kept from then on), so
    that readers such as a live dashboard never block the workers' writes."""
    import sqlite3

    database = make_url(url).database
    connection = sqlite3.connect(database, timeout=SQLITE_TIMEOUT)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as error:
        raise UserError(
            f"{database} is not a usable SQLite database ({error}); restore it from a backup "
            "or pass another --storage"
        ) from None
    finally:
        connection.close()


def _connect_storage(url: str, *, heartbeat: bool) -> optuna.storages.RDBStorage:
    engine_kwargs: dict[str, Any] = {}
    sqlite = url.startswith("sqlite")
    if sqlite:
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT}
    else:
        engine_kwargs["pool_pre_ping"] = True
        if url.startswith("postgresql"):
            engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    options: dict[str, Any] = {}
    if heartbeat:
        options = {
            "heartbeat_interval": HEARTBEAT_INTERVAL,
            "grace_period": GRACE_PERIOD,
            "heartbeat_stale_trial_callback": optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=MAX_RETRY
            ),
        }
    for attempt in range(STORAGE_ATTEMPTS if sqlite else 1):
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **options)
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.IntegrityError):
            # Workers that start together race to create the schema of a new database,
            # and a busy SQLite file can stay locked past the timeout: wait and retry.
            if not sqlite or attempt == STORAGE_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1) + random.random() * 0.3)
            continue
        if sqlite:
            _lock_on_begin(storage.engine)
        return storage
    raise AssertionError("unreachable")


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


def open_storage(url: str, *, heartbeat: bool) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats (for writers) and one clear error per failure.

    Raises:
        UserError: For a database of another Optuna schema (naming the command that fixes
            it), a corrupt file, or a server that cannot be reached.
    """
    try:
        return _connect_storage(url, heartbeat=heartbeat)
    except RuntimeError as error:  # schema written by another Optuna version
        raise UserError(_schema_advice(str(error).splitlines()[0], url)) from None
    except (sqlalchemy.exc.SQLAlchemyError, ModuleNotFoundError) as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()
        raise UserError(
            f"cannot open storage {display_url(url)!r}: {reason[0] if reason else error!r}"
        ) from None


def delete_trial_attrs(
    storage: optuna.storages.BaseStorage,
    trial_id: int,
    *,
    user_keys: Iterable[str] = (),
    system_keys: Iterable[str] = (),
) -> None:
    """Deletes user and system attrs of a trial, finished or not (RDB storages).

    Optuna's API never changes a finished trial and cannot delete an attr at all (its
    storages cache finished trials), so the rows go straight from the RDB tables, in one
    transaction. A process that cached the trial earlier keeps its copy until it reloads the
    study; readers that load it afresh (every nin-search command, optuna-dashboard within
    seconds) no longer see the attrs.

    Args:
        storage: The study's storage (an ``RDBStorage``, or Optuna's cache around one).
        trial_id: The trial's storage id (``FrozenTrial._trial_id``).
        user_keys: User attr keys to delete (missing ones are ignored).
        system_keys: System attr keys to delete (missing ones are ignored).

    Raises:
        TypeError: For a storage that is not an RDB storage.
    """
    from optuna.storages._rdb import models

    backend = getattr(storage, "_backend", storage)
    if not isinstance(backend, optuna.storages.RDBStorage):
        raise TypeError(f"delete_trial_attrs needs an RDBStorage, but got {storage!r}.")
    with backend.engine.begin() as connection:
        for model, keys in (
            (models.TrialUserAttributeModel, list(user_keys)),
            (models.TrialSystemAttributeModel, list(system_keys)),
        ):
            if keys:
                table = model.__table__
                connection.execute(
                    sqlalchemy.delete(table).where(
                        table.c.trial_id == trial_id, table.c.key.in_(keys)
                    )
                )
