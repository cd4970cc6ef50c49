"""Backends for the store tests: every conformance test runs against each of them."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import psycopg
import pytest

from secretsd.service.timed_storage import TimedStorage
from secretsd.store.base import Storage
from secretsd.store.encryption import EncryptedStorage
from secretsd.store.keys import Keyring, MasterKey
from secretsd.store.postgres import PostgresStorage
from secretsd.store.sqlite import SQLiteStorage

POSTGRES_DSN = os.environ.get(
    "SECRETSD_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)

BACKENDS = [
    "sqlite",
    "sqlite+encrypted",
    # The timing wrapper the server puts around the store when metrics are on.
    "sqlite+timed",
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("postgres+encrypted", marks=pytest.mark.postgres),
]


@pytest.fixture
def pg_schema(postgres_available: None) -> Iterator[str]:
    """A fresh, uniquely named schema, dropped with everything in it afterwards."""
    schema = f"secretsd_test_{secrets.token_hex(6)}"
    yield schema
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(params=BACKENDS)
def reopen(request: pytest.FixtureRequest, tmp_path) -> Iterator[Callable[[], Storage]]:
    """Opens the parametrised backend; each call opens the same store again."""
    kind = request.param
    opened: list[Storage] = []
    key = MasterKey.generate()
    if kind.startswith("postgres"):
        schema = request.getfixturevalue("pg_schema")

        def open_inner() -> Storage:
            return PostgresStorage(POSTGRES_DSN, schema=schema)
    else:

        def open_inner() -> Storage:
            return SQLiteStorage(tmp_path / "store.db")

    def open_store() -> Storage:
        store = open_inner()
        if kind.endswith("+encrypted"):
            store = EncryptedStorage(store, Keyring(key))
        if kind.endswith("+timed"):
            store = TimedStorage(store, point_reads=True)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def inner(request: pytest.FixtureRequest, tmp_path) -> Iterator[Storage]:
    """A bare backend, for tests of the encryption layer over each of them."""
    if request.param == "sqlite":
        store: Storage = SQLiteStorage(tmp_path / "store.db")
    else:
        store = PostgresStorage(POSTGRES_DSN, schema=request.getfixturevalue("pg_schema"))
    yield store
    store.close()


@pytest.fixture
def store(reopen: Callable[[], Storage]) -> Storage:
    return reopen()
