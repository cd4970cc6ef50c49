"""The storage interface: what every backend (SQLite, PostgreSQL) provides.

Theory of operation. Storage is deliberately dumb, in the manner of a key-value backend
below an encrypting barrier. It keeps, per secret:

- a *document*: the secret's metadata (name, description, tags, versions and their staging
  labels, rotation settings, dates) as opaque bytes that the model layer serialises. It
  carries no secret value, so it stays readable; the encryption layer (``store.encryption``)
  stores it with a MAC that binds it to its secret, and refuses it when the MAC fails;
- *values*: one opaque blob per version id. Below the encryption layer these are plaintext;
  the encryption layer turns them into sealed records before they reach a backend, so
  backends only ever see ciphertext.

Every change to a secret is one atomic ``commit``: the new document plus the values added
and dropped, guarded by the revision the caller read (optimistic concurrency, which is also
what lets several server nodes share one PostgreSQL store). A commit that returns has
reached durable storage. A commit creates a secret at revision 1 and moves it from the
expected revision to the next one, exactly (the encryption layer binds that number).

One bad record stays one bad record. A secret whose record can't be read (altered in the
database, written in a newer major document format, undecodable) makes operations on that
secret fail and nothing else:

- ``load_by_name`` and ``load_by_arn`` raise ``TamperedRecord`` for it (a ``StorageError``,
  and an ``UnreadableRecord`` of the model, like the errors of ``Secret.from_document``),
  naming the secret; the service maps these to an error of the API;
- ``iter_secrets`` never raises for one record: it yields it with ``problem`` set and an
  empty document. Code that goes through many secrets (ListSecrets, BatchGetSecretValue,
  the rotation scheduler) reads each one as
  ``Secret.from_document(stored.check().document, name=stored.name)``, catches
  ``UnreadableRecord`` around that per record, and skips the record (the encryption layer
  has logged it). A caller that forgets ``check()`` still never serves the record: the empty
  document does not decode.

Besides reads and commits, the interface carries what the service and the scheduler need
from a backend, so that one conformance suite checks it for every backend and every layer
passes it on explicitly:

- ``batch()``, group commit: the writer thread runs a group of changes in one block and pays
  for one durable commit;
- ``claim_lock(name)``, a lock a node takes without waiting before it runs a rotation, so
  that each rotation runs once across every process sharing the store;
- ``reads_may_block``: whether a read can wait on something outside this process (another
  session's lock, the network). An event loop must not make such calls itself.

Beside each document the store keeps the secret's *index record* (``model.index``), written
in the same transaction from the ``Change``. ``list_page`` and ``rotation_candidates`` query
these records, so their cost follows the page asked for, not the number of secrets stored.
They return records the way ``iter_secrets`` does: one that can't be verified comes with
``problem`` set.

IAM users live beside the secrets, in the same shape: a *user document* (``model.iam``),
changed only by ``commit_user`` guarded by the revision read, and the secret halves of the
user's access keys, one opaque blob per access key id, put and dropped in the same commit.
User names are unique regardless of case, and found regardless of case, as IAM's are.
``load_access_key`` answers authentication: the key's secret with its user's current
document, in one read, so a key made inactive or deleted is refused by the next request on
every node.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from secretsd.model.index import IndexRecord
from secretsd.model.listing import Filter
from secretsd.model.secret import UnreadableRecord

# A setting never written: reading it is the cheapest question a store must answer.
HEALTH_PROBE_SETTING = "health.probe"


class StorageError(Exception):
    """A storage backend failed (I/O, corruption, unusable configuration)."""


class Conflict(StorageError):
    """The secret changed since it was read, or the name is taken: re-read and retry."""


class TamperedRecord(StorageError, UnreadableRecord):
    """A secret's stored record failed authentication: it was edited outside secretsd, moved
    from another secret's row, or written under a master key that isn't configured."""

    def __init__(self, arn: str, name: str, reason: str) -> None:
        UnreadableRecord.__init__(self, name, reason, arn=arn)


@dataclass(frozen=True, slots=True)
class StoredSecret:
    arn: str
    name: str
    revision: int
    document: bytes
    # Set, with an empty document, on a record ``iter_secrets`` could not verify.
    problem: UnreadableRecord | None = field(default=None, compare=False)

    def check(self) -> StoredSecret:
        """This record, or raise its ``problem``."""
        if self.problem is not None:
            raise self.problem
        return self


@dataclass(frozen=True, slots=True)
class Change:
    """One atomic change to one secret.

        ``expected_revision`` is None to create the secret (fails with Conflict when the name
        or ARN already exists), otherwise the revision that was read (fails with Conflict when
        it moved). ``delete`` removes the secret with all its values and history: guarded by
    ``expected_revision`` like an update, or unconditionally (and without error when the
    secret is already gone) when it is None. A version id both put and dropped ends dropped.
    ``index`` replaces the secret's index record. Without one the record stays as it was:
    changes that leave the metadata alone (re-sealing, authenticating a document) need not
    know it; a secret created without one is in no list and never a rotation candidate.
    """

    arn: str
    name: str
    expected_revision: int | None
    document: bytes = b""
    # Secret values: kept out of reprs, so a logged change never shows one.
    put_values: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    drop_values: Sequence[str] = ()
    delete: bool = False
    index: IndexRecord | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class StoredUser:
    name: str
    revision: int
    document: bytes


@dataclass(frozen=True, slots=True)
class UserChange:
    """One atomic change to one IAM user, with the semantics of ``Change``: create when
    ``expected_revision`` is None (Conflict when the name, in any case, is taken), otherwise
    update or ``delete`` (with its keys) guarded by the revision read. ``drop_keys`` removes
    access keys, then ``put_keys`` adds them (id -> secret): a key in both is replaced."""

    name: str
    expected_revision: int | None
    document: bytes = b""
    put_keys: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    drop_keys: Sequence[str] = ()
    delete: bool = False


# The position of a secret in a list: its sort value, then its ARN to break ties.
SortKey = tuple[float | str, str]


@dataclass(frozen=True, slots=True)
class ListQuery:
    """One page of ListSecrets or BatchGetSecretValue, with ``listing``'s semantics.

    ``sort_by`` is a key of ``listing.SORT_KEYS``. ``after`` is the sort key of the last
    secret of the previous page. A secret whose deletion date is at or before ``now`` is
    gone and never listed.
    """

    now: float
    filters: tuple[Filter, ...] = ()
    sort_by: str = "created-date"
    descending: bool = False
    include_planned_deletion: bool = False
    after: SortKey | None = None
    limit: int = 100


class Storage(abc.ABC):
    """A storage backend. Implementations must be safe to call from several threads."""

    @abc.abstractmethod
    def load_by_name(self, name: str) -> StoredSecret | None:
        """The secret named ``name``; raises ``TamperedRecord`` when it can't be verified."""

    @abc.abstractmethod
    def load_by_arn(self, arn: str) -> StoredSecret | None:
        """The secret ``arn``; raises ``TamperedRecord`` when it can't be verified."""

    @abc.abstractmethod
    def iter_secrets(self) -> Iterator[StoredSecret]:
        """Every secret, ordered by name; one that can't be verified comes with ``problem``
        set instead of raising (see the module's docstring)."""

    @abc.abstractmethod
    def list_page(self, query: ListQuery) -> tuple[list[StoredSecret], SortKey | None]:
        """The secrets of one page in order, and the key to ask for the next page after, or
        None when this page is the last."""

    @abc.abstractmethod
    def rotation_candidates(self, now: float) -> list[StoredSecret]:
        """The secrets whose index record's rotation attention time is at or before ``now``."""

    @abc.abstractmethod
    def commit(self, change: Change, *, durable: bool = True) -> int:
        """Apply ``change`` atomically; return the new revision (0 on delete).

        Durable by default: the change is on disk when this returns. ``durable=False`` is for
        bookkeeping that may be lost to a power cut but not to a crash of the process (the
        last-accessed date): it skips the wait for the disk.
        """

    @abc.abstractmethod
    def batch(self) -> AbstractContextManager[None]:
        """Group the commits this thread makes inside the block into one durable transaction.

        Each commit inside stays atomic on its own: one that fails (``Conflict``) is undone
        without touching the others. The thread sees its own changes at once; other threads
        see none of them before the block ends. When the block exits without error every
        change in it is durable (``durable=False`` inside it is ignored); when an error
        escapes, none of them is stored. A caller acknowledges the writes of a batch only
        after the block has exited. Blocks do not nest.
        """

    @abc.abstractmethod
    def claim_lock(self, name: str) -> AbstractContextManager[bool]:
        """Try, without waiting, to take the lock ``name`` of this store.

        Yields True when the caller now holds it, until the block exits (by error too), and
        False when another holder has it: another thread, process or node using the same
        store. Locks of different names, or of different stores, are independent. The lock
        is not reentrant: a second claim of a held name yields False, even from the holder.
        """

    @property
    @abc.abstractmethod
    def reads_may_block(self) -> bool:
        """True when a read may wait on something outside this process (a lock another
        session holds, the network), so an event loop must hand reads to threads; False
        when reads only ever take microseconds of local work."""

    @abc.abstractmethod
    def read_value(self, arn: str, version_id: str) -> bytes | None: ...

    @abc.abstractmethod
    def iter_values(self) -> Iterator[tuple[str, str, bytes]]:
        """Every stored value as ``(arn, version id, value)``, ordered by ARN and version id.

        For tools that rewrite records in place (``secretsd keys rotate-master``). Pages are
        read as the caller goes: a value committed or dropped meanwhile may or may not show.
        """

    @abc.abstractmethod
    def replace_value(self, arn: str, version_id: str, expected: bytes, value: bytes) -> bool:
        """Swap one value for ``value`` if it still is ``expected``: True when swapped.

        False, changing nothing, when the value changed or was dropped meanwhile. Durable on
        return, like ``commit``; the secret's document and revision stay as they are.
        """

    @abc.abstractmethod
    def append_event(self, arn: str, at: float, event: bytes) -> None:
        """Append to a secret's history (rotation attempts). Kept until the secret is deleted."""

    @abc.abstractmethod
    def read_events(self, arn: str, limit: int = 100) -> list[tuple[float, bytes]]:
        """The newest ``limit`` events of a secret, oldest first."""

    def check(self) -> None:
        """Raise ``StorageError`` unless the store answers a read now (health checks)."""
        self.get_setting(HEALTH_PROBE_SETTING)

    @abc.abstractmethod
    def get_setting(self, key: str) -> bytes | None:
        """Store-wide settings: schema version, the master key check record."""

    @abc.abstractmethod
    def put_setting(self, key: str, value: bytes) -> None: ...

    @abc.abstractmethod
    def load_user(self, name: str) -> StoredUser | None:
        """The IAM user named ``name`` in any case; ``TamperedRecord`` when it can't be
        verified."""

    @abc.abstractmethod
    def list_users(self) -> list[StoredUser]:
        """Every IAM user, ordered by name regardless of case."""

    @abc.abstractmethod
    def load_access_key(self, access_key_id: str) -> tuple[StoredUser, bytes] | None:
        """The user owning ``access_key_id`` and the key's secret, or None when no user has
        it. Raises ``TamperedRecord`` (the user) or ``DecryptionFailure`` (the secret) when
        the records can't be verified."""

    @abc.abstractmethod
    def user_keys(self, name: str) -> list[tuple[str, bytes]]:
        """The access keys of the user ``name`` (any case) as (id, secret), ordered by id;
        for tools that rewrite records (``secretsd keys rotate-master``)."""

    @abc.abstractmethod
    def commit_user(self, change: UserChange) -> int:
        """Apply ``change`` atomically and durably; the new revision (0 on delete)."""

    @abc.abstractmethod
    def change_marker(self) -> object | None:
        """A value that differs from the one returned before whenever anything in the store
        may have changed since (by this thread, another thread or another process), when
        the backend can tell at a fraction of a read's cost; None when it can't. A reader
        that took a marker before a read may reuse what the read returned for as long as
        the marker, taken again on the same thread, stays equal."""

    @abc.abstractmethod
    def close(self) -> None: ...
