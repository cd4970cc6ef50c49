"""The IAM user part of the storage interface, on every backend, plain and encrypted."""

from __future__ import annotations

import contextlib
import sqlite3
import threading

import psycopg
import pytest

from secretsd.model.errors import DecryptionFailure
from secretsd.store.base import Conflict, Storage, StoredUser, TamperedRecord, UserChange
from secretsd.store.encryption import EncryptedStorage
from secretsd.store.postgres import PostgresStorage
from secretsd.store.sqlite import SQLiteStorage
from tests.store.conftest import POSTGRES_DSN


def create(store: Storage, name: str, document: bytes = b'{"u":1}', **keys: bytes) -> StoredUser:
    revision = store.commit_user(UserChange(name, None, document, put_keys=keys))
    assert revision == 1
    return StoredUser(name, 1, document)


def test_users_are_found_regardless_of_case_and_keep_theirs(store: Storage) -> None:
    created = create(store, "App-Reader")
    assert store.load_user("App-Reader") == created
    assert store.load_user("app-reader") == created
    assert store.load_user("APP-READER") == created
    assert store.load_user("other") is None


def test_a_name_taken_in_another_case_conflicts(store: Storage) -> None:
    create(store, "bob", b"first")
    with pytest.raises(Conflict):
        store.commit_user(UserChange("BOB", None, b"second"))
    assert store.load_user("bob") == StoredUser("bob", 1, b"first")


def test_updates_move_the_revision_and_stale_ones_conflict(store: Storage) -> None:
    create(store, "u", b"one")
    assert store.commit_user(UserChange("u", 1, b"two")) == 2
    with pytest.raises(Conflict):
        store.commit_user(UserChange("u", 1, b"stale"))
    assert store.load_user("u") == StoredUser("u", 2, b"two")
    with pytest.raises(Conflict):
        store.commit_user(UserChange("nobody", 1, b"x"))


def test_access_keys_come_with_their_users_current_document(store: Storage) -> None:
    create(store, "app", b"v1", AKIAAPP000000000001=b"secret-one")
    assert store.load_access_key("AKIAAPP000000000001") == (
        StoredUser("app", 1, b"v1"),
        b"secret-one",
    )
    store.commit_user(UserChange("app", 1, b"v2", put_keys={"AKIAAPP000000000002": b"two"}))
    assert store.load_access_key("AKIAAPP000000000001") == (
        StoredUser("app", 2, b"v2"),
        b"secret-one",
    )
    assert store.load_access_key("AKIAAPP000000000002") == (StoredUser("app", 2, b"v2"), b"two")
    store.commit_user(UserChange("app", 2, b"v3", drop_keys=["AKIAAPP000000000001"]))
    assert store.load_access_key("AKIAAPP000000000001") is None
    assert store.load_access_key("AKIAAPP000000000002") == (StoredUser("app", 3, b"v3"), b"two")
    assert store.load_access_key("AKIANOSUCHKEY0000000") is None


def test_an_access_key_id_belongs_to_one_user(store: Storage) -> None:
    create(store, "first", AKIASHARED0000000000=b"mine")
    create(store, "second")
    with pytest.raises(Conflict):
        store.commit_user(UserChange("second", 1, b"x", put_keys={"AKIASHARED0000000000": b"no"}))
    # The failed change left the second user as it was.
    assert store.load_user("second") == StoredUser("second", 1, b'{"u":1}')
    assert store.load_access_key("AKIASHARED0000000000") == (
        StoredUser("first", 1, b'{"u":1}'),
        b"mine",
    )


def test_deleting_a_user_takes_its_keys_and_frees_the_name(store: Storage) -> None:
    create(store, "gone", AKIAGONE000000000000=b"s")
    with pytest.raises(Conflict):
        store.commit_user(UserChange("gone", 7, delete=True))
    assert store.commit_user(UserChange("GONE", 1, delete=True)) == 0
    assert store.load_user("gone") is None
    assert store.load_access_key("AKIAGONE000000000000") is None
    create(store, "Gone")
    assert store.load_user("gone") == StoredUser("Gone", 1, b'{"u":1}')


def test_users_are_listed_by_name_regardless_of_case(store: Storage) -> None:
    for name in ("carol", "Bob", "alice", "Dave"):
        create(store, name)
    assert [user.name for user in store.list_users()] == ["alice", "Bob", "carol", "Dave"]


def test_users_outlive_reopening(reopen) -> None:
    store = reopen()
    create(store, "kept", b"doc", AKIAKEPT000000000000=b"secret")
    again = reopen()
    assert again.load_access_key("AKIAKEPT000000000000") == (
        StoredUser("kept", 1, b"doc"),
        b"secret",
    )


def test_concurrent_key_additions_from_one_revision_leave_one_winner(store: Storage) -> None:
    create(store, "racy")
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def add(index: int) -> None:
        barrier.wait()
        try:
            store.commit_user(
                UserChange("racy", 1, b"next", put_keys={f"AKIARACE{index:012d}": b"k"})
            )
        except Conflict:
            outcomes.append("conflict")
        else:
            outcomes.append("won")

    threads = [threading.Thread(target=add, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "won"]
    found = [store.load_access_key(f"AKIARACE{i:012d}") for i in range(4)]
    assert sum(1 for item in found if item is not None) == 1


def test_the_encrypted_store_seals_key_secrets_and_refuses_an_edited_user(store: Storage) -> None:
    if not isinstance(store, EncryptedStorage):
        pytest.skip("a property of the encryption layer")
    create(store, "sealed", b'{"policy":"allow"}', AKIASEALED0000000000=b"the-secret-half")
    inner = store.inner
    found = inner.load_access_key("AKIASEALED0000000000")
    assert found is not None
    assert b"the-secret-half" not in found[1]
    raw = inner.load_user("sealed")
    assert raw is not None
    # A document rewritten below the encryption layer (say, a policy widened) is refused.
    forged = raw.document.replace(b"allow", b"ALLOW")
    inner.commit_user(UserChange("sealed", 1, forged))
    with pytest.raises(TamperedRecord):
        store.load_user("sealed")
    with pytest.raises(TamperedRecord):
        store.load_access_key("AKIASEALED0000000000")


def test_a_key_moved_to_another_users_row_does_not_open(store: Storage) -> None:
    if not isinstance(store, EncryptedStorage):
        pytest.skip("a property of the encryption layer")
    create(store, "alice", AKIAALICE00000000000=b"alice-secret")
    create(store, "admin")
    assert store.load_access_key("AKIAALICE00000000000") is not None  # opened once, remembered
    inner = store.inner
    # Below the encryption layer, alice's key is re-pointed at the admin's row.
    if hasattr(inner, "_conn"):
        conn = inner._conn()
        conn.execute("UPDATE iam_access_keys SET folded = 'admin'")
    else:
        with inner._pool.connection() as conn:
            conn.execute("UPDATE iam_access_keys SET folded = 'admin'")
    with pytest.raises(DecryptionFailure):
        store.load_access_key("AKIAALICE00000000000")


def test_the_change_marker_moves_with_every_commit_anywhere(reopen) -> None:
    store, other = reopen(), reopen()
    create(store, "marked")
    before = store.change_marker()
    if before is None:
        pytest.skip("this backend has no change marker: every read goes to the store")
    assert store.change_marker() == before
    # Another connection (as another process would) commits: the marker moves.
    other.commit_user(UserChange("marked", 1, b"changed"))
    after_other = store.change_marker()
    assert after_other != before
    # This very store commits, from this thread and from another: it moves again.
    store.commit_user(UserChange("marked", 2, b"again"))
    after_own = store.change_marker()
    assert after_own != after_other
    thread = threading.Thread(target=store.commit_user, args=(UserChange("marked", 3, b"x"),))
    thread.start()
    thread.join()
    assert store.change_marker() != after_own


def test_a_store_from_before_users_gains_their_tables(tmp_path) -> None:
    path = tmp_path / "old.db"
    SQLiteStorage(path).close()
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("DROP TABLE iam_access_keys")
        conn.execute("DROP TABLE iam_users")
        conn.execute("PRAGMA user_version = 3")
    store = SQLiteStorage(path)
    try:
        create(store, "after-upgrade", AKIAUPGRADE000000000=b"s")
        assert store.load_access_key("AKIAUPGRADE000000000") is not None
    finally:
        store.close()


@pytest.mark.postgres
def test_a_postgres_store_from_before_users_gains_their_tables(pg_schema: str) -> None:
    PostgresStorage(POSTGRES_DSN, schema=pg_schema).close()
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"DROP TABLE {pg_schema}.iam_access_keys")
        conn.execute(f"DROP TABLE {pg_schema}.iam_users")
        conn.execute(f"UPDATE {pg_schema}.schema_version SET version = 3")
    store = PostgresStorage(POSTGRES_DSN, schema=pg_schema)
    try:
        create(store, "after-upgrade", AKIAUPGRADE000000000=b"s")
        assert store.load_access_key("AKIAUPGRADE000000000") is not None
    finally:
        store.close()
