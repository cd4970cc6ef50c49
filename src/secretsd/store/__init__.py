"""secretsd store: persistence behind one interface, values encrypted at rest.

``open_storage`` is the one way the server opens its store; the backends and the
encryption layer are importable on their own for tests and tools.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

from secretsd.model.audit_chain import Line
from secretsd.store import rekey
from secretsd.store.audit import (
    DEFAULT_MAX_BYTES as DEFAULT_AUDIT_MAX_BYTES,
)
from secretsd.store.audit import (
    AuditLog,
    AuditWriteError,
    FileAuditLog,
    FileFollower,
    read_file_lines,
)
from secretsd.store.base import Change, Conflict, Storage, StorageError, StoredSecret
from secretsd.store.encryption import KEY_CHECK_SETTING, EncryptedStorage
from secretsd.store.key_sources import choose_source
from secretsd.store.keys import Keyring, MasterKeyError, WrongMasterKey

__all__ = [
    "CREATE",
    "DATABASE_FILE_NAME",
    "DEFAULT_AUDIT_MAX_BYTES",
    "OPEN",
    "AuditLog",
    "AuditWriteError",
    "Change",
    "Conflict",
    "FileFollower",
    "MasterKeyError",
    "Storage",
    "StorageError",
    "StoredSecret",
    "WrongMasterKey",
    "audit_lines",
    "open_audit_log",
    "open_storage",
]

DATABASE_FILE_NAME = "secretsd.db"
CREATE: Literal["create"] = "create"
OPEN: Literal["open"] = "open"
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_storage(
    data_dir: str | os.PathLike[str],
    database_url: str | None = None,
    env: Mapping[str, str] = os.environ,
    *,
    schema: str = "secretsd",
    mode: Literal["create", "open"] = OPEN,
    master_key_command: str | None = None,
    master_key_kms: str | None = None,
    pool_size: int | None = None,
) -> Storage:
    """Open the server's store, with values encrypted at rest, and check the master key.

    - ``data_dir``: the data directory. It holds the SQLite database ``secretsd.db`` (unless
      ``database_url`` is given) and the master key file ``master.key`` (or, with KMS, the
      wrapped key ``master.key.kms``).
    - ``database_url``: None (or empty) for the embedded SQLite store, or a ``postgresql://`` (or
      ``postgres://``) URL for a PostgreSQL store that several server nodes share; its
      tables live in the database schema ``schema``, reached through a pool of at most
      ``pool_size`` connections (the backend's default when None).
    - ``env``: the environment: ``SECRETSD_MASTER_KEY`` (base64 of 32 bytes) and the
      fallbacks of the next two arguments are read from it.
    - ``mode``: ``"create"`` (the server) makes the data directory, the store and the key
      on first start; ``"open"`` (every other command) fails, naming the path, when any of
      them is missing, and writes nothing to a store that was never initialised.
    - ``master_key_command``, ``master_key_kms``: the other key sources
      (``store.key_sources``); None falls back to ``SECRETSD_MASTER_KEY_COMMAND`` and
      ``SECRETSD_MASTER_KEY_KMS``. At most one source may be named.

    Raises ``WrongMasterKey`` when the key is not the one the store was sealed with,
    ``MasterKeyError`` when it is malformed, missing, unobtainable or stored with loose
    permissions, and ``StorageError`` when the database cannot be opened or (``"open"``)
    does not exist. The caller closes the store.
    """
    if mode not in (CREATE, OPEN):
        raise ValueError(f"mode must be {CREATE!r} or {OPEN!r}, not {mode!r}")
    data_dir = Path(data_dir)
    creating = mode == CREATE
    # Validated before anything is opened: a bad flag costs no database connection.
    source = choose_source(data_dir, env, command=master_key_command, kms_key=master_key_kms)
    inner: Storage
    if not database_url:
        path = data_dir / DATABASE_FILE_NAME
        if not creating:
            _require_existing(data_dir, path)
        inner = _sqlite(path)
        location = f"this data directory ({data_dir})"
    elif database_url.startswith(_POSTGRES_SCHEMES):
        postgres = _postgres(database_url, schema, pool_size, create=creating)
        inner, location = postgres, f"the store at {postgres.location}"
    else:
        raise StorageError("the database URL must start with postgresql:// (or postgres://)")
    try:
        sealed_before = inner.get_setting(KEY_CHECK_SETTING) is not None
        if not sealed_before and not creating:
            raise StorageError(
                f"{location} holds no secretsd store yet: start `secretsd server` on it first"
            )
        key = source.load(create=not sealed_before)
        keyring = Keyring(key, discover=rekey.discoverer(inner, location))
        return EncryptedStorage(inner, keyring, location=location)
    except BaseException:
        inner.close()
        raise


def open_audit_log(
    data_dir: str | os.PathLike[str],
    database_url: str | None = None,
    *,
    schema: str = "secretsd",
    max_bytes: int = DEFAULT_AUDIT_MAX_BYTES,
) -> AuditLog:
    """The server's audit log: ``DATA_DIR/audit.log`` (rolled at ``max_bytes``), or with a
    PostgreSQL store the ``audit_log`` table of its schema, which every node shares."""
    if database_url and database_url.startswith(_POSTGRES_SCHEMES):
        from secretsd.store.audit_postgres import PostgresAuditLog

        return PostgresAuditLog(database_url, schema=schema)
    return FileAuditLog(Path(data_dir), max_bytes=max_bytes)


def audit_lines(
    data_dir: str | os.PathLike[str],
    database_url: str | None = None,
    *,
    schema: str = "secretsd",
) -> Iterator[Line]:
    """The stored audit lines in chain order, for commands that read the log (no lock is
    taken: a running server may be appending)."""
    if database_url and database_url.startswith(_POSTGRES_SCHEMES):
        from secretsd.store.audit_postgres import PostgresAuditLog

        log = PostgresAuditLog(database_url, schema=schema, create=False)
        try:
            yield from log.lines()
        finally:
            log.close()
        return
    if not Path(data_dir).is_dir():
        raise StorageError(f"the data directory {data_dir} does not exist")
    yield from read_file_lines(Path(data_dir))


def _require_existing(data_dir: Path, database: Path) -> None:
    if not data_dir.is_dir():
        raise StorageError(f"the data directory {data_dir} does not exist")
    if not database.is_file():
        raise StorageError(f"there is no secretsd store in {data_dir}: {database} does not exist")


def _sqlite(path: Path) -> Storage:
    from secretsd.store.sqlite import SQLiteStorage

    return SQLiteStorage(path)


def _postgres(url: str, schema: str, pool_size: int | None, *, create: bool):
    # Imported on demand: the embedded store does not load the PostgreSQL driver.
    from secretsd.store.postgres import DEFAULT_POOL_SIZE, PostgresStorage

    return PostgresStorage(
        url, schema=schema, pool_size=pool_size or DEFAULT_POOL_SIZE, create=create
    )
