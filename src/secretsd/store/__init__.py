"""secretsd store: persistence behind one interface, values encrypted at rest.

``open_storage`` is the one way the server opens its store; the backends and the
encryption layer are importable on their own for tests and tools.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from secretsd.store.base import Change, Conflict, Storage, StorageError, StoredSecret
from secretsd.store.encryption import KEY_CHECK_SETTING, EncryptedStorage
from secretsd.store.keys import Keyring, MasterKeyError, WrongMasterKey, load_master_key

__all__ = [
    "DATABASE_FILE_NAME",
    "Change",
    "Conflict",
    "MasterKeyError",
    "Storage",
    "StorageError",
    "StoredSecret",
    "WrongMasterKey",
    "open_storage",
]

DATABASE_FILE_NAME = "secretsd.db"
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_storage(
    data_dir: str | os.PathLike[str],
    database_url: str | None = None,
    env: Mapping[str, str] = os.environ,
    *,
    schema: str = "secretsd",
    pool_size: int | None = None,
) -> Storage:
    """Open the server's store, with values encrypted at rest, and check the master key.

    - ``data_dir``: the data directory. It holds the SQLite database ``secretsd.db`` (unless
      ``database_url`` is given) and the master key file ``master.key`` (unless the key
      comes from the environment). Created with mode 0700 when missing.
    - ``database_url``: None (or empty) for the embedded SQLite store, or a ``postgresql://`` (or
      ``postgres://``) URL for a PostgreSQL store that several server nodes share; its
      tables live in the database schema ``schema``, reached through a pool of at most
      ``pool_size`` connections (the backend's default when None).
    - ``env``: the environment to read ``SECRETSD_MASTER_KEY`` (base64 of 32 bytes) from;
      when it is unset the key comes from ``data_dir/master.key``, created on first start.

    Raises ``WrongMasterKey`` when the key is not the one the store was sealed with,
    ``MasterKeyError`` when it is malformed, missing or stored with loose permissions, and
    ``StorageError`` when the database cannot be opened. The caller closes the store.
    """
    data_dir = Path(data_dir)
    inner: Storage
    if not database_url:
        inner = _sqlite(data_dir / DATABASE_FILE_NAME)
        location = f"this data directory ({data_dir})"
    elif database_url.startswith(_POSTGRES_SCHEMES):
        postgres = _postgres(database_url, schema, pool_size)
        inner, location = postgres, f"the store at {postgres.location}"
    else:
        raise StorageError("the database URL must start with postgresql:// (or postgres://)")
    try:
        sealed_before = inner.get_setting(KEY_CHECK_SETTING) is not None
        key = load_master_key(data_dir, env, create=not sealed_before)
        return EncryptedStorage(inner, Keyring(key), location=location)
    except BaseException:
        inner.close()
        raise


def _sqlite(path: Path) -> Storage:
    from secretsd.store.sqlite import SQLiteStorage

    return SQLiteStorage(path)


def _postgres(url: str, schema: str, pool_size: int | None):
    # Imported on demand: the embedded store does not load the PostgreSQL driver.
    from secretsd.store.postgres import DEFAULT_POOL_SIZE, PostgresStorage

    return PostgresStorage(url, schema=schema, pool_size=pool_size or DEFAULT_POOL_SIZE)
