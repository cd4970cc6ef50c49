"""SQLite specifics: file settings, schema versions, durability across a kill -9."""

from __future__ import annotations

import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from secretsd.store import open_storage
from secretsd.store.base import Change, StorageError
from secretsd.store.sqlite import SCHEMA_VERSION, SQLiteStorage


def test_new_file_is_private_in_wal_mode_at_the_current_schema(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "store.db"
    store = SQLiteStorage(path)
    store.commit(Change("arn:1", "one", None, b"doc", {"v1": b"x"}))
    for p in path.parent.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, p
    conn = store._conn()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_every_thread_gets_a_full_sync_connection(tmp_path: Path) -> None:
    store = SQLiteStorage(tmp_path / "store.db")
    seen = []
    barrier = threading.Barrier(3)

    def probe() -> None:
        conn = store._conn()
        seen.append((id(conn), conn.execute("PRAGMA synchronous").fetchone()[0]))
        barrier.wait()  # all alive at once, so no connection is closed and its id reused

    threads = [threading.Thread(target=probe) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    assert len({conn for conn, _ in seen}) == 3
    assert {sync for _, sync in seen} == {2}


def test_reopening_keeps_the_schema_and_data(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = SQLiteStorage(path)
    store.commit(Change("arn:1", "one", None, b"doc"))
    store.close()
    store = SQLiteStorage(path)
    assert store.load_by_name("one").document == b"doc"
    store.close()


def test_a_file_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    SQLiteStorage(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StorageError, match=f"schema version {SCHEMA_VERSION + 1}, newer"):
        SQLiteStorage(path)


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"this is not an SQLite database, just some text" * 100)
    with pytest.raises(StorageError, match="not a usable database"):
        SQLiteStorage(path)


def test_an_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError, match="cannot create the database file"):
        SQLiteStorage(blocker / "store.db")


_WRITER = textwrap.dedent(
    """
    import sys
    from secretsd.store import open_storage
    from secretsd.store.base import Change

    store = open_storage(sys.argv[1], env={}, mode="create")
    revision = store.commit(Change("arn:d", "durable", None, b"1", {"v1": b"value-1"}))
    print(revision, flush=True)
    while True:
        nxt = revision + 1
        revision = store.commit(
            Change("arn:d", "durable", revision, str(nxt).encode(),
                   {f"v{nxt}": f"value-{nxt}".encode()})
        )
        print(revision, flush=True)
    """
)


@pytest.mark.slow
def test_acknowledged_commits_survive_kill_9(tmp_path: Path) -> None:
    for round_ in range(3):
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path / f"data{round_}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        acknowledged = []
        try:
            for line in writer.stdout:
                acknowledged.append(int(line))
                if len(acknowledged) >= 150 + 50 * round_:
                    writer.send_signal(signal.SIGKILL)
                    break
        finally:
            writer.kill()
            rest, errors = writer.communicate(timeout=30)
        # Lines still in the pipe were acknowledged before the kill too.
        acknowledged += [int(line) for line in rest.split()]
        assert writer.returncode == -signal.SIGKILL, errors
        assert acknowledged == list(range(1, len(acknowledged) + 1))
        last = acknowledged[-1]

        store = open_storage(tmp_path / f"data{round_}", env={})
        try:
            secret = store.load_by_name("durable")
            assert secret.revision >= last
            assert secret.document == str(secret.revision).encode()
            for revision in range(1, secret.revision + 1):
                expected = f"value-{revision}".encode()
                assert store.read_value("arn:d", f"v{revision}") == expected
        finally:
            store.close()


def test_connections_of_finished_threads_are_closed(tmp_path: Path) -> None:
    store = SQLiteStorage(tmp_path / "store.db")
    store.commit(Change("arn:1", "one", None, b"doc"))
    for _ in range(20):
        thread = threading.Thread(target=store.load_by_name, args=("one",))
        thread.start()
        thread.join()
    # The one connection of the main thread, the last short-lived one, and nothing piled up.
    assert len(store._connections) <= 2
    assert store.load_by_name("one").document == b"doc"
    store.close()


def test_a_later_release_migrates_an_existing_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "store.db"
    store = SQLiteStorage(path)
    store.commit(Change("arn:1", "one", None, b"doc", {"v1": b"x"}))
    store.close()
    from secretsd.store import sqlite as module

    later = (*module.MIGRATIONS, ("ALTER TABLE secrets ADD COLUMN note TEXT",))
    monkeypatch.setattr(module, "MIGRATIONS", later)
    store = SQLiteStorage(path)
    assert store.load_by_name("one").document == b"doc"
    assert store.read_value("arn:1", "v1") == b"x"
    store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(later)
        assert "note" in [row[1] for row in raw.execute("PRAGMA table_info(secrets)")]


def test_a_failing_migration_changes_nothing(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "store.db"
    SQLiteStorage(path).close()
    from secretsd.store import sqlite as module

    broken = (
        *module.MIGRATIONS,
        ("ALTER TABLE secrets ADD COLUMN note TEXT", "ALTER TABLE no_such_table ADD x"),
    )
    monkeypatch.setattr(module, "MIGRATIONS", broken)
    with pytest.raises(StorageError):
        SQLiteStorage(path)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert "note" not in [row[1] for row in raw.execute("PRAGMA table_info(secrets)")]
