"""Encryption at rest: a Storage that seals every value before it reaches a backend.

Theory of operation. Each value gets a fresh random 256-bit data key. The value is sealed
with AES-256-GCM under the data key, and the data key is wrapped with AES-256-GCM under the
current master key. A sealed record (format 1) is laid out as::

    format (1 byte = 1) | key id length (1 byte) | master key id (ASCII)
    | wrap nonce (12) | wrapped data key (32 + 16 tag) | nonce (12) | ciphertext + tag (16)

Both encryptions take the same associated data: the record header (format and key id)
followed by the length-prefixed secret ARN and version id. A record therefore opens only
under the identity it was sealed for: copying a ciphertext to another secret or version, or
editing its key id, makes it fail to open instead of returning someone else's value.

Documents (metadata), events and settings pass through untouched: they carry no values.

At start the layer checks the master key against a check record kept in the settings: a
sealed constant written on first use. A wrong key fails there, with ``WrongMasterKey``,
before any request is served.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secretsd.model.errors import DecryptionFailure
from secretsd.store.base import Change, ListQuery, SortKey, Storage, StoredSecret
from secretsd.store.keys import Keyring, WrongMasterKey

FORMAT_V1 = 1
KEY_CHECK_SETTING = "encryption.key_check"
_KEY_CHECK_IDENTITY = ("secretsd:master-key-check", "v1")
_KEY_CHECK_PLAINTEXT = b"secretsd master key check"
_NONCE = 12
_TAG = 16
_DATA_KEY = 32
_WRAPPED = _DATA_KEY + _TAG


def _associated_data(header: bytes, arn: str, version_id: str) -> bytes:
    arn_bytes = arn.encode("utf-8", "surrogatepass")
    version_bytes = version_id.encode("utf-8", "surrogatepass")
    return b"".join(
        (
            header,
            len(arn_bytes).to_bytes(4, "big"),
            arn_bytes,
            len(version_bytes).to_bytes(4, "big"),
            version_bytes,
        )
    )


def seal(keyring: Keyring, arn: str, version_id: str, plaintext: bytes) -> bytes:
    """Seal ``plaintext`` for the value ``version_id`` of the secret ``arn``."""
    master = keyring.current
    key_id = master.key_id.encode("ascii")
    header = bytes((FORMAT_V1, len(key_id))) + key_id
    aad = _associated_data(header, arn, version_id)
    data_key = AESGCM.generate_key(bit_length=256)
    wrap_nonce = os.urandom(_NONCE)
    nonce = os.urandom(_NONCE)
    wrapped = master.aead.encrypt(wrap_nonce, data_key, aad)
    ciphertext = AESGCM(data_key).encrypt(nonce, bytes(plaintext), aad)
    return b"".join((header, wrap_nonce, wrapped, nonce, ciphertext))


def open_sealed(keyring: Keyring, arn: str, version_id: str, record: bytes) -> bytes:
    """Open a record made by ``seal`` for the same identity, or raise DecryptionFailure.

    Messages name the secret and version and the reason, never any bytes of the record.
    """

    def fail(reason: str) -> DecryptionFailure:
        return DecryptionFailure(
            f"The stored value of version {version_id} of secret {arn} can't be decrypted: "
            f"{reason}."
        )

    if len(record) < 2:
        raise fail("the record is truncated")
    if record[0] != FORMAT_V1:
        raise fail(f"unknown record format {record[0]}")
    header_end = 2 + record[1]
    body_start = header_end + _NONCE + _WRAPPED + _NONCE
    if len(record) < body_start + _TAG:
        raise fail("the record is truncated")
    try:
        key_id = record[2:header_end].decode("ascii")
    except UnicodeDecodeError:
        raise fail("the record names no valid master key") from None
    master = keyring.get(key_id)
    if master is None:
        raise fail(f"it was sealed with master key {key_id}, which is not configured")
    aad = _associated_data(record[:header_end], arn, version_id)
    wrap_nonce = record[header_end : header_end + _NONCE]
    wrapped = record[header_end + _NONCE : header_end + _NONCE + _WRAPPED]
    nonce = record[body_start - _NONCE : body_start]
    try:
        data_key = master.aead.decrypt(wrap_nonce, wrapped, aad)
        return AESGCM(data_key).decrypt(nonce, record[body_start:], aad)
    except InvalidTag:
        raise fail("the record was altered or belongs to another secret or version") from None


class EncryptedStorage(Storage):
    """Seal values on ``commit``, open them on ``read_value``; the rest passes through.

    Construction verifies the keyring against the store's key check record (writing it on
    first use) and raises ``WrongMasterKey`` when the store was sealed with another key.
    ``location`` names the store in that message, e.g. "this data directory (/var/lib/x)".
    """

    def __init__(self, inner: Storage, keyring: Keyring, *, location: str = "this store") -> None:
        self.inner = inner
        self.keyring = keyring
        self.location = location
        self._check_key()

    def _check_key(self) -> None:
        record = self.inner.get_setting(KEY_CHECK_SETTING)
        if record is None:
            self.inner.put_setting(
                KEY_CHECK_SETTING, seal(self.keyring, *_KEY_CHECK_IDENTITY, _KEY_CHECK_PLAINTEXT)
            )
            return
        try:
            opened = open_sealed(self.keyring, *_KEY_CHECK_IDENTITY, record)
        except DecryptionFailure:
            opened = None
        if opened != _KEY_CHECK_PLAINTEXT:
            raise WrongMasterKey(f"the master key does not match {self.location}")

    def load_by_name(self, name: str) -> StoredSecret | None:
        return self.inner.load_by_name(name)

    def load_by_arn(self, arn: str) -> StoredSecret | None:
        return self.inner.load_by_arn(arn)

    def iter_secrets(self) -> Iterator[StoredSecret]:
        return self.inner.iter_secrets()

    def list_page(self, query: ListQuery) -> tuple[list[StoredSecret], SortKey | None]:
        return self.inner.list_page(query)

    def rotation_candidates(self, now: float) -> list[StoredSecret]:
        return self.inner.rotation_candidates(now)

    def commit(self, change: Change, *, durable: bool = True) -> int:
        if change.put_values:
            sealed = {
                version_id: seal(self.keyring, change.arn, version_id, value)
                for version_id, value in change.put_values.items()
            }
            change = dataclasses.replace(change, put_values=sealed)
        return self.inner.commit(change, durable=durable)

    def batch(self):
        """The inner store's group commit, or a block that groups nothing."""
        batch = getattr(self.inner, "batch", None)
        return batch() if batch is not None else contextlib.nullcontext()

    def read_value(self, arn: str, version_id: str) -> bytes | None:
        record = self.inner.read_value(arn, version_id)
        if record is None:
            return None
        return open_sealed(self.keyring, arn, version_id, record)

    def append_event(self, arn: str, at: float, event: bytes) -> None:
        self.inner.append_event(arn, at, event)

    def read_events(self, arn: str, limit: int = 100) -> list[tuple[float, bytes]]:
        return self.inner.read_events(arn, limit)

    def get_setting(self, key: str) -> bytes | None:
        return self.inner.get_setting(key)

    def put_setting(self, key: str, value: bytes) -> None:
        self.inner.put_setting(key, value)

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"EncryptedStorage({self.inner!r}, {self.keyring!r})"
