"""The encryption layer answers a row it verified before from memory, and only that row."""

from __future__ import annotations

import sqlite3

import pytest

from secretsd.model.secret import Secret
from secretsd.store.base import Change, TamperedRecord
from secretsd.store.encryption import EncryptedStorage
from secretsd.store.keys import Keyring, MasterKey
from secretsd.store.sqlite import SQLiteStorage

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf"


def document(description: str) -> bytes:
    return Secret(ARN, "s", 1.0, 1.0, description=description).to_document()


@pytest.fixture
def store(tmp_path):
    store = EncryptedStorage(SQLiteStorage(tmp_path / "db"), Keyring(MasterKey.generate()))
    store.commit(Change(ARN, "s", None, document("one")))
    yield store, tmp_path / "db"
    store.close()


def sql(path, statement: str, params: tuple) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute(statement, params)


def test_an_unchanged_row_verifies_from_memory(store):
    storage, _ = store
    first = storage.load_by_name("s")
    assert storage.load_by_name("s") is first
    assert storage.load_by_arn(ARN) is first


def test_a_row_changed_after_it_verified_is_refused(store):
    storage, path = store
    storage.load_by_name("s")
    (record,) = sqlite3.connect(path).execute("SELECT document FROM secrets").fetchone()
    record = bytes(record)
    edited = record.replace(b'"one"', b'"two"')
    assert edited != record
    sql(path, "UPDATE secrets SET document = ?", (edited,))
    with pytest.raises(TamperedRecord):
        storage.load_by_name("s")
    # Put back, it verifies again; a revision moved behind the layer's back does not.
    sql(path, "UPDATE secrets SET document = ?", (record,))
    assert storage.load_by_name("s").revision == 1
    sql(path, "UPDATE secrets SET revision = 2", ())
    with pytest.raises(TamperedRecord):
        storage.load_by_name("s")


def test_a_new_revision_is_verified_and_read(store):
    storage, _ = store
    storage.load_by_name("s")
    storage.commit(Change(ARN, "s", 1, document("two")))
    stored = storage.load_by_name("s")
    assert stored.revision == 2
    assert Secret.from_document(stored.document).description == "two"
