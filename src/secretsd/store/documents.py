"""Authenticated documents: what the encryption layer stores in place of a plain document.

A document carries no secret value, so it is not sealed: it stays readable in the database
(a listing index can be kept in plain columns beside it). It is authenticated instead. The
stored record (format 1) is::

    marker (1 byte = 0) | format (1 byte = 1) | key id length (1 byte) | master key id (ASCII)
    | tag (32 bytes) | document

The marker is a byte that no JSON document starts with, so a document written before
documents were authenticated is told apart without guessing. The tag is HMAC-SHA256, under
the authentication key of the master key the header names, over::

    label | header | length-prefixed ARN | length-prefixed name | revision (8 bytes)
    | length-prefixed document

so a record verifies only for the row it was written to: the secret's ARN and name (both
columns of the row) and the revision it was written at.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from secretsd.store.base import StoredSecret, TamperedRecord
from secretsd.store.keys import Keyring

MARKER = b"\x00"
FORMAT_V1 = 1
_LABEL = b"secretsd authenticated document v1"
_TAG = 32


def _length_prefixed(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _tag(
    key_mac: Callable[[bytes], bytes],
    header: bytes,
    arn: str,
    name: str,
    revision: int,
    document: bytes,
) -> bytes:
    return key_mac(
        b"".join(
            (
                _LABEL,
                header,
                _length_prefixed(arn.encode("utf-8", "surrogatepass")),
                _length_prefixed(name.encode("utf-8", "surrogatepass")),
                revision.to_bytes(8, "big"),
                _length_prefixed(document),
            )
        )
    )


def authenticate(keyring: Keyring, arn: str, name: str, revision: int, document: bytes) -> bytes:
    """The record that stores ``document`` as revision ``revision`` of secret ``arn``."""
    master = keyring.current
    key_id = master.key_id.encode("ascii")
    header = MARKER + bytes((FORMAT_V1, len(key_id))) + key_id
    return b"".join((header, _tag(master.mac, header, arn, name, revision, document), document))


def is_authenticated(record: bytes) -> bool:
    """Whether ``record`` claims to be authenticated (it may still fail to verify)."""
    return record[:1] == MARKER


def record_key_id(record: bytes) -> str | None:
    """The id of the master key that authenticated a document record, or None."""
    if not is_authenticated(record) or len(record) < 3 or len(record) < 3 + record[2]:
        return None
    try:
        return record[3 : 3 + record[2]].decode("ascii")
    except UnicodeDecodeError:
        return None


def unverified_document(record: bytes) -> bytes:
    """The document inside ``record`` (or ``record`` itself, when it is a plain document),
    unchecked: for the index built below the encryption layer, where no key is at hand.
    Whatever a forged record puts there only decides whether a secret is listed: every
    record a listing returns is verified on its way up."""
    if not is_authenticated(record) or len(record) < 3:
        return record
    return record[3 + record[2] + _TAG :]


def verify(keyring: Keyring, stored: StoredSecret) -> bytes:
    """The document of ``stored`` (a row as a backend returned it), or raise TamperedRecord.

    Messages name the secret and the reason, never bytes of the record.
    """

    def refuse(reason: str) -> TamperedRecord:
        return TamperedRecord(stored.arn, stored.name, reason)

    record = stored.document
    if not is_authenticated(record):
        raise refuse("its document is not authenticated: it was written outside secretsd")
    if len(record) < 3:
        raise refuse("its authentication header is truncated")
    if record[1] != FORMAT_V1:
        raise refuse(f"its document record has the unknown format {record[1]}")
    header_end = 3 + record[2]
    if len(record) < header_end + _TAG:
        raise refuse("its authentication header is truncated")
    try:
        key_id = record[3:header_end].decode("ascii")
    except UnicodeDecodeError:
        raise refuse("its authentication header names no valid master key") from None
    master = keyring.get(key_id)
    if master is None:
        raise refuse(f"it was authenticated with master key {key_id}, which is not configured")
    tag = record[header_end : header_end + _TAG]
    document = record[header_end + _TAG :]
    expected = _tag(
        master.mac, record[:header_end], stored.arn, stored.name, stored.revision, document
    )
    if not hmac.compare_digest(tag, expected):
        raise refuse(
            "it was altered outside secretsd, or belongs to another secret, name or revision"
        )
    return document
