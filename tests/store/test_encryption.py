"""Encryption at rest: sealed records, the key check, and what reaches the backend."""

from __future__ import annotations

import secrets
from pathlib import Path

import psycopg
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from secretsd.model.errors import DecryptionFailure
from secretsd.store.base import Change, Storage
from secretsd.store.encryption import KEY_CHECK_SETTING, EncryptedStorage, open_sealed, seal
from secretsd.store.keys import Keyring, MasterKey, WrongMasterKey
from secretsd.store.postgres import PostgresStorage
from secretsd.store.sqlite import SQLiteStorage
from tests.store.conftest import POSTGRES_DSN

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"
KEYRING = Keyring(MasterKey.generate())
identities = st.text(max_size=200)


@given(plaintext=st.binary(max_size=4096), arn=identities, version_id=identities)
def test_seal_open_round_trip(plaintext: bytes, arn: str, version_id: str) -> None:
    record = seal(KEYRING, arn, version_id, plaintext)
    assert open_sealed(KEYRING, arn, version_id, record) == plaintext


@given(
    plaintext=st.binary(min_size=1, max_size=256),
    identity=st.tuples(identities, identities),
    other=st.tuples(identities, identities),
)
def test_a_record_opens_only_under_its_own_identity(plaintext, identity, other) -> None:
    assume(identity != other)
    record = seal(KEYRING, *identity, plaintext)
    with pytest.raises(DecryptionFailure):
        open_sealed(KEYRING, *other, record)


@given(plaintext=st.binary(min_size=1, max_size=256), data=st.data())
def test_any_flipped_bit_fails_to_open(plaintext: bytes, data) -> None:
    record = bytearray(seal(KEYRING, ARN, "v1", plaintext))
    position = data.draw(st.integers(0, len(record) - 1))
    record[position] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(DecryptionFailure):
        open_sealed(KEYRING, ARN, "v1", bytes(record))


def test_sealing_twice_gives_different_records() -> None:
    assert seal(KEYRING, ARN, "v1", b"same") != seal(KEYRING, ARN, "v1", b"same")


def test_record_names_its_key_and_format() -> None:
    record = seal(KEYRING, ARN, "v1", b"x")
    key_id = KEYRING.current.key_id.encode()
    assert record[0] == 1
    assert record[2 : 2 + record[1]] == key_id


@pytest.mark.parametrize(
    "mangle",
    [
        lambda r: b"",
        lambda r: r[:1],
        lambda r: r[:40],
        lambda r: bytes([9]) + r[1:],  # unknown format
        lambda r: r[:2] + b"f" * r[1] + r[2 + r[1] :],  # unknown key id
        lambda r: r[:2] + b"\xff" * r[1] + r[2 + r[1] :],  # not even ASCII
        lambda r: r[:-1],
        lambda r: r + b"\x00",
    ],
)
def test_malformed_records_raise_decryption_failure(mangle) -> None:
    plaintext = secrets.token_hex(16).encode()
    with pytest.raises(DecryptionFailure) as caught:
        open_sealed(KEYRING, ARN, "v1", mangle(seal(KEYRING, ARN, "v1", plaintext)))
    assert plaintext.decode() not in str(caught.value)
    assert "v1" in caught.value.message and ARN in caught.value.message


def test_older_keys_in_the_ring_still_open_their_records() -> None:
    old = MasterKey.generate()
    record = seal(Keyring(old), ARN, "v1", b"sealed under the old key")
    rotated = Keyring(MasterKey.generate(), [old])
    assert open_sealed(rotated, ARN, "v1", record) == b"sealed under the old key"
    assert seal(rotated, ARN, "v2", b"x")[2 : 2 + 16] == rotated.current.key_id.encode()
    with pytest.raises(DecryptionFailure, match="not configured"):
        open_sealed(Keyring(MasterKey.generate()), ARN, "v1", record)


def test_reprs_show_no_key_material() -> None:
    material = secrets.token_bytes(32)
    key = MasterKey(material)
    for text in (repr(key), repr(Keyring(key)), str(key)):
        assert material.hex() not in text and key.key_id in text
    assert not any(isinstance(getattr(key, a), bytes) for a in MasterKey.__slots__)


# -- through a real backend ----------------------------------------------------------------


def test_tampered_ciphertext_fails_to_open(inner: Storage) -> None:
    store = EncryptedStorage(inner, KEYRING)
    store.commit(Change(ARN, "db", None, b"doc", {"v1": b"correct horse"}))
    record = bytearray(inner.read_value(ARN, "v1"))
    record[-20] ^= 0x40
    inner.commit(Change(ARN, "db", 1, b"doc", {"v1": bytes(record)}))
    with pytest.raises(DecryptionFailure) as caught:
        store.read_value(ARN, "v1")
    assert "correct horse" not in str(caught.value)


def test_ciphertext_moved_to_another_version_or_secret_fails(inner: Storage) -> None:
    store = EncryptedStorage(inner, KEYRING)
    other_arn = ARN.replace("db-", "other-")
    store.commit(Change(ARN, "db", None, b"doc", {"v1": b"value one", "v2": b"value two"}))
    store.commit(Change(other_arn, "other", None, b"doc", {"v1": b"other"}))
    record = inner.read_value(ARN, "v1")
    inner.commit(Change(ARN, "db", 1, b"doc", {"v2": record}))
    inner.commit(Change(other_arn, "other", 1, b"doc", {"v1": record}))
    assert store.read_value(ARN, "v1") == b"value one"
    with pytest.raises(DecryptionFailure):
        store.read_value(ARN, "v2")
    with pytest.raises(DecryptionFailure):
        store.read_value(other_arn, "v1")


def test_wrong_master_key_fails_at_open(inner: Storage) -> None:
    EncryptedStorage(inner, KEYRING).commit(Change(ARN, "db", None, b"doc", {"v1": b"x"}))
    assert inner.get_setting(KEY_CHECK_SETTING) is not None
    with pytest.raises(WrongMasterKey, match=r"^the master key does not match the place$"):
        EncryptedStorage(inner, Keyring(MasterKey.generate()), location="the place")
    # The right key still opens, and a ring that holds it as an older key does too.
    assert EncryptedStorage(inner, KEYRING).read_value(ARN, "v1") == b"x"
    ring = Keyring(MasterKey.generate(), [KEYRING.current])
    assert EncryptedStorage(inner, ring).read_value(ARN, "v1") == b"x"


def test_documents_stay_readable_events_and_settings_pass_through(inner: Storage) -> None:
    store = EncryptedStorage(inner, KEYRING)
    store.commit(Change(ARN, "db", None, b"plain document", {"v1": b"x"}))
    store.append_event(ARN, 1.0, b"plain event")
    store.put_setting("k", b"plain setting")
    # Authenticated, not sealed: the document follows its header in the clear.
    stored = inner.load_by_name("db").document
    assert stored.endswith(b"plain document") and stored != b"plain document"
    assert store.load_by_name("db").document == b"plain document"
    assert inner.read_events(ARN) == [(1.0, b"plain event")]
    assert inner.get_setting("k") == b"plain setting"
    assert inner.read_value(ARN, "v1") != b"x"


# -- the raw bytes at rest -------------------------------------------------------------------


def _sqlite_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))


def _postgres_bytes(schema: str) -> bytes:
    chunks = []
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (schema,),
        ).fetchall()
        assert len(tables) >= 4
        for (table,) in tables:
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):
                for column in row:
                    chunks.append(column if isinstance(column, bytes) else str(column).encode())
    return b"\x00".join(chunks)


def _write_values(store: Storage) -> list[bytes]:
    values = [secrets.token_hex(24).encode() for _ in range(20)]
    for i, value in enumerate(values):
        store.commit(Change(f"{ARN}{i}", f"s{i}", None, b"{}", {"v1": value}))
    return values


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain-control", "encrypted"])
def test_sqlite_file_never_holds_a_value(tmp_path: Path, encrypted: bool) -> None:
    path = tmp_path / "store.db"
    inner = SQLiteStorage(path)
    store = EncryptedStorage(inner, KEYRING) if encrypted else inner
    values = _write_values(store)
    # While open (values in the write-ahead log) and after close (checkpointed).
    live = _sqlite_bytes(path)
    store.close()
    closed = _sqlite_bytes(path)
    for raw in (live, closed):
        found = [value for value in values if value in raw]
        # The plain control shows that the search does find values that are there.
        assert found == ([] if encrypted else values)


@pytest.mark.postgres
@pytest.mark.parametrize("encrypted", [False, True], ids=["plain-control", "encrypted"])
def test_postgres_tables_never_hold_a_value(pg_schema: str, encrypted: bool) -> None:
    inner = PostgresStorage(POSTGRES_DSN, schema=pg_schema)
    store = EncryptedStorage(inner, KEYRING) if encrypted else inner
    try:
        values = _write_values(store)
        raw = _postgres_bytes(pg_schema)
        found = [value for value in values if value in raw]
        assert found == ([] if encrypted else values)
    finally:
        store.close()
