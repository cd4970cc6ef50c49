"""``secretsd keys rotate-master``: every value re-sealed, nothing lost when killed, servers
keep serving meanwhile, and ``retire-old-key`` makes the old key useless."""

from __future__ import annotations

import base64
import os
import random
import secrets
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from secretsd.cli import main
from secretsd.store import CREATE, Storage, WrongMasterKey, documents, open_storage
from secretsd.store.base import Change, UserChange
from secretsd.store.encryption import EncryptedStorage
from secretsd.store.keys import ENV_VAR, KEY_FILE_NAME, MasterKey, read_key_material
from secretsd.store.rekey import record_key_id
from tests.support.server import start_server

KEYS = [sys.executable, "-m", "secretsd.cli", "keys"]


@pytest.fixture(autouse=True)
def _no_key_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ENV_VAR, "SECRETSD_MASTER_KEY_COMMAND", "SECRETSD_MASTER_KEY_KMS"):
        monkeypatch.delenv(name, raising=False)


def _fill(data_dir: Path, count: int) -> dict[tuple[str, str], bytes]:
    """A store of ``count`` secrets with two values each; the values by (arn, version)."""
    values = {}
    store = open_storage(data_dir, env={}, mode=CREATE)
    try:
        with store.batch():
            for i in range(count):
                arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:s{i:05d}-AbCdEf"
                put = {"v1": f"first {i}".encode(), "v2": f"second {i}".encode()}
                store.commit(Change(arn, f"s{i:05d}", None, b"{}", put))
                values.update({(arn, version): value for version, value in put.items()})
    finally:
        store.close()
    return values


def _key_ids(store: Storage) -> list[str | None]:
    return [record_key_id(record) for _, _, record in store.iter_values()]


def _assert_all_read(store: Storage, values: dict[tuple[str, str], bytes]) -> None:
    for (arn, version), value in values.items():
        assert store.read_value(arn, version) == value
    # The documents too: each verifies under the keys this node holds, none is refused.
    for arn, _ in values:
        stored = store.load_by_arn(arn)
        assert stored is not None and stored.problem is None


def _key_id_of(path: Path) -> str:
    return MasterKey(read_key_material(path)).key_id


def test_rotation_re_seals_everything_and_retiring_locks_the_old_key_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = _fill(tmp_path, 150)
    old_id = _key_id_of(tmp_path / KEY_FILE_NAME)
    old_env = {ENV_VAR: base64.b64encode(read_key_material(tmp_path / KEY_FILE_NAME)).decode()}
    assert main(["keys", "rotate-master", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    new_id = _key_id_of(tmp_path / KEY_FILE_NAME)
    assert new_id != old_id and _key_id_of(tmp_path / "master.key.old") == old_id
    assert not (tmp_path / "master.key.next").exists()
    assert f"master key rotated to key {new_id}" in out and "re-sealed 300 values" in out
    store = open_storage(tmp_path, env={})
    assert set(_key_ids(store)) == {new_id}
    _assert_all_read(store, values)
    store.close()
    # Until retired, a node still configured with the old key reaches the new one.
    store = open_storage(tmp_path, env=old_env)
    _assert_all_read(store, values)
    store.close()
    assert main(["keys", "retire-old-key", "--data-dir", str(tmp_path)]) == 0
    assert not (tmp_path / "master.key.old").exists()
    with pytest.raises(WrongMasterKey):
        open_storage(tmp_path, env=old_env)
    store = open_storage(tmp_path, env={})
    _assert_all_read(store, values)
    store.close()


def test_killed_halfway_nothing_is_lost_and_a_rerun_finishes(tmp_path: Path) -> None:
    values = _fill(tmp_path, 2000)
    old_id = _key_id_of(tmp_path / KEY_FILE_NAME)
    # A node that opened the store before the rotation, as a running server has.
    running = open_storage(tmp_path, env={})
    rotation = subprocess.Popen(
        [*KEYS, "rotate-master", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert rotation.stdout is not None
        first = rotation.stdout.readline()
        rotation.send_signal(signal.SIGKILL)
        _, errors = rotation.communicate(timeout=30)
    finally:
        rotation.kill()
    assert first == "re-sealed 100 values\n", errors
    assert rotation.returncode == -signal.SIGKILL
    new_id = _key_id_of(tmp_path / "master.key.next")
    assert _key_id_of(tmp_path / KEY_FILE_NAME) == old_id
    counts = {key_id: _key_ids(running).count(key_id) for key_id in (old_id, new_id)}
    assert counts[new_id] >= 100 and counts[old_id] > 0, counts
    assert sum(counts.values()) == len(values)
    _assert_all_read(running, values)
    # A node started now with the old key file reads everything too.
    fresh = open_storage(tmp_path, env={})
    _assert_all_read(fresh, values)
    fresh.close()

    done = subprocess.run(
        [*KEYS, "rotate-master", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert _key_id_of(tmp_path / KEY_FILE_NAME) == new_id
    assert set(_key_ids(running)) == {new_id}
    _assert_all_read(running, values)
    # What the old node writes now is sealed under the new key.
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:late-AbCdEf"
    running.commit(Change(arn, "late", None, b"{}", {"v1": b"late value"}))
    running.close()
    store = open_storage(tmp_path, env={})
    assert set(_key_ids(store)) == {new_id}
    assert store.read_value(arn, "v1") == b"late value"
    _assert_all_read(store, values)
    store.close()


def test_a_new_key_from_a_command(tmp_path: Path) -> None:
    def key_command(name: str) -> str:
        path = tmp_path / name
        path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
        return f"cat {shlex.quote(str(path))}"

    old, new = key_command("old.b64"), key_command("new.b64")
    data_dir = tmp_path / "data"
    store = open_storage(data_dir, env={}, mode=CREATE, master_key_command=old)
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf"
    store.commit(Change(arn, "s", None, b"{}", {"v1": b"value"}))
    store.close()
    base = ["keys", "rotate-master", "--data-dir", str(data_dir), "--master-key-command", old]
    assert main(["keys", "rotate-master", "--data-dir", str(data_dir)]) == 1  # no key file
    assert main([*base, "--new-key-command", new]) == 0
    assert list(data_dir.iterdir()) == [data_dir / "secretsd.db"]
    for command in (new, old):  # the old key works until retired
        store = open_storage(data_dir, env={}, master_key_command=command)
        assert store.read_value(arn, "v1") == b"value"
        store.close()
    retire = ["keys", "retire-old-key", "--data-dir", str(data_dir)]
    assert main([*retire, "--master-key-command", old]) == 1  # not the store's key any more
    assert main([*retire, "--master-key-command", new]) == 0
    with pytest.raises(WrongMasterKey):
        open_storage(data_dir, env={}, master_key_command=old)


def test_a_running_server_keeps_serving_through_a_rotation(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    data_dir = server.data_dir
    try:
        client = server.client()
        expected = {}
        for i in range(60):
            name = f"app/{i:03d}"
            client.create_secret(Name=name, SecretString=f"value {i}")
            expected[name] = f"value {i}"
        stop = threading.Event()
        failures: list[BaseException] = []
        reads = [0]
        # Every value each secret has had: a read must return one of them, never garbage.
        ever = {name: {value} for name, value in expected.items()}
        lock = threading.Lock()

        def reader(seed: int) -> None:
            mine = server.client()
            rng = random.Random(seed)
            while not stop.is_set():
                name = rng.choice(sorted(expected))
                try:
                    got = mine.get_secret_value(SecretId=name)["SecretString"]
                    with lock:
                        assert got in ever[name]
                    reads[0] += 1
                except BaseException as exc:
                    failures.append(exc)
                    return

        def writer() -> None:
            mine = server.client()
            round_ = 0
            while not stop.is_set():
                round_ += 1
                name = f"app/{round_ % 60:03d}"
                value = f"rewritten {round_}"
                with lock:
                    ever[name].add(value)
                try:
                    mine.put_secret_value(SecretId=name, SecretString=value)
                    with lock:
                        expected[name] = value
                except BaseException as exc:
                    failures.append(exc)
                    return

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(3)]
        threads.append(threading.Thread(target=writer))
        for thread in threads:
            thread.start()
        try:
            done = subprocess.run(
                [*KEYS, "rotate-master", "--data-dir", str(data_dir)],
                capture_output=True,
                text=True,
                timeout=120,
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        assert done.returncode == 0, done.stderr
        assert not failures, failures[:3]
        assert reads[0] > 0
        for name, value in expected.items():
            assert client.get_secret_value(SecretId=name)["SecretString"] == value
    finally:
        server.stop()
    new_id = _key_id_of(data_dir / KEY_FILE_NAME)
    store = open_storage(data_dir, env={})
    try:
        assert set(_key_ids(store)) == {new_id}
    finally:
        store.close()
    # A restart loads the new key file alone.
    server = start_server(data_dir, env={k: v for k, v in os.environ.items() if k != ENV_VAR})
    try:
        client = server.client()
        for name, value in expected.items():
            assert client.get_secret_value(SecretId=name)["SecretString"] == value
    finally:
        server.stop()


def test_users_and_their_keys_are_resealed_and_survive_retiring_the_old_key(
    tmp_path: Path,
) -> None:
    _fill(tmp_path, 2)
    store = open_storage(tmp_path, env={}, mode=CREATE)
    try:
        store.commit_user(
            UserChange("App", None, b'{"doc": 1}', put_keys={"AKIAREKEY00000000001": b"s1"})
        )
        store.commit_user(
            UserChange("App", 1, b'{"doc": 2}', put_keys={"AKIAREKEY00000000002": b"s2"})
        )
        store.commit_user(UserChange("other", None, b'{"doc": 3}'))
    finally:
        store.close()
    assert main(["keys", "rotate-master", "--data-dir", str(tmp_path)]) == 0
    new_id = _key_id_of(tmp_path / KEY_FILE_NAME)
    assert main(["keys", "retire-old-key", "--data-dir", str(tmp_path)]) == 0
    store = open_storage(tmp_path, env={})
    try:
        assert isinstance(store, EncryptedStorage)
        for raw in store.inner.list_users():
            assert documents.record_key_id(raw.document) == new_id
            assert {record_key_id(s) for _, s in store.inner.user_keys(raw.name)} <= {new_id}
        user = store.load_user("app")
        assert user is not None and user.document == b'{"doc": 2}'
        assert store.load_access_key("AKIAREKEY00000000001") == (user, b"s1")
        assert store.user_keys("APP") == [
            ("AKIAREKEY00000000001", b"s1"),
            ("AKIAREKEY00000000002", b"s2"),
        ]
    finally:
        store.close()
