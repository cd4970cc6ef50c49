"""open_storage: the store the server opens, end to end."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from secretsd.store import (
    CREATE,
    DATABASE_FILE_NAME,
    MasterKeyError,
    StorageError,
    WrongMasterKey,
    open_storage,
)
from secretsd.store.base import Change
from secretsd.store.encryption import EncryptedStorage
from secretsd.store.keys import ENV_VAR, KEY_FILE_NAME
from tests.store.conftest import POSTGRES_DSN


def _env_key() -> dict[str, str]:
    return {ENV_VAR: base64.b64encode(secrets.token_bytes(32)).decode()}


def test_default_is_encrypted_sqlite_in_the_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = open_storage(data_dir, env={}, mode=CREATE)
    assert isinstance(store, EncryptedStorage)
    store.commit(Change("arn:1", "one", None, b"doc", {"v1": b"value"}))
    store.close()
    assert (data_dir / DATABASE_FILE_NAME).is_file()
    assert (data_dir / KEY_FILE_NAME).is_file()
    again = open_storage(data_dir, env={})
    assert again.read_value("arn:1", "v1") == b"value"
    again.close()


def test_an_empty_database_url_means_sqlite(tmp_path: Path) -> None:
    open_storage(tmp_path, "", env={}, mode=CREATE).close()
    assert (tmp_path / DATABASE_FILE_NAME).is_file()


def test_key_from_the_environment(tmp_path: Path) -> None:
    env = _env_key()
    store = open_storage(tmp_path, env=env, mode=CREATE)
    store.commit(Change("arn:1", "one", None, b"doc", {"v1": b"value"}))
    store.close()
    assert not (tmp_path / KEY_FILE_NAME).exists()
    again = open_storage(tmp_path, env=env)
    assert again.read_value("arn:1", "v1") == b"value"
    again.close()


def test_wrong_key_fails_at_open_naming_the_data_directory(tmp_path: Path) -> None:
    open_storage(tmp_path, env=_env_key(), mode=CREATE).close()
    with pytest.raises(WrongMasterKey) as caught:
        open_storage(tmp_path, env=_env_key())
    assert str(caught.value) == f"the master key does not match this data directory ({tmp_path})"


def test_key_file_and_environment_are_not_interchangeable(tmp_path: Path) -> None:
    open_storage(tmp_path, env={}, mode=CREATE).close()
    with pytest.raises(WrongMasterKey):
        open_storage(tmp_path, env=_env_key())


def test_a_lost_key_file_is_an_error_not_a_new_key(tmp_path: Path) -> None:
    open_storage(tmp_path, env={}, mode=CREATE).close()
    (tmp_path / KEY_FILE_NAME).unlink()
    with pytest.raises(MasterKeyError, match="missing"):
        open_storage(tmp_path, env={})
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_a_malformed_environment_key_is_reported(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyError, match=ENV_VAR):
        open_storage(tmp_path, env={ENV_VAR: "nope"}, mode=CREATE)


def test_unknown_database_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="postgresql://"):
        open_storage(tmp_path, "mysql://localhost/x", env={})


@pytest.mark.postgres
@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_postgres_url(tmp_path: Path, pg_schema: str, scheme: str) -> None:
    url = POSTGRES_DSN.replace("postgresql://", f"{scheme}://", 1)
    env = _env_key()
    store = open_storage(tmp_path, url, env=env, schema=pg_schema, mode=CREATE)
    store.commit(Change("arn:1", "one", None, b"doc", {"v1": b"value"}))
    store.close()
    assert not (tmp_path / DATABASE_FILE_NAME).exists()
    again = open_storage(tmp_path, url, env=env, schema=pg_schema)
    assert again.read_value("arn:1", "v1") == b"value"
    again.close()
    with pytest.raises(WrongMasterKey, match=pg_schema):
        open_storage(tmp_path, url, env=_env_key(), schema=pg_schema)
