"""Opening a new server database while another process creates its schema (no server needed:
Optuna's RDBStorage is replaced by one that loses the race a given number of times)."""

from __future__ import annotations

import optuna
import pytest
import sqlalchemy

from nin_search import storage
from nin_search.errors import UserError

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


def test_opening_an_existing_database_is_not_retried_and_reports_its_error(monkeypatch):
    # create=False on a server (report, export, ...): one attempt, and its error, never
    # "unreachable".
    calls = losing_storage(monkeypatch, failures=99, error=DUPLICATE)
    monkeypatch.setattr(storage, "_check_server_schema", lambda url, engine_kwargs: None)
    with pytest.raises(UserError, match="duplicate key"):
        storage.open_storage(URL, heartbeat=False, create=False)
    assert len(calls) == 1
