"""Moving a store to a new master key while servers keep running on it.

Theory of operation. Every sealed record names the master key that sealed it, so a store
may hold records of two keys at once and opens them all with a keyring holding both. A
rotation from key O to key N therefore goes:

1. ``begin``: two settings make each key reachable from the other: ``rotation.next`` is N
   sealed under O, ``rotation.previous`` is O sealed under N. A node that holds either key
   learns the other from them (``discoverer``, the keyring's discover hook): when a record
   names a key it lacks, and before each seal. A node that learned N seals with N.
2. ``rewrap_pass``, repeated until a pass rewrites nothing: each value sealed under
   another key is opened and sealed again under N, and swapped in only if it is unchanged
   (``replace_value``), one record per durable write. Killed at any point, the store is
   consistent: every record is under O or N, and both are reachable. Then
   ``reauthenticate_pass`` does the same for the documents' tags (``store.documents``),
   and ``reseal_users_pass`` for IAM users' records and their access keys' secrets.
3. ``finish``: the key check record moves to N. From then on a node starting with N alone
   needs nothing else; one starting with O still learns N from ``rotation.next``.
4. ``retire`` (a separate step, once every node runs with N): the two settings are cleared.
   Until then O still reaches N through the store, so a leaked O is retired only there.
   Afterwards a node still holding only O refuses to seal (``WrongMasterKey``) instead of
   writing records the others cannot open.

Settings cannot be deleted through the Storage interface; an empty value means "none".
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from secretsd.model.errors import DecryptionFailure
from secretsd.model.secret import UnreadableRecord
from secretsd.store import documents
from secretsd.store.base import Change, Conflict, Storage, StoredUser, UserChange
from secretsd.store.encryption import (
    _KEY_CHECK_IDENTITY,
    FORMAT_V1,
    KEY_CHECK_SETTING,
    EncryptedStorage,
    open_sealed,
    seal,
)
from secretsd.store.keys import Keyring, MasterKey, MasterKeyError, WrongMasterKey

NEXT_SETTING = "encryption.rotation.next"
PREVIOUS_SETTING = "encryption.rotation.previous"
_ROTATION_IDENTITY = "secretsd:master-key-rotation"


def record_key_id(record: bytes) -> str | None:
    """The id of the master key that sealed ``record``, or None if it names none."""
    if len(record) < 2 or record[0] != FORMAT_V1 or len(record) < 2 + record[1]:
        return None
    try:
        return record[2 : 2 + record[1]].decode("ascii")
    except UnicodeDecodeError:
        return None


def _learn(ring: Keyring, storage: Storage, setting: str, version: str) -> MasterKey | None:
    record = storage.get_setting(setting)
    if not record:
        return None
    key_id = record_key_id(record)
    if key_id is None or key_id not in ring:
        return None
    try:
        return MasterKey(open_sealed(ring.snapshot(), _ROTATION_IDENTITY, version, record))
    except (DecryptionFailure, MasterKeyError):
        return None


def discoverer(storage: Storage, location: str) -> Callable[[Keyring, bool], None]:
    """The keyring hook that learns keys from a rotation recorded in ``storage``.

    ``storage`` is the store below the encryption layer (settings only are read). Before a
    seal it raises WrongMasterKey when the store's check record is under a key this node
    cannot reach: the store was rotated and the rotation retired while this node ran, and
    what it sealed now nobody else could open.
    """

    def discover(ring: Keyring, sealing: bool) -> None:
        following = _learn(ring, storage, NEXT_SETTING, "next")
        if following is not None and following.key_id != ring.snapshot().current.key_id:
            ring.add(following, make_current=True)
        preceding = _learn(ring, storage, PREVIOUS_SETTING, "previous")
        if preceding is not None and preceding.key_id not in ring:
            ring.add(preceding)
        if not sealing:
            return
        check = storage.get_setting(KEY_CHECK_SETTING)
        key_id = record_key_id(check) if check else None
        if key_id is not None and key_id not in ring:
            raise WrongMasterKey(
                f"the master key of {location} was rotated to key {key_id}, which this "
                f"process does not have: restart it with the new master key"
            )

    return discover


def begin(storage: Storage, old: bytes, new: bytes) -> None:
    """Record the rotation from ``old`` to ``new`` (key material) so nodes learn both."""
    old_key, new_key = MasterKey(old), MasterKey(new)
    storage.put_setting(NEXT_SETTING, seal(Keyring(old_key), _ROTATION_IDENTITY, "next", new))
    storage.put_setting(
        PREVIOUS_SETTING, seal(Keyring(new_key), _ROTATION_IDENTITY, "previous", old)
    )


def rewrap_pass(
    storage: Storage,
    ring: Keyring,
    progress: Callable[[int], None] = lambda done: None,
) -> int:
    """Seal again under ``ring.current`` every value sealed under another key.

    Returns how many records under another key the pass met, rewritten or not: the rotation
    is done with the values after a pass that returns 0. ``ring`` must hold the new key as
    current and every key records may name. ``progress(done)`` follows each rewrite.
    """
    target = ring.current
    sealer = Keyring(target)
    done = met = 0
    for arn, version_id, record in storage.iter_values():
        if record_key_id(record) == target.key_id:
            continue
        met += 1
        fresh = seal(sealer, arn, version_id, open_sealed(ring, arn, version_id, record))
        # A record changed or dropped since it was listed is left to the next pass.
        if storage.replace_value(arn, version_id, record, fresh):
            done += 1
            progress(done)
    return met


def reauthenticate_pass(storage: EncryptedStorage) -> int:
    """Authenticate again under the current key every document tagged by another key.

    Documents carry a tag by the master key that wrote them last (``store.documents``); once
    the old key is retired, one left under it would be refused. Each is rewritten unchanged
    through the encrypting layer (a new revision, tagged by the current key), guarded by the
    revision read, so a concurrent change wins and the next pass looks again. Returns how
    many documents under another key the pass met.
    """
    target = storage.keyring.current.key_id
    met = 0
    for raw in storage.inner.iter_secrets():
        if documents.record_key_id(raw.document) == target:
            continue
        met += 1
        try:
            stored = storage.load_by_arn(raw.arn)
        except UnreadableRecord:
            continue  # refused: a rewrite must not bless a record that fails to verify
        if stored is None:
            continue
        with contextlib.suppress(Conflict):
            storage.commit(Change(stored.arn, stored.name, stored.revision, stored.document))
    return met


def _user_under_other_keys(storage: EncryptedStorage, raw: StoredUser, key_id: str) -> bool:
    return documents.record_key_id(raw.document) != key_id or any(
        record_key_id(sealed) != key_id for _, sealed in storage.inner.user_keys(raw.name)
    )


def reseal_users_pass(storage: EncryptedStorage) -> int:
    """Authenticate each IAM user's record, and seal its access keys' secrets, again under
    the current key, where any of them is under another: one change per user, through the
    encrypting layer, guarded by the revision read (a concurrent change wins, and the next
    pass looks again). Returns how many users under another key the pass met."""
    target = storage.keyring.current.key_id
    met = 0
    for raw in storage.inner.list_users():
        if not _user_under_other_keys(storage, raw, target):
            continue
        met += 1
        try:
            stored = storage.load_user(raw.name)
            keys = dict(storage.user_keys(raw.name))
        except (UnreadableRecord, DecryptionFailure):
            continue  # refused: a rewrite must not bless a record that fails to verify
        if stored is None:
            continue
        change = UserChange(
            stored.name, stored.revision, stored.document, put_keys=keys, drop_keys=list(keys)
        )
        with contextlib.suppress(Conflict):
            storage.commit_user(change)
    return met


def count_under_other_keys(storage: EncryptedStorage, key_id: str) -> int:
    """Values, documents and users still under a key other than ``key_id``."""
    values = sum(1 for _, _, record in storage.iter_values() if record_key_id(record) != key_id)
    docs = sum(
        1 for raw in storage.inner.iter_secrets() if documents.record_key_id(raw.document) != key_id
    )
    users = sum(
        1 for raw in storage.inner.list_users() if _user_under_other_keys(storage, raw, key_id)
    )
    return values + docs + users


def finish(storage: Storage, ring: Keyring) -> None:
    """Move the key check record to ``ring.current`` (after a pass that found nothing)."""
    record = storage.get_setting(KEY_CHECK_SETTING)
    target = ring.current
    if record is None or record_key_id(record) == target.key_id:
        return
    plaintext = open_sealed(ring, *_KEY_CHECK_IDENTITY, record)
    storage.put_setting(KEY_CHECK_SETTING, seal(Keyring(target), *_KEY_CHECK_IDENTITY, plaintext))


def check_key_id(storage: Storage) -> str | None:
    """The id of the key the store's check record is sealed under."""
    record = storage.get_setting(KEY_CHECK_SETTING)
    return record_key_id(record) if record else None


def rotation_in_store(storage: Storage) -> bool:
    return bool(storage.get_setting(NEXT_SETTING) or storage.get_setting(PREVIOUS_SETTING))


def retire(storage: Storage) -> None:
    """Forget the rotation: the old key no longer reaches the new one through the store."""
    storage.put_setting(NEXT_SETTING, b"")
    storage.put_setting(PREVIOUS_SETTING, b"")
