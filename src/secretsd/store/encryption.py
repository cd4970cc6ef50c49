"""Encryption at rest: a Storage that seals every value and authenticates every document.

Theory of operation. Each value gets a fresh random 256-bit data key. The value is sealed
with AES-256-GCM under the data key, and the data key is wrapped with AES-256-GCM under the
current master key. A sealed record (format 1) is laid out as::

    format (1 byte = 1) | key id length (1 byte) | master key id (ASCII)
    | wrap nonce (12) | wrapped data key (32 + 16 tag) | nonce (12) | ciphertext + tag (16)

Both encryptions take the same associated data: the record header (format and key id)
followed by the length-prefixed secret ARN and version id. A record therefore opens only
under the identity it was sealed for: copying a ciphertext to another secret or version, or
editing its key id, makes it fail to open instead of returning someone else's value.

Documents (metadata: versions, staging labels, rotation settings) carry no value and stay
readable, but each is stored with a MAC (``store.documents``) over the secret's ARN, its
name, the revision the commit creates and the document, under a key derived from the master
key, whose id the record names. A document edited in the database (say, AWSCURRENT moved
back to an older version), or moved to another secret's row, or renamed in its column, no
longer verifies: loading that secret raises ``TamperedRecord`` and logs it once, and
``iter_secrets`` hands it on marked as a problem (see ``store.base``). The revision can be
bound although the SQL layer bumps it because the interface fixes the number a commit
creates (1, or the expected revision plus one). Values and documents are bound through the
identity: a document verifies only for its ARN, and it names version ids whose values
open only under that ARN and version id, so a verified document never leads to another
secret's value or to a value moved between versions.

What this does not detect, and why:

- Replay of an older, intact record of the same secret, with its revision column put back
  too (from a backup, say): it verifies, because nothing trusted outside the store records
  how far a secret has moved on (no monotonic counter the database's writer can't reset).
  The same holds for its values.
- Deletion: of a whole secret row (the secret is simply gone), or of a value row (its
  version reads as having no value).
- Events (rotation history) and settings other than the key check pass through
  unauthenticated: they are diagnostics and do not change what a secret returns.

Stores written before documents were authenticated open as before: their check record
(below) says so, and the first open under this release authenticates each existing
document once (one transaction where the backend groups commits, SQLite; record by record,
resumably, on PostgreSQL), then rewrites the check record to say documents are
authenticated, and logs the count. From then on an unauthenticated document is refused like
an altered one. That first open trusts what is in the store at that moment. Nodes of the
previous release refuse to start on the rewritten check record (as a wrong key), which is
the wanted outcome: they would write unauthenticated documents.

At start the layer checks the master key against a check record kept in the settings: a
sealed constant written on first use. A wrong key fails there, with ``WrongMasterKey``,
before any request is served.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secretsd.model.errors import DecryptionFailure
from secretsd.store import documents
from secretsd.store.base import (
    Change,
    Conflict,
    ListQuery,
    SortKey,
    Storage,
    StorageError,
    StoredSecret,
    StoredUser,
    TamperedRecord,
    UserChange,
)
from secretsd.store.keys import Keyring, WrongMasterKey

log = logging.getLogger("secretsd.store")

FORMAT_V1 = 1
KEY_CHECK_SETTING = "encryption.key_check"
_KEY_CHECK_IDENTITY = ("secretsd:master-key-check", "v1")
# The check record's plaintext also says whether the store's documents are authenticated:
# only the master key can write either, so the store can't be talked back into trusting
# unauthenticated documents by editing a setting (it can by restoring an old check record).
KEY_CHECK_LEGACY = b"secretsd master key check"
KEY_CHECK_AUTHENTICATED = b"secretsd master key check; documents authenticated v1"
_NONCE = 12
# Rows remembered as verified, one per secret (the cache starts over when full).
_VERIFIED_ROWS = 4096
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


def _user_identity(name: str) -> str:
    return f"secretsd:iam-user:{name}"


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
    """Seal values on ``commit`` and open them on ``read_value``; authenticate documents on
    ``commit`` and verify them on every load; events and settings pass through.

    Construction verifies the keyring against the store's key check record (writing it on
    first use) and raises ``WrongMasterKey`` when the store was sealed with another key; it
    authenticates the documents of a store written before documents were. ``location``
    names the store in messages, e.g. "this data directory (/var/lib/x)".
    """

    def __init__(self, inner: Storage, keyring: Keyring, *, location: str = "this store") -> None:
        self.inner = inner
        self.keyring = keyring
        self.location = location
        self._reported: set[tuple[str, int, str]] = set()
        self._reported_lock = threading.Lock()
        # Per ARN, the last row that verified and what verifying it returned (``_verified``).
        self._verified_rows: dict[str, tuple[StoredSecret, StoredSecret]] = {}
        # Per access key id, the user and sealed record last opened, and its secret: the same
        # record for the same user opens to the same secret, as a verified row verifies again
        # (a record moved to another user's row is opened, and refused, in full).
        self._opened_keys: dict[str, tuple[str, bytes, bytes]] = {}
        if not self._check_key():
            self._authenticate_documents()

    def _check_key(self) -> bool:
        """Check the master key; return whether the store's documents are authenticated."""
        record = self.inner.get_setting(KEY_CHECK_SETTING)
        if record is None:
            # A new store. (A store that lost its check record is taken for one too: its
            # documents are then refused, never trusted, as unauthenticated.)
            self._write_key_check()
            return True
        try:
            opened = open_sealed(self.keyring, *_KEY_CHECK_IDENTITY, record)
        except DecryptionFailure:
            opened = None
        if opened not in (KEY_CHECK_LEGACY, KEY_CHECK_AUTHENTICATED):
            raise WrongMasterKey(f"the master key does not match {self.location}")
        return opened == KEY_CHECK_AUTHENTICATED

    def _write_key_check(self) -> None:
        self.inner.put_setting(
            KEY_CHECK_SETTING, seal(self.keyring, *_KEY_CHECK_IDENTITY, KEY_CHECK_AUTHENTICATED)
        )

    def _authenticate_documents(self) -> None:
        """Give each document written before documents were authenticated its MAC, then
        mark the store as authenticated: last, so that an interrupted run resumes."""
        count = 0
        with self.batch():
            for stored in list(self.inner.iter_secrets()):
                count += self._authenticate_legacy(stored)
            self._write_key_check()
        log.warning(
            "Authenticated the documents of %d secrets in %s, written by a release that did "
            "not authenticate them; from now on a document changed outside secretsd is refused",
            count,
            self.location,
        )

    def _authenticate_legacy(self, stored: StoredSecret | None) -> int:
        while stored is not None and not documents.is_authenticated(stored.document):
            revision = stored.revision + 1
            record = documents.authenticate(
                self.keyring, stored.arn, stored.name, revision, stored.document
            )
            try:
                self.inner.commit(Change(stored.arn, stored.name, stored.revision, record))
            except Conflict:
                # Another node got there first (or the secret went): look again.
                stored = self.inner.load_by_arn(stored.arn)
                continue
            return 1
        return 0

    # -- documents ------------------------------------------------------------------------

    def _verified(self, stored: StoredSecret) -> StoredSecret:
        # Verifying a document costs more than the rest of a GetSecretValue's store reads.
        # A row equal, byte for byte, to one that verified before (same ARN, name, revision
        # and record, MAC included) verifies again, with the same result: the MAC is a
        # function of exactly these, and keys are only ever added to a keyring, so the one
        # that verified it is still there. Such a row is answered from memory; any change
        # to any of these in the database misses, and is verified in full.
        seen = self._verified_rows.get(stored.arn)
        if (
            seen is not None
            and seen[0].document == stored.document
            and seen[0].revision == stored.revision
            and seen[0].name == stored.name
        ):
            return seen[1]
        try:
            document = documents.verify(self.keyring, stored)
        except TamperedRecord as exc:
            self._report(exc, stored.revision)
            raise
        verified = dataclasses.replace(stored, document=document)
        if len(self._verified_rows) >= _VERIFIED_ROWS:
            self._verified_rows.clear()
        self._verified_rows[stored.arn] = (stored, verified)
        return verified

    def _report(self, exc: TamperedRecord, revision: int) -> None:
        # Once per record and reason: a client polling a refused secret must not flood
        # the log, and a record changed again is worth a new line.
        key = (exc.arn or "", revision, exc.reason)
        with self._reported_lock:
            if key in self._reported:
                return
            self._reported.add(key)
        log.error(
            "Refused the stored record of secret %s (%s) at revision %d: %s",
            exc.secret,
            exc.arn,
            revision,
            exc.reason,
        )

    def load_by_name(self, name: str) -> StoredSecret | None:
        stored = self.inner.load_by_name(name)
        return None if stored is None else self._verified(stored)

    def load_by_arn(self, arn: str) -> StoredSecret | None:
        stored = self.inner.load_by_arn(arn)
        return None if stored is None else self._verified(stored)

    def _verified_or_flagged(self, stored: StoredSecret) -> StoredSecret:
        try:
            return self._verified(stored)
        except TamperedRecord as exc:
            return StoredSecret(stored.arn, stored.name, stored.revision, b"", exc)

    def iter_secrets(self) -> Iterator[StoredSecret]:
        for stored in self.inner.iter_secrets():
            yield self._verified_or_flagged(stored)

    def list_page(self, query: ListQuery) -> tuple[list[StoredSecret], SortKey | None]:
        page, after = self.inner.list_page(query)
        return [self._verified_or_flagged(stored) for stored in page], after

    def rotation_candidates(self, now: float) -> list[StoredSecret]:
        return [self._verified_or_flagged(s) for s in self.inner.rotation_candidates(now)]

    def commit(self, change: Change, *, durable: bool = True) -> int:
        expected = None
        if not change.delete:
            expected = 1 if change.expected_revision is None else change.expected_revision + 1
            record = documents.authenticate(
                self.keyring, change.arn, change.name, expected, change.document
            )
            change = dataclasses.replace(change, document=record)
        if change.put_values:
            sealed = {
                version_id: seal(self.keyring, change.arn, version_id, value)
                for version_id, value in change.put_values.items()
            }
            change = dataclasses.replace(change, put_values=sealed)
        revision = self.inner.commit(change, durable=durable)
        if expected is not None and revision != expected:
            raise StorageError(
                f"the store gave secret {change.arn} revision {revision} where {expected} "
                f"was due: its document won't verify; the backend breaks the Storage contract"
            )
        return revision

    def batch(self) -> AbstractContextManager[None]:
        return self.inner.batch()

    def claim_lock(self, name: str) -> AbstractContextManager[bool]:
        return self.inner.claim_lock(name)

    @property
    def reads_may_block(self) -> bool:
        return self.inner.reads_may_block

    def read_value(self, arn: str, version_id: str) -> bytes | None:
        record = self.inner.read_value(arn, version_id)
        if record is None:
            return None
        return open_sealed(self.keyring, arn, version_id, record)

    def iter_values(self) -> Iterator[tuple[str, str, bytes]]:
        """The sealed records as stored, for re-sealing under a new key (``store.rekey``)."""
        return self.inner.iter_values()

    def replace_value(self, arn: str, version_id: str, expected: bytes, value: bytes) -> bool:
        """Swap sealed records as they are: the caller seals ``value`` itself."""
        return self.inner.replace_value(arn, version_id, expected, value)

    def append_event(self, arn: str, at: float, event: bytes) -> None:
        self.inner.append_event(arn, at, event)

    def read_events(self, arn: str, limit: int = 100) -> list[tuple[float, bytes]]:
        return self.inner.read_events(arn, limit)

    def check(self) -> None:
        """The store answers, and this process can still seal: asking for the current key
        runs the keyring's discovery, which refuses when the store moved on to a master key
        this process does not have."""
        self.inner.check()
        _ = self.keyring.current

    def get_setting(self, key: str) -> bytes | None:
        return self.inner.get_setting(key)

    def put_setting(self, key: str, value: bytes) -> None:
        self.inner.put_setting(key, value)

    # -- IAM users: documents authenticated, key secrets sealed, as secrets' ---------------

    def _verified_user(self, stored: StoredUser) -> StoredUser:
        # Bound to the user's name (in the case it was created with) and revision, under an
        # identity no secret ARN can take.
        row = StoredSecret(
            _user_identity(stored.name), stored.name, stored.revision, stored.document
        )
        return StoredUser(stored.name, stored.revision, self._verified(row).document)

    def load_user(self, name: str) -> StoredUser | None:
        stored = self.inner.load_user(name)
        return None if stored is None else self._verified_user(stored)

    def list_users(self) -> list[StoredUser]:
        return [self._verified_user(stored) for stored in self.inner.list_users()]

    def load_access_key(self, access_key_id: str) -> tuple[StoredUser, bytes] | None:
        found = self.inner.load_access_key(access_key_id)
        if found is None:
            return None
        stored, sealed = found
        user = self._verified_user(stored)
        opened = self._opened_keys.get(access_key_id)
        if opened is not None and opened[0] == user.name and opened[1] == sealed:
            return user, opened[2]
        secret = open_sealed(self.keyring, _user_identity(user.name), access_key_id, sealed)
        if len(self._opened_keys) >= _VERIFIED_ROWS:
            self._opened_keys.clear()
        self._opened_keys[access_key_id] = (user.name, sealed, secret)
        return user, secret

    def user_keys(self, name: str) -> list[tuple[str, bytes]]:
        stored = self.load_user(name)  # the keys are bound to the name as the user has it
        if stored is None:
            return []
        identity = _user_identity(stored.name)
        return [
            (key_id, open_sealed(self.keyring, identity, key_id, sealed))
            for key_id, sealed in self.inner.user_keys(name)
        ]

    def change_marker(self) -> object | None:
        return self.inner.change_marker()

    def commit_user(self, change: UserChange) -> int:
        identity = _user_identity(change.name)
        expected = None
        if not change.delete:
            expected = 1 if change.expected_revision is None else change.expected_revision + 1
            record = documents.authenticate(
                self.keyring, identity, change.name, expected, change.document
            )
            change = dataclasses.replace(change, document=record)
        if change.put_keys:
            sealed = {
                key_id: seal(self.keyring, identity, key_id, secret)
                for key_id, secret in change.put_keys.items()
            }
            change = dataclasses.replace(change, put_keys=sealed)
        revision = self.inner.commit_user(change)
        if expected is not None and revision != expected:
            raise StorageError(
                f"the store gave user {change.name} revision {revision} where {expected} "
                f"was due: the backend breaks the Storage contract"
            )
        return revision

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return f"EncryptedStorage({self.inner!r}, {self.keyring!r})"
