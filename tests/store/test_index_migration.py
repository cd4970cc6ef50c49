"""Stores written before the index existed are indexed from their documents when opened."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import psycopg
import pytest

from secretsd.model import index as model_index
from secretsd.model.listing import Filter
from secretsd.model.secret import Secret
from secretsd.store import index, postgres, sqlite
from secretsd.store.base import ListQuery, Storage
from secretsd.store.changes import runners
from tests.store.conftest import POSTGRES_DSN

DAY = 86400.0
NOW = 1_700_000_000.0


def secrets_of_an_older_release() -> list[Secret]:
    def secret(name: str, created: float, **fields) -> Secret:
        arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf"
        return Secret(arn=arn, name=name, created=created, last_changed=created, **fields)

    return [
        secret("app/db", NOW - 3 * DAY, tags=[{"Key": "Team", "Value": "Blue"}]),
        secret("app/api", NOW - 2 * DAY, description="Billing API key"),
        secret("old", NOW - DAY, deleted_date=NOW - DAY, deletion_date=NOW + 6 * DAY),
        secret(
            "rotating",
            NOW - 40 * DAY,
            rotation_enabled=True,
            rotation_rules={"AutomaticallyAfterDays": 30},
        ),
    ]


def rows() -> list[tuple[str, str, int, bytes]]:
    stored = [(s.arn, s.name, 3, s.to_document()) for s in secrets_of_an_older_release()]
    # A record nothing can decode still opens the store; it is only left out of lists.
    return [*stored, ("arn:broken", "broken", 1, b"not a document")]


def check_indexed(store: Storage) -> None:
    def names(**query) -> list[str]:
        page, after = store.list_page(ListQuery(now=NOW, **query))
        assert after is None
        return [s.name for s in page]

    assert names(sort_by="name") == ["app/api", "app/db", "rotating"]
    assert names(include_planned_deletion=True) == ["rotating", "app/db", "app/api", "old"]
    assert names(filters=(Filter("tag-value", ("Blue",)),)) == ["app/db"]
    assert names(filters=(Filter("description", ("bill",)),)) == ["app/api"]
    # "all" starts words: "Billing API key" and "app/api" have a word "api", nothing "pi".
    assert names(filters=(Filter("all", ("API",)),)) == ["app/api"]
    assert names(filters=(Filter("all", ("pi",)),)) == []
    assert [s.name for s in store.rotation_candidates(NOW)] == ["rotating"]
    page, _ = store.list_page(ListQuery(now=NOW, sort_by="name", limit=1))
    assert page[0].revision == 3
    assert Secret.from_document(page[0].document).description == "Billing API key"
    assert store.load_by_name("broken") is not None


def test_an_sqlite_file_of_schema_1_gets_its_index(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    raw = sqlite3.connect(path)
    for statement in sqlite.MIGRATIONS[0]:
        raw.execute(statement)
    raw.executemany("INSERT INTO secrets VALUES (?, ?, ?, ?)", rows())
    raw.execute("PRAGMA user_version = 1")
    raw.commit()
    raw.close()
    store = sqlite.SQLiteStorage(path)
    try:
        check_indexed(store)
    finally:
        store.close()


def test_an_sqlite_file_of_schema_2_gets_the_words_of_the_all_filter(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        # The tables of schema 2, and nothing a later schema adds.
        for steps in sqlite.MIGRATIONS[:2]:
            for step in steps:
                step(conn) if callable(step) else conn.execute(step)
        conn.executemany("INSERT INTO secrets VALUES (?, ?, ?, ?)", rows())
        index.rebuild(*runners(conn, "?"))
        # What schema 2 had: the index without word rows.
        conn.execute("DELETE FROM secret_attributes WHERE kind = ?", (model_index.WORD,))
        conn.execute("PRAGMA user_version = 2")
    store = sqlite.SQLiteStorage(path)
    try:
        check_indexed(store)
    finally:
        store.close()


@pytest.mark.postgres
def test_a_postgres_schema_of_version_1_gets_its_index(pg_schema: str) -> None:
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as raw:
        raw.execute(f"CREATE SCHEMA {pg_schema}")
        raw.execute(f"SET search_path = {pg_schema}")
        for statement in postgres.MIGRATIONS[0]:
            raw.execute(statement)
        raw.execute("CREATE TABLE schema_version (version integer NOT NULL)")
        raw.execute("INSERT INTO schema_version VALUES (1)")
        with raw.cursor() as cursor:
            cursor.executemany("INSERT INTO secrets VALUES (%s, %s, %s, %s)", rows())
    store = postgres.PostgresStorage(POSTGRES_DSN, schema=pg_schema)
    try:
        check_indexed(store)
    finally:
        store.close()
