"""Master keys: the key file, the environment variable, and how the keyring finds a key.

The master key wraps the per-value data keys of ``store.encryption``. This module reads it
from the environment variable ``SECRETSD_MASTER_KEY`` (base64 of 32 bytes) or from
``DATA_DIR/master.key``, which the first start creates with mode 0600; the other sources
(a command, AWS KMS) live in ``store.key_sources``.

A key's id is derived from the key itself (a truncated HMAC under the key), so records say
which key sealed them without anyone having to name keys, and a rotation can add a key to
the keyring while old records still open with the old one. A keyring may be given a
``discover`` hook: it runs when a record names a key the ring lacks and before each seal,
so a running server learns a master key that ``secretsd keys rotate-master`` introduces
(see ``store.rekey``).

Besides sealing, a master key authenticates records that stay readable (the documents of
``store.encryption``) with HMAC-SHA256 under a key derived from it by HKDF, so the one key
is never used by two algorithms.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from secretsd.private_file import publish_private_file
from secretsd.store.base import StorageError

ENV_VAR = "SECRETSD_MASTER_KEY"
KEY_FILE_NAME = "master.key"
KEY_BYTES = 32
_KEY_ID_LABEL = b"secretsd master key id v1"
_MAC_KEY_LABEL = b"secretsd record authentication v1"


class MasterKeyError(StorageError):
    """The master key is missing, malformed or stored unsafely."""


class WrongMasterKey(StorageError):
    """The master key is well formed but is not the key this store was sealed with."""


class MasterKey:
    """A 256-bit master key. Its repr shows only the key id, never key material."""

    __slots__ = ("_mac", "aead", "key_id")

    def __init__(self, material: bytes) -> None:
        if len(material) != KEY_BYTES:
            raise MasterKeyError(f"a master key is {KEY_BYTES} bytes, got {len(material)}")
        digest = hmac.new(material, _KEY_ID_LABEL, hashlib.sha256).hexdigest()
        self.key_id: str = digest[:16]
        # Only the cipher objects are kept: no attribute holds key bytes for a stray print.
        self.aead = AESGCM(material)
        mac_key = HKDF(hashes.SHA256(), 32, salt=None, info=_MAC_KEY_LABEL).derive(material)
        self._mac = hmac.new(mac_key, digestmod=hashlib.sha256)

    def mac(self, message: bytes) -> bytes:
        """HMAC-SHA256 of ``message`` under this key's authentication key (32 bytes)."""
        mac = self._mac.copy()
        mac.update(message)
        return mac.digest()

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"


class Keyring:
    """The current key seals; every key in the ring opens what it sealed.

    ``discover(ring, sealing)`` (optional) may add keys with ``add``; it runs before each
    seal (``sealing`` true: it may refuse by raising) and when ``get`` misses, so it must be
    cheap and must not call ``get`` or ``current``.
    """

    __slots__ = ("_by_id", "_current", "_discover", "_lock")

    def __init__(
        self,
        current: MasterKey,
        older: Iterable[MasterKey] = (),
        *,
        discover: Callable[[Keyring, bool], None] | None = None,
    ) -> None:
        self._current = current
        self._by_id = {key.key_id: key for key in older}
        self._by_id[current.key_id] = current
        self._discover = discover
        self._lock = threading.Lock()

    @property
    def current(self) -> MasterKey:
        if self._discover is not None:
            self._discover(self, True)
        return self._current

    def get(self, key_id: str) -> MasterKey | None:
        key = self._by_id.get(key_id)
        if key is None and self._discover is not None:
            self._discover(self, False)
            key = self._by_id.get(key_id)
        return key

    def add(self, key: MasterKey, *, make_current: bool = False) -> None:
        with self._lock:
            # Copy on write: readers look keys up without the lock.
            self._by_id = {**self._by_id, key.key_id: key}
            if make_current:
                self._current = key

    def snapshot(self) -> Keyring:
        """The keys known now, without the discover hook (for the hook's own lookups)."""
        return Keyring(self._current, self._by_id.values())

    def keys(self) -> list[MasterKey]:
        return list(self._by_id.values())

    def __contains__(self, key_id: str) -> bool:
        return key_id in self._by_id

    def __repr__(self) -> str:
        return f"Keyring(current={self._current.key_id!r}, keys={sorted(self._by_id)!r})"


def decode_key(text: str | bytes, source: str) -> MasterKey:
    """Parse base64 of 32 bytes; errors name the source, never the text."""
    return MasterKey(decode_material(text, source))


def decode_material(text: str | bytes, source: str) -> bytes:
    """The 32 bytes of a base64 master key; errors name the source, never the text."""
    try:
        material = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        material = b""
    if len(material) != KEY_BYTES:
        raise MasterKeyError(
            f"{source} is not a valid master key: expected the base64 encoding of "
            f"{KEY_BYTES} random bytes (for example from `openssl rand -base64 32`)"
        )
    return material


def load_master_key(data_dir: Path, env: Mapping[str, str], *, create: bool = True) -> MasterKey:
    """The master key from ``env[SECRETSD_MASTER_KEY]`` or ``data_dir/master.key``.

    With ``create`` the key file is made on first use; without it a missing file is an
    error (the caller knows the store already holds sealed data).
    """
    if ENV_VAR in env:
        return decode_key(env[ENV_VAR], f"the environment variable {ENV_VAR}")
    path = Path(data_dir) / KEY_FILE_NAME
    try:
        try:
            return _read_key_file(path)
        except FileNotFoundError:
            if not create:
                raise MasterKeyError(
                    f"{path} is missing, but the store already holds data sealed with a "
                    f"master key: restore the file or set {ENV_VAR}"
                ) from None
        try:
            return _create_key_file(path)
        except FileExistsError:
            # Another process created it between our read and our create: use theirs.
            return _read_key_file(path)
    except OSError as exc:
        raise MasterKeyError(f"cannot use the master key file {path}: {exc.strerror}") from exc


def _read_key_file(path: Path) -> MasterKey:
    return MasterKey(read_key_material(path))


def read_key_material(path: Path) -> bytes:
    """The key in the file ``path``, refused when group or others may read it.

    Raises OSError (FileNotFoundError when missing) or MasterKeyError."""
    fd = os.open(path, os.O_RDONLY)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise MasterKeyError(f"{path} is not a regular file")
        mode = stat.S_IMODE(status.st_mode)
        if mode & 0o077:
            raise MasterKeyError(
                f"{path} is accessible by group or others (mode {mode:04o}); "
                f"restrict it with `chmod 600 {path}`"
            )
        with os.fdopen(fd, "rb", closefd=False) as handle:
            text = handle.read()
    finally:
        os.close(fd)
    return decode_material(text, str(path))


def _create_key_file(path: Path) -> MasterKey:
    """Write a fresh key; FileExistsError when another process made one first."""
    material = secrets.token_bytes(KEY_BYTES)
    if not publish_private_file(path, base64.b64encode(material) + b"\n"):
        raise FileExistsError(path)
    return MasterKey(material)
