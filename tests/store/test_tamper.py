"""Tamper evidence: documents edited in the database are refused, one secret at a time."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretsd.model import versions
from secretsd.model.secret import AWSCURRENT, AWSPREVIOUS, Secret, UnreadableRecord
from secretsd.store import documents, open_storage
from secretsd.store.base import Change, Storage, StorageError, StoredSecret, TamperedRecord
from secretsd.store.encryption import (
    KEY_CHECK_AUTHENTICATED,
    KEY_CHECK_LEGACY,
    KEY_CHECK_SETTING,
    EncryptedStorage,
    open_sealed,
    seal,
)
from secretsd.store.keys import ENV_VAR, Keyring, MasterKey
from secretsd.store.postgres import PostgresStorage
from secretsd.store.sqlite import SQLiteStorage
from tests.store.conftest import POSTGRES_DSN

PREFIX = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
KEY = MasterKey.generate()
KEYRING = Keyring(KEY)
VALUE_ONE, VALUE_TWO = b"old password 7f3a", b"new password 91c2"

Sql = Callable[[str, tuple], list[tuple]]


class Backend:
    """A backend the test can open through the encryption layer and edit behind its back."""

    def __init__(self, open_inner: Callable[[], Storage], sql: Sql) -> None:
        self.open_inner = open_inner
        self.sql = sql
        self.opened: list[Storage] = []

    def open(self, keyring: Keyring = KEYRING) -> EncryptedStorage:
        store = EncryptedStorage(self.open_inner(), keyring)
        self.opened.append(store)
        return store

    def raw(self) -> Storage:
        store = self.open_inner()
        self.opened.append(store)
        return store

    def document(self, name: str) -> bytes:
        return bytes(self.sql("SELECT document FROM secrets WHERE name = ?", (name,))[0][0])

    def set_document(self, name: str, document: bytes) -> None:
        self.sql("UPDATE secrets SET document = ? WHERE name = ?", (document, name))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "store.db"

        def sql(statement: str, args: tuple) -> list[tuple]:
            # The sqlite3 module, straight on the file: what someone with the file can do.
            with sqlite3.connect(path) as conn:
                return conn.execute(statement, args).fetchall()

        result = Backend(lambda: SQLiteStorage(path), sql)
    else:
        schema = request.getfixturevalue("pg_schema")

        def sql(statement: str, args: tuple) -> list[tuple]:
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
                conn.execute("SELECT set_config('search_path', %s, false)", (schema,))
                cursor = conn.execute(statement.replace("?", "%s"), args)
                return cursor.fetchall() if cursor.description else []

        result = Backend(lambda: PostgresStorage(POSTGRES_DSN, schema=schema), sql)
    yield result
    for store in result.opened:
        store.close()


def create(store: Storage, name: str) -> Secret:
    """A secret with two versions: v1 AWSPREVIOUS, v2 AWSCURRENT."""
    secret = Secret(arn=f"{PREFIX}{name}-AbCdEf", name=name, created=1.0, last_changed=1.0)
    versions.add_version(secret, "v1", 1.0, None)
    store.commit(Change(secret.arn, name, None, secret.to_document(), {"v1": VALUE_ONE}))
    versions.add_version(secret, "v2", 2.0, None)
    store.commit(Change(secret.arn, name, 1, secret.to_document(), {"v2": VALUE_TWO}))
    return secret


def current_value(store: Storage, name: str) -> bytes:
    stored = store.load_by_name(name)
    secret = Secret.from_document(stored.document, name=name)
    return store.read_value(secret.arn, secret.holder(AWSCURRENT).version_id)


def assert_refused(store: Storage, secret: Secret, name: str | None = None) -> TamperedRecord:
    with pytest.raises(TamperedRecord) as by_arn:
        store.load_by_arn(secret.arn)
    with pytest.raises(TamperedRecord):
        store.load_by_name(name or secret.name)
    error = by_arn.value
    assert isinstance(error, StorageError) and isinstance(error, UnreadableRecord)
    assert error.arn == secret.arn and secret.arn in str(error)
    for value in (VALUE_ONE, VALUE_TWO):
        assert value.decode() not in str(error) and value.decode() not in repr(error)
    return error


# -- the record format -------------------------------------------------------------------

texts = st.text(max_size=100)


@given(arn=texts, name=texts, revision=st.integers(1, 2**40), document=st.binary(max_size=2048))
def test_a_record_verifies_for_its_row_only(arn, name, revision, document) -> None:
    record = documents.authenticate(KEYRING, arn, name, revision, document)
    assert record.endswith(document)
    assert documents.verify(KEYRING, StoredSecret(arn, name, revision, record)) == document
    for other in (
        StoredSecret(arn + "x", name, revision, record),
        StoredSecret(arn, name + "x", revision, record),
        StoredSecret(arn, name, revision + 1, record),
    ):
        with pytest.raises(TamperedRecord):
            documents.verify(KEYRING, other)


@given(document=st.binary(max_size=256), data=st.data())
def test_any_flipped_bit_of_a_record_is_refused(document: bytes, data) -> None:
    record = bytearray(documents.authenticate(KEYRING, "arn:x", "x", 1, document))
    position = data.draw(st.integers(0, len(record) - 1))
    record[position] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(TamperedRecord):
        documents.verify(KEYRING, StoredSecret("arn:x", "x", 1, bytes(record)))


def test_another_master_key_s_mac_does_not_verify() -> None:
    record = documents.authenticate(Keyring(MasterKey.generate()), "arn:x", "x", 1, b"{}")
    with pytest.raises(TamperedRecord, match="not configured"):
        documents.verify(KEYRING, StoredSecret("arn:x", "x", 1, record))
    assert MasterKey(b"k" * 32).mac(b"m") == MasterKey(b"k" * 32).mac(b"m")
    assert MasterKey(b"k" * 32).mac(b"m") != MasterKey(b"j" * 32).mac(b"m")


# -- an intact store ----------------------------------------------------------------------


def test_an_intact_store_reads_edits_and_reopens(backend: Backend) -> None:
    store = backend.open()
    secret = create(store, "db")
    assert current_value(store, "db") == VALUE_TWO
    assert store.load_by_name("db").revision == 2
    [listed] = store.iter_secrets()
    assert listed.problem is None and listed.check() is listed
    assert Secret.from_document(listed.document) == secret
    store.close()
    again = backend.open()
    assert current_value(again, "db") == VALUE_TWO
    # A rename rewrites the record for the new name.
    again.commit(Change(secret.arn, "renamed", 2, secret.to_document()))
    assert again.load_by_name("renamed").revision == 3
    assert again.load_by_name("db") is None


# -- edits in the database --------------------------------------------------------------------


def test_a_staging_label_moved_in_the_database_is_refused(backend: Backend, caplog) -> None:
    store = backend.open()
    secret = create(store, "db")
    bystander = create(store, "bystander")
    record = backend.document("db")
    # Roll the secret back: AWSCURRENT onto the old version, keeping the header bytes.
    start = 3 + record[2] + 32  # after the header and the tag
    data = json.loads(record[start:])
    for version in data["versions"]:
        version["stages"] = [AWSCURRENT] if version["version_id"] == "v1" else [AWSPREVIOUS]
    backend.set_document("db", record[:start] + json.dumps(data).encode())

    with caplog.at_level(logging.ERROR, logger="secretsd.store"):
        error = assert_refused(store, secret)
        assert_refused(store, secret)
    assert "altered" in error.reason
    # One line for the record, however often it is asked for; naming it, never a value.
    lines = [r.getMessage() for r in caplog.records if r.name == "secretsd.store"]
    assert len(lines) == 1 and secret.arn in lines[0] and "db" in lines[0]
    assert VALUE_ONE.decode() not in caplog.text
    # The other secret is untouched by its neighbour's problem.
    assert current_value(store, "bystander") == VALUE_TWO
    assert store.load_by_arn(bystander.arn).problem is None


def test_documents_swapped_between_two_secrets_are_refused(backend: Backend) -> None:
    store = backend.open()
    a, b = create(store, "a"), create(store, "b")
    doc_a, doc_b = backend.document("a"), backend.document("b")
    backend.set_document("a", doc_b)
    backend.set_document("b", doc_a)
    assert_refused(store, a)
    assert_refused(store, b)


def test_a_document_copied_onto_another_secret_is_refused(backend: Backend) -> None:
    store = backend.open()
    create(store, "a")
    b = create(store, "b")
    backend.set_document("b", backend.document("a"))
    assert_refused(store, b)
    assert current_value(store, "a") == VALUE_TWO


def test_a_renamed_row_is_refused(backend: Backend) -> None:
    store = backend.open()
    secret = create(store, "db")
    backend.sql("UPDATE secrets SET name = ? WHERE name = ?", ("db-renamed", "db"))
    assert store.load_by_name("db") is None
    assert_refused(store, secret, "db-renamed")


def test_a_moved_revision_column_is_refused(backend: Backend) -> None:
    store = backend.open()
    secret = create(store, "db")
    backend.sql("UPDATE secrets SET revision = 7 WHERE name = ?", ("db",))
    assert "revision" in assert_refused(store, secret).reason


def test_a_plain_document_in_place_of_the_record_is_refused(backend: Backend) -> None:
    store = backend.open()
    secret = create(store, "db")
    backend.set_document("db", secret.to_document())
    assert "not authenticated" in assert_refused(store, secret).reason


@pytest.mark.parametrize(
    "mangle",
    [
        lambda r: r[:2],
        lambda r: r[:20],
        lambda r: r[:1] + b"\x09" + r[2:],  # unknown record format
        lambda r: r[:3] + b"f" * r[2] + r[3 + r[2] :],  # unknown key id
        lambda r: r[:3] + b"\xff" * r[2] + r[3 + r[2] :],  # not ASCII
        lambda r: r[:-1],
        lambda r: r + b" ",
    ],
)
def test_a_mangled_record_is_refused(backend: Backend, mangle) -> None:
    store = backend.open()
    secret = create(store, "db")
    backend.set_document("db", mangle(backend.document("db")))
    assert_refused(store, secret)


def test_the_record_names_its_master_key_so_an_older_key_still_verifies(backend: Backend) -> None:
    store = backend.open()
    secret = create(store, "db")
    store.close()
    rotated = Keyring(MasterKey.generate(), [KEY])
    again = backend.open(rotated)
    assert current_value(again, "db") == VALUE_TWO
    # Written now under the new current key; a ring without the old key refuses the old
    # record, naming the key.
    create(again, "new")
    assert backend.document("new")[3:19] == rotated.current.key_id.encode()
    assert backend.document("db")[3:19] == KEY.key_id.encode()
    again.close()
    only_new = Keyring(rotated.current)
    inner = backend.raw()
    inner.put_setting(
        KEY_CHECK_SETTING,
        seal(only_new, "secretsd:master-key-check", "v1", KEY_CHECK_AUTHENTICATED),
    )
    third = backend.open(only_new)
    assert current_value(third, "new") == VALUE_TWO
    assert "not configured" in assert_refused(third, secret).reason


def test_replaying_an_older_intact_record_is_not_detected(backend: Backend) -> None:
    """The documented limit: with its revision put back too, an old record verifies."""
    store = backend.open()
    create(store, "db")
    old = backend.sql("SELECT revision, document FROM secrets WHERE name = ?", ("db",))[0]
    secret = Secret.from_document(store.load_by_name("db").document)
    versions.add_version(secret, "v3", 3.0, None)
    store.commit(Change(secret.arn, "db", 2, secret.to_document(), {"v3": b"newest"}))
    assert current_value(store, "db") == b"newest"
    backend.sql(
        "UPDATE secrets SET revision = ?, document = ? WHERE name = ?", (old[0], old[1], "db")
    )
    assert current_value(store, "db") == VALUE_TWO


# -- one bad record stays one bad record --------------------------------------------------------


def test_iteration_yields_a_bad_record_marked_and_goes_on(backend: Backend, caplog) -> None:
    store = backend.open()
    names = [f"s{i:03d}" for i in range(300)]  # more than one page of the backends
    for name in names:
        store.commit(Change(f"{PREFIX}{name}", name, None, b"{}"), durable=False)
    good = create(store, "z-good")
    future = Secret(arn=f"{PREFIX}z-future", name="z-future", created=1.0, last_changed=1.0)
    data = json.loads(future.to_document()) | {"format": "2.0"}
    store.commit(Change(future.arn, future.name, None, json.dumps(data).encode()))
    backend.set_document("s150", backend.document("s151"))

    with caplog.at_level(logging.ERROR, logger="secretsd.store"):
        listed = list(store.iter_secrets())
        list(store.iter_secrets())
    assert [s.name for s in listed] == [*names, "z-future", "z-good"]
    [bad] = [s for s in listed if s.problem is not None]
    assert bad.name == "s150" and bad.document == b""
    assert isinstance(bad.problem, TamperedRecord) and bad.problem.secret == "s150"
    assert len([r for r in caplog.records if "s150" in r.getMessage()]) == 1

    # What ListSecrets and the scheduler do: read each record, skip the unreadable ones.
    read, skipped = [], []
    for stored in [bad, *listed[-2:]]:
        try:
            read.append(Secret.from_document(stored.check().document, name=stored.name))
        except UnreadableRecord as exc:
            skipped.append(exc.secret)
    assert [s.name for s in read] == ["z-good"] and read[0] == good
    assert skipped == ["s150", "z-future"]
    # A caller that forgets check() still gets a typed error, not the record.
    with pytest.raises(UnreadableRecord, match="s150"):
        Secret.from_document(bad.document, name=bad.name)


# -- stores written before documents were authenticated ---------------------------------------


def write_legacy_store(inner: Storage, names: list[str]) -> dict[str, Secret]:
    """What the previous release left: plain documents, sealed values, the old check record."""
    inner.put_setting(
        KEY_CHECK_SETTING, seal(KEYRING, "secretsd:master-key-check", "v1", KEY_CHECK_LEGACY)
    )
    secrets = {}
    for name in names:
        secret = Secret(arn=f"{PREFIX}{name}-Legacy", name=name, created=1.0, last_changed=1.0)
        versions.add_version(secret, "v1", 1.0, None)
        document = re.sub(rb'"format":"[0-9.]+"', b'"format":1', secret.to_document())
        secret.document_format = (1, 0)  # what the bare 1 reads as
        sealed = seal(KEYRING, secret.arn, "v1", VALUE_ONE)
        inner.commit(Change(secret.arn, name, None, document, {"v1": sealed}))
        secrets[name] = secret
    return secrets


def test_a_store_of_the_previous_release_opens_and_is_authenticated_once(
    backend: Backend, caplog
) -> None:
    legacy = write_legacy_store(backend.raw(), ["a", "b", "c"])
    with caplog.at_level(logging.INFO, logger="secretsd.store"):
        store = backend.open()
    assert "Authenticated the documents of 3 secrets" in caplog.text
    for name, secret in legacy.items():
        stored = store.load_by_name(name)
        assert stored.revision == 2
        assert Secret.from_document(stored.document) == secret
        assert current_value(store, name) == VALUE_ONE
    check = backend.raw().get_setting(KEY_CHECK_SETTING)
    assert open_sealed(KEYRING, "secretsd:master-key-check", "v1", check) == (
        KEY_CHECK_AUTHENTICATED
    )
    store.close()

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="secretsd.store"):
        again = backend.open()
    assert "Authenticated" not in caplog.text
    assert again.load_by_name("a").revision == 2
    # From now on, a plain document is refused like any other edit.
    backend.set_document("b", legacy["b"].to_document())
    assert "not authenticated" in assert_refused(again, legacy["b"]).reason


def test_an_interrupted_migration_resumes(backend: Backend, caplog) -> None:
    legacy = write_legacy_store(backend.raw(), ["a", "b"])
    first = backend.open()
    first.close()
    # As if the run had stopped after "a": "b" plain again, the check record still old.
    inner = backend.raw()
    backend.set_document("b", legacy["b"].to_document())
    inner.put_setting(
        KEY_CHECK_SETTING, seal(KEYRING, "secretsd:master-key-check", "v1", KEY_CHECK_LEGACY)
    )
    with caplog.at_level(logging.INFO, logger="secretsd.store"):
        store = backend.open()
    assert "Authenticated the documents of 1 secrets" in caplog.text
    assert store.load_by_name("a").revision == 2
    assert store.load_by_name("b").revision == 3


def test_a_store_that_lost_its_check_record_does_not_trust_plain_documents(
    backend: Backend,
) -> None:
    legacy = write_legacy_store(backend.raw(), ["a"])
    backend.sql("DELETE FROM settings WHERE key = ?", (KEY_CHECK_SETTING,))
    store = backend.open()
    assert_refused(store, legacy["a"])


def test_open_storage_opens_a_data_directory_of_the_previous_release(tmp_path: Path) -> None:
    import base64

    from secretsd.store import DATABASE_FILE_NAME

    key = base64.b64encode(b"k" * 32).decode()
    keyring = Keyring(MasterKey(b"k" * 32))
    inner = SQLiteStorage(tmp_path / DATABASE_FILE_NAME)
    inner.put_setting(
        KEY_CHECK_SETTING, seal(keyring, "secretsd:master-key-check", "v1", KEY_CHECK_LEGACY)
    )
    secret = Secret(arn=f"{PREFIX}db-Legacy", name="db", created=1.0, last_changed=1.0)
    versions.add_version(secret, "v1", 1.0, None)
    sealed = seal(keyring, secret.arn, "v1", VALUE_ONE)
    inner.commit(Change(secret.arn, "db", None, secret.to_document(), {"v1": sealed}))
    inner.close()
    store = open_storage(tmp_path, env={ENV_VAR: key})
    try:
        assert current_value(store, "db") == VALUE_ONE
    finally:
        store.close()
