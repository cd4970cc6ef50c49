"""Master keys: the environment variable, the key file and its permissions."""

from __future__ import annotations

import base64
import os
import secrets
import stat
import threading
from pathlib import Path

import pytest

from secretsd.store.keys import (
    ENV_VAR,
    KEY_FILE_NAME,
    MasterKey,
    MasterKeyError,
    load_master_key,
)


def test_first_load_creates_a_private_key_file_and_later_loads_reuse_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key = load_master_key(data_dir, {})
    path = data_dir / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    material = base64.b64decode(path.read_bytes().strip(), validate=True)
    assert len(material) == 32
    assert key.key_id == MasterKey(material).key_id
    assert load_master_key(data_dir, {}).key_id == key.key_id
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILE_NAME]  # no temporary left


def test_key_file_is_private_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        load_master_key(tmp_path, {})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / KEY_FILE_NAME).stat().st_mode) == 0o600


def test_environment_variable_wins_and_writes_no_file(tmp_path: Path) -> None:
    material = secrets.token_bytes(32)
    key = load_master_key(tmp_path, {ENV_VAR: base64.b64encode(material).decode()})
    assert key.key_id == MasterKey(material).key_id
    assert not (tmp_path / KEY_FILE_NAME).exists()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not base64 at all!",
        base64.b64encode(b"k" * 16).decode(),  # too short
        base64.b64encode(b"k" * 33).decode(),  # too long
        base64.b64encode(b"k" * 32).decode()[:-2],  # bad padding
        "ключ",
    ],
)
def test_malformed_environment_key_is_a_clear_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(MasterKeyError, match=ENV_VAR) as caught:
        load_master_key(tmp_path, {ENV_VAR: text})
    if text:
        assert text not in str(caught.value)
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_key_file_open_to_group_or_others_is_refused(tmp_path: Path) -> None:
    load_master_key(tmp_path, {})
    path = tmp_path / KEY_FILE_NAME
    for mode in (0o640, 0o604, 0o644):
        path.chmod(mode)
        with pytest.raises(MasterKeyError, match="chmod 600"):
            load_master_key(tmp_path, {})
    path.chmod(0o400)
    load_master_key(tmp_path, {})


def test_malformed_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"garbage")
    os.close(fd)
    with pytest.raises(MasterKeyError, match=str(path)):
        load_master_key(tmp_path, {})


def test_missing_key_file_without_create_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyError, match="missing"):
        load_master_key(tmp_path, {}, create=False)
    assert not (tmp_path / KEY_FILE_NAME).exists()


def test_concurrent_first_starts_agree_on_one_key(tmp_path: Path) -> None:
    ids: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        ids.append(load_master_key(tmp_path, {}).key_id)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 8 and len(set(ids)) == 1
    assert load_master_key(tmp_path, {}).key_id == ids[0]


def test_key_ids_differ_between_keys_and_hide_the_key() -> None:
    material = secrets.token_bytes(32)
    key = MasterKey(material)
    assert key.key_id == MasterKey(material).key_id
    assert key.key_id != MasterKey.generate().key_id
    assert key.key_id not in material.hex()
    with pytest.raises(MasterKeyError):
        MasterKey(b"short")


def test_a_symlinked_key_file_is_followed(tmp_path: Path) -> None:
    real = tmp_path / "mounted"
    real.mkdir()
    key = load_master_key(real, {})
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / KEY_FILE_NAME).symlink_to(real / KEY_FILE_NAME)
    assert load_master_key(data_dir, {}).key_id == key.key_id


def test_an_unreadable_key_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE_NAME).mkdir()
    with pytest.raises(MasterKeyError, match="not a regular file"):
        load_master_key(tmp_path, {})
