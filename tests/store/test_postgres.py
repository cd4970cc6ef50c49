"""PostgreSQL specifics: schemas, versions, dropped connections, what messages show."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from secretsd.store.base import Change, StorageError
from secretsd.store.postgres import SCHEMA_VERSION, PostgresStorage
from tests.store.conftest import POSTGRES_DSN

pytestmark = pytest.mark.postgres


def _admin() -> psycopg.Connection:
    return psycopg.connect(POSTGRES_DSN, autocommit=True)


def test_tables_live_in_the_given_schema_at_the_current_version(pg_schema: str) -> None:
    PostgresStorage(POSTGRES_DSN, schema=pg_schema).close()
    with _admin() as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (pg_schema,),
            )
        }
        version = conn.execute(f"SELECT version FROM {pg_schema}.schema_version").fetchall()
    assert {"secrets", "secret_values", "events", "settings", "schema_version"} <= tables
    assert version == [(SCHEMA_VERSION,)]


def test_two_schemas_are_two_stores(pg_schema: str) -> None:
    other = pg_schema + "_other"
    a = PostgresStorage(POSTGRES_DSN, schema=pg_schema)
    b = PostgresStorage(POSTGRES_DSN, schema=other)
    try:
        a.commit(Change("arn:1", "same-name", None, b"in a"))
        b.commit(Change("arn:1", "same-name", None, b"in b"))
        assert a.load_by_name("same-name").document == b"in a"
        assert b.load_by_name("same-name").document == b"in b"
    finally:
        a.close()
        b.close()
        with _admin() as conn:
            conn.execute(f"DROP SCHEMA {other} CASCADE")


def test_nodes_starting_together_migrate_once(pg_schema: str) -> None:
    stores: list[PostgresStorage] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(5)

    def start() -> None:
        barrier.wait()
        try:
            stores.append(PostgresStorage(POSTGRES_DSN, schema=pg_schema))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert errors == []
    with _admin() as conn:
        rows = conn.execute(f"SELECT version FROM {pg_schema}.schema_version").fetchall()
    assert rows == [(SCHEMA_VERSION,)]


def test_a_schema_from_a_newer_release_is_refused(pg_schema: str) -> None:
    PostgresStorage(POSTGRES_DSN, schema=pg_schema).close()
    with _admin() as conn:
        conn.execute(f"UPDATE {pg_schema}.schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StorageError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        PostgresStorage(POSTGRES_DSN, schema=pg_schema)


@pytest.mark.parametrize("schema", ["", "Upper", "semi;colon", "a" * 64, "1starts_with_digit"])
def test_unsafe_schema_names_are_refused(schema: str) -> None:
    with pytest.raises(StorageError, match="invalid schema name"):
        PostgresStorage(POSTGRES_DSN, schema=schema)


def _sessions(schema: str) -> set[int]:
    with _admin() as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (f"secretsd:{schema}",)
        ).fetchall()
    return {pid for (pid,) in rows}


def test_dropped_connections_are_replaced(pg_schema: str) -> None:
    store = PostgresStorage(POSTGRES_DSN, schema=pg_schema, pool_size=3)
    try:
        store.commit(Change("arn:1", "one", None, b"doc", {"v1": b"x"}))
        dropped = _sessions(pg_schema)
        assert dropped
        with _admin() as conn:  # as a server restart would, every session of the store
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", (list(dropped),)
            )
        assert store.load_by_name("one").document == b"doc"
        assert store.commit(Change("arn:1", "one", 1, b"doc2")) == 2
        assert not _sessions(pg_schema) & dropped
    finally:
        store.close()


def test_messages_never_show_the_password(pg_schema: str) -> None:
    # The test server trusts local connections, so any password is accepted.
    dsn = psycopg.conninfo.make_conninfo(POSTGRES_DSN, password="pw-do-not-show")
    store = PostgresStorage(dsn, schema=pg_schema)
    try:
        assert "pw-do-not-show" not in repr(store)
        assert pg_schema in store.location
    finally:
        store.close()
    unreachable = "postgresql://postgres:pw-do-not-show@127.0.0.1:1/test"
    with pytest.raises(StorageError) as caught:
        PostgresStorage(unreachable, schema=pg_schema, connect_timeout=2)
    assert "pw-do-not-show" not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)


def test_threads_share_a_bounded_pool_of_sessions(pg_schema: str) -> None:
    store = PostgresStorage(POSTGRES_DSN, schema=pg_schema, pool_size=3)
    store.commit(Change("arn:1", "one", None, b"doc", {"v1": b"x"}))
    errors: list[BaseException] = []
    seen: set[int] = set()
    barrier = threading.Barrier(12)

    def use() -> None:
        try:
            barrier.wait()
            for _ in range(20):
                assert store.read_value("arn:1", "v1") == b"x"
            seen.update(_sessions(pg_schema))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=use) for _ in range(12)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert 1 <= len(seen) <= 3
    finally:
        store.close()
    assert _sessions(pg_schema) == set()


def _waiting_on_a_lock(schema: str) -> bool:
    with _admin() as conn:
        return (
            conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = %s AND wait_event_type = 'Lock'",
                (f"secretsd:{schema}",),
            ).fetchone()[0]
            > 0
        )


def test_reads_may_block_and_a_locked_table_is_why(pg_schema: str) -> None:
    store = PostgresStorage(POSTGRES_DSN, schema=pg_schema)
    store.commit(Change("arn:1", "one", None, b"doc"))
    found: list[object] = []
    try:
        assert store.reads_may_block
        with _admin() as locker, locker.transaction():
            locker.execute(f"LOCK TABLE {pg_schema}.secrets IN ACCESS EXCLUSIVE MODE")
            reader = threading.Thread(target=lambda: found.append(store.load_by_name("one")))
            reader.start()
            deadline = time.monotonic() + 30
            while not _waiting_on_a_lock(pg_schema):
                assert time.monotonic() < deadline, "the read never waited on the lock"
            assert found == []
        reader.join(timeout=30)
        assert [s.document for s in found] == [b"doc"]
    finally:
        store.close()


def test_a_later_release_migrates_an_existing_schema(pg_schema: str, monkeypatch) -> None:
    store = PostgresStorage(POSTGRES_DSN, schema=pg_schema)
    store.commit(Change("arn:1", "one", None, b"doc", {"v1": b"x"}))
    store.close()
    from secretsd.store import postgres as module

    later = (*module.MIGRATIONS, ("ALTER TABLE secrets ADD COLUMN note text",))
    monkeypatch.setattr(module, "MIGRATIONS", later)
    store = PostgresStorage(POSTGRES_DSN, schema=pg_schema)
    try:
        assert store.read_value("arn:1", "v1") == b"x"
    finally:
        store.close()
    with _admin() as conn:
        version = conn.execute(f"SELECT version FROM {pg_schema}.schema_version").fetchone()
        columns = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'secrets'",
            (pg_schema,),
        ).fetchall()
    assert version == (len(later),)
    assert ("note",) in columns


def test_claim_lock_admits_one_holder_at_a_time(pg_schema: str) -> None:
    node_a = PostgresStorage(POSTGRES_DSN, schema=pg_schema)
    node_b = PostgresStorage(POSTGRES_DSN, schema=pg_schema)
    other_store = PostgresStorage(POSTGRES_DSN, schema=pg_schema + "_b")
    try:
        with node_a.claim_lock("rotate arn:1") as held:
            assert held
            with node_b.claim_lock("rotate arn:1") as also:
                assert not also
            with node_b.claim_lock("rotate arn:2") as different_name:
                assert different_name
            with other_store.claim_lock("rotate arn:1") as different_store:
                assert different_store
        with node_b.claim_lock("rotate arn:1") as after_release:
            assert after_release
    finally:
        for store in (node_a, node_b, other_store):
            store.close()
        with _admin() as conn:
            conn.execute(f"DROP SCHEMA {pg_schema}_b CASCADE")
