"""The audit trail's hash chain: how a record is sealed to the one before it, and how a
sequence of records is checked.

Theory of operation. A record is a JSON object (CloudTrail's shape) whose *body* is its
canonical form: members sorted by name, no whitespace between tokens, strings in UTF-8 with
only ``"``, ``\\`` and control characters escaped, no floating-point numbers (records hold
strings, integers, booleans, null, lists and objects). For such records this is RFC 8785
(JCS), so any language can check a log. Sealing adds three members of our own at the end
of the stored line:

- ``sequence``: 1 for the first record ever written, then one more per record, continuing
  across rolled files and across server nodes;
- ``previousHash``: the ``hash`` of the record before (64 zeros for the first);
- ``hash``: lower-case hex SHA-256 of the UTF-8 text
  ``<sequence> LF <previousHash> LF <body>``, the body being the canonical form of the
  record without these three members.

Because each hash covers the record's body, its sequence number and the hash before it,
editing a record breaks its own hash; re-computing that hash breaks the next record's
``previousHash``; removing or moving a record breaks the run of sequence numbers.
``check`` names the first record where any of these shows. Removing records from the *end*
leaves a valid, shorter chain: only a copy of the last hash kept elsewhere detects that
(``audit verify`` prints it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
SEQUENCE, PREVIOUS, HASH = "sequence", "previousHash", "hash"

_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(record: Any) -> str:
    return _CANONICAL.encode(record)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Head:
    """The end of a chain: the last record's sequence number and hash."""

    sequence: int = 0
    hash: str = GENESIS


EMPTY = Head()


def chain_hash(sequence: int, previous: str, body: str) -> str:
    return _chain_hash(sequence, previous, body.encode())


def _chain_hash(sequence: int, previous: str, body: bytes) -> str:
    hasher = hashlib.sha256(f"{sequence}\n{previous}\n".encode())
    hasher.update(body)
    return hasher.hexdigest()


def seal(body: str, head: Head) -> tuple[bytes, Head]:
    """The stored line, newline included, of the record whose canonical form is ``body``,
    appended after ``head``; and the new head."""
    sequence = head.sequence + 1
    encoded = body.encode()
    record_hash = _chain_hash(sequence, head.hash, encoded)
    members = f',"{SEQUENCE}":{sequence},"{PREVIOUS}":"{head.hash}","{HASH}":"{record_hash}"}}\n'
    if body == "{}":
        members = members[1:]  # no comma after the opening brace
    return b"".join((encoded[:-1], members.encode())), Head(sequence, record_hash)


def head_of(line: str) -> Head:
    """The head a stored line leaves (for a writer resuming after the last record)."""
    record = json.loads(line)
    return Head(int(record[SEQUENCE]), str(record[HASH]))


@dataclass(frozen=True, slots=True)
class Line:
    """A stored line and where it is (``file:line`` or ``table row``), for messages."""

    where: str
    text: str


@dataclass(frozen=True, slots=True)
class Problem:
    where: str
    sequence: int | None
    event_id: str | None
    reason: str

    def __str__(self) -> str:
        record = f"record {self.sequence}" if self.sequence is not None else "a record"
        event = f" (eventID {self.event_id})" if self.event_id else ""
        return f"{self.where}: {record}{event} {self.reason}"


@dataclass(frozen=True, slots=True)
class Verified:
    records: int
    head: Head


def _parse(line: Line) -> dict[str, Any] | None:
    try:
        record = json.loads(line.text)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    if not isinstance(record.get(SEQUENCE), int) or not isinstance(record.get(HASH), str):
        return None
    return record


def check(lines: Iterable[Line]) -> Verified | Problem:
    """Walk ``lines`` in stored order: the first problem, or what was verified."""
    stream: Iterator[Line] = iter(lines)
    head = EMPTY
    count = 0
    previous_where = None
    for line in stream:
        record = _parse(line)
        if record is None:
            return Problem(line.where, None, None, "is not a well-formed record: it was edited")
        sequence, event_id = record[SEQUENCE], record.get("eventID")
        expected = head.sequence + 1
        if sequence != expected:
            return _out_of_sequence(line, record, expected, head, stream)
        stated = record.pop(HASH)
        previous = record.pop(PREVIOUS, None)
        del record[SEQUENCE]
        if (
            not isinstance(previous, str)
            or chain_hash(sequence, previous, canonical(record)) != stated
        ):
            return Problem(line.where, sequence, event_id, "was edited: its hash does not match")
        if previous != head.hash:
            return Problem(
                previous_where or line.where,
                head.sequence or None,
                None,
                "was edited or replaced: the next record does not follow from it",
            )
        head = Head(sequence, stated)
        previous_where = line.where
        count += 1
    return Verified(count, head)


def _out_of_sequence(
    line: Line,
    record: dict[str, Any],
    expected: int,
    head: Head,
    rest: Iterator[Line],
) -> Problem:
    found = record[SEQUENCE]
    event_id = record.get("eventID")
    if found < expected:
        return Problem(
            line.where, found, event_id, f"is out of order: it was expected before {head.sequence}"
        )
    for later in rest:
        parsed = _parse(later)
        if parsed is not None and parsed[SEQUENCE] == expected:
            return Problem(
                line.where,
                found,
                event_id,
                f"is out of order: record {expected} was moved after it (to {later.where})",
            )
    missing = (
        f"record {expected} was"
        if found == expected + 1
        else (f"records {expected} to {found - 1} were")
    )
    if head.sequence == 0:
        reason = f"is the first record: {missing} removed before it (or older files deleted)"
    else:
        reason = f"does not follow record {head.sequence}: {missing} removed before it"
    return Problem(line.where, found, event_id, reason)
