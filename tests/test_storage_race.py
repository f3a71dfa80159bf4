"""Opening a new server database while another process creates its schema: first with Optuna's
RDBStorage replaced by one that loses the race a given number of times (no server needed), then
on a real PostgreSQL server (skipped without one)."""

from __future__ import annotations

import threading
import time
import uuid

import optuna
import pytest
import sqlalchemy

from nin_search import storage
from nin_search.errors import UserError

from .conftest import postgres_url

URL = "postgresql+psycopg://nin_search@127.0.0.1:1/fresh"
# What PostgreSQL says to the loser of two concurrent CREATE TABLEs (seen in CI).
DUPLICATE = sqlalchemy.exc.IntegrityError(
    "CREATE TABLE studies",
    {},
    Exception('duplicate key value violates unique constraint "pg_type_typname_nsp_index"'),
)


def losing_storage(monkeypatch, failures: int, error: Exception) -> list[str]:
    calls: list[str] = []

    def fake(url, **kwargs):
        calls.append(url)
        if len(calls) <= failures:
            raise error
        return "opened"

    monkeypatch.setattr(optuna.storages, "RDBStorage", fake)
    monkeypatch.setattr(storage.time, "sleep", lambda seconds: None)
    return calls


def test_a_worker_that_loses_the_schema_race_on_a_server_retries_and_opens(monkeypatch):
    calls = losing_storage(monkeypatch, failures=2, error=DUPLICATE)
    assert storage.open_storage(URL, heartbeat=False) == "opened"
    assert len(calls) == 3


def test_an_unreachable_server_is_reported_at_once_not_retried(monkeypatch):
    refused = sqlalchemy.exc.OperationalError("connect", {}, Exception("connection refused"))
    calls = losing_storage(monkeypatch, failures=99, error=refused)
    with pytest.raises(UserError, match="cannot open storage|connection refused"):
        storage.open_storage(URL, heartbeat=False)
    assert len(calls) == 1


def test_a_race_that_never_ends_is_reported_after_the_last_attempt(monkeypatch):
    calls = losing_storage(monkeypatch, failures=99, error=DUPLICATE)
    with pytest.raises(UserError, match="duplicate key"):
        storage.open_storage(URL, heartbeat=False)
    assert len(calls) == storage.STORAGE_ATTEMPTS


def test_a_reader_that_races_the_creator_retries_and_opens(monkeypatch):
    # create=False on a server (report, dashboard, export): the tables can exist before the
    # creator has stamped Optuna's alembic_version, which the reader's RDBStorage then creates
    # too and loses (seen in CI: a dashboard polling while three workers start on PostgreSQL).
    calls = losing_storage(monkeypatch, failures=2, error=DUPLICATE)
    monkeypatch.setattr(storage, "_check_server_schema", lambda url, engine_kwargs: None)
    assert storage.open_storage(URL, heartbeat=False, create=False) == "opened"
    assert len(calls) == 3


def test_a_reader_reports_an_unreachable_server_at_once(monkeypatch):
    refused = sqlalchemy.exc.OperationalError("connect", {}, Exception("connection refused"))
    calls = losing_storage(monkeypatch, failures=99, error=refused)
    monkeypatch.setattr(storage, "_check_server_schema", lambda url, engine_kwargs: None)
    with pytest.raises(UserError, match="connection refused"):
        storage.open_storage(URL, heartbeat=False, create=False)
    assert len(calls) == 1


# ----------------------------------------------------------------------------------------------
# The same race on a real server: readers open a new schema while two creators create it
# ----------------------------------------------------------------------------------------------

RACE_ROUNDS = 10  # fresh schemas; before the readers retried, 20 rounds gave 26 failed opens
READERS = 6
CREATORS = 2
RACE_TIMEOUT = 30.0  # seconds a reader keeps trying while the schema does not exist yet


def _race_once(url: str) -> list[str]:
    """Creators and readers open ``url`` at once; the errors any of them got."""
    start = threading.Event()
    errors: list[str] = []

    def creator() -> None:
        start.wait()
        try:
            storage.open_storage(url, heartbeat=False).engine.dispose()
        except UserError as error:
            errors.append(f"creator: {error}")

    def reader() -> None:
        start.wait()
        deadline = time.monotonic() + RACE_TIMEOUT
        while time.monotonic() < deadline:
            try:
                storage.open_storage(url, heartbeat=False, create=False).engine.dispose()
                return
            except UserError as error:
                if "holds no Optuna study" not in str(error):  # not created yet: try again
                    errors.append(f"reader: {error}")
                    return
        errors.append("reader: the schema never appeared")

    threads = [threading.Thread(target=creator) for _ in range(CREATORS)]
    threads += [threading.Thread(target=reader) for _ in range(READERS)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join()
    return errors


def test_readers_and_creators_of_a_new_postgresql_schema_all_open_it():
    base = postgres_url()
    admin = sqlalchemy.create_engine(base)
    errors: list[str] = []
    try:
        for _ in range(RACE_ROUNDS):
            schema = f"race_{uuid.uuid4().hex[:12]}"
            with admin.begin() as connection:
                connection.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
            try:
                url = sqlalchemy.engine.make_url(base).update_query_dict(
                    {"options": f"-csearch_path={schema}"}
                )
                errors += _race_once(url.render_as_string(hide_password=False))
            finally:
                with admin.begin() as connection:
                    connection.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
    finally:
        admin.dispose()
    assert errors == [], errors[:5]
