"""The embedded store: one SQLite database file in the data directory.

Theory of operation. The file runs in WAL mode with ``synchronous=FULL``: every commit
fsyncs the write-ahead log before it returns, so an acknowledged commit survives a crash,
and readers never wait for a writer. Each thread gets its own connection (reads then take
no lock of ours and run in tens of microseconds); writers serialise on SQLite's own write
lock, taken up front with ``BEGIN IMMEDIATE`` so two writers never deadlock upgrading a
read lock.

The schema version lives in ``PRAGMA user_version``. ``MIGRATIONS[i]`` takes a file from
version ``i`` to ``i + 1``; opening a file applies the missing ones in one transaction and
refuses a file written by a newer release.

SQLite is the single-node store: one server process per data directory. Its ``claim_lock``
is therefore a lock of this process, shared by every ``SQLiteStorage`` open on the same file
(keyed by the file's real path), which is all a rotation needs when one process serves the
file. Reads are local and quick and WAL readers never wait for a writer, so they may run on
an event loop (``reads_may_block`` is False).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from secretsd.store import index, users
from secretsd.store.base import (
    Change,
    ListQuery,
    SortKey,
    Storage,
    StorageError,
    StoredSecret,
    StoredUser,
    UserChange,
)
from secretsd.store.changes import apply_change, runners

# A step is a statement, or a function for what SQL alone cannot do (decoding documents).
Step = str | Callable[[sqlite3.Connection], None]
MIGRATIONS: tuple[tuple[Step, ...], ...] = (
    (
        """CREATE TABLE secrets (
            arn TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            revision INTEGER NOT NULL,
            document BLOB NOT NULL)""",
        """CREATE TABLE secret_values (
            arn TEXT NOT NULL,
            version_id TEXT NOT NULL,
            value BLOB NOT NULL,
            PRIMARY KEY (arn, version_id))""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            arn TEXT NOT NULL,
            at REAL NOT NULL,
            event BLOB NOT NULL)""",
        "CREATE INDEX events_by_arn ON events (arn, at, id)",
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
    ),
    (
        """CREATE TABLE secret_index (
            arn TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            created REAL NOT NULL,
            last_changed REAL NOT NULL,
            last_accessed REAL NOT NULL,
            deleted_date REAL,
            deletion_date REAL,
            rotation_attention REAL)""",
        "CREATE INDEX secret_index_name ON secret_index (name, arn)",
        "CREATE INDEX secret_index_created ON secret_index (created, arn)",
        "CREATE INDEX secret_index_last_changed ON secret_index (last_changed, arn)",
        "CREATE INDEX secret_index_last_accessed ON secret_index (last_accessed, arn)",
        "CREATE INDEX secret_index_rotation ON secret_index (rotation_attention)",
        """CREATE TABLE secret_attributes (
            arn TEXT NOT NULL,
            kind TEXT NOT NULL,
            value TEXT NOT NULL,
            folded TEXT NOT NULL)""",
        "CREATE INDEX secret_attributes_by_arn ON secret_attributes (arn, kind)",
        lambda conn: index.rebuild(*runners(conn, "?")),
    ),
    # The ``all`` filter matches word prefixes, from "word" rows: index every secret again.
    (lambda conn: index.rebuild(*runners(conn, "?")),),
    users.schema("BLOB"),
)
SCHEMA_VERSION = len(MIGRATIONS)
_PAGE = 256
_BUSY_TIMEOUT_S = 30.0

# (real path of the database file, lock name) of every claim held in this process.
_claims: set[tuple[str, str]] = set()
_claims_lock = threading.Lock()


class SQLiteStorage(Storage):
    """A Storage in the SQLite database file ``path`` (created with mode 0600 if missing)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._local = threading.local()
        # Each connection with the thread it serves, so that those of finished threads close.
        self._connections: dict[sqlite3.Connection, threading.Thread] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._create_file()
        try:
            self._migrate(self._conn())
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteStorage({str(self.path)!r})"

    # -- connections -------------------------------------------------------------------

    def _create_file(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # SQLite gives the -wal and -shm files the database file's mode, so making the
            # file private here keeps all three private.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
        except OSError as exc:
            raise StorageError(f"cannot create the database file {self.path}: {exc}") from exc

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._lock:
            if self._closed:
                raise StorageError(f"the store {self.path} is closed")
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=_BUSY_TIMEOUT_S,
                    isolation_level=None,
                    check_same_thread=False,
                )
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode != "wal":
                    raise StorageError(f"{self.path} cannot use WAL mode (got {mode})")
                conn.execute("PRAGMA synchronous=FULL")
            except sqlite3.DatabaseError as exc:
                raise StorageError(f"{self.path} is not a usable database: {exc}") from exc
            self._connections[conn] = threading.current_thread()
            orphans = [c for c, t in self._connections.items() if not t.is_alive()]
            for orphan in orphans:
                del self._connections[orphan]
        for orphan in orphans:
            orphan.close()
        self._local.conn = conn
        return conn

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, {}
        for conn in connections:
            conn.close()

    @property
    def reads_may_block(self) -> bool:
        return False

    @contextlib.contextmanager
    def claim_lock(self, name: str) -> Iterator[bool]:
        key = (os.path.realpath(self.path), name)
        with _claims_lock:
            held = key not in _claims
            _claims.add(key)
        try:
            yield held
        finally:
            if held:
                with _claims_lock:
                    _claims.discard(key)

    # -- schema ------------------------------------------------------------------------

    def _migrate(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                known = len(MIGRATIONS)
                if version > known:
                    raise StorageError(
                        f"{self.path} has schema version {version}, newer than the "
                        f"{known} this secretsd knows: it was written by a later "
                        f"release; run that release or a newer one"
                    )
                for steps in MIGRATIONS[version:]:
                    for step in steps:
                        if callable(step):
                            step(conn)
                        else:
                            conn.execute(step)
                if version != known:
                    # PRAGMA takes no parameters; the value is our own integer.
                    conn.execute(f"PRAGMA user_version = {known:d}")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"{self.path} is not a usable database: {exc}") from exc

    # -- reads -------------------------------------------------------------------------

    def _one(self, query: str, params: tuple) -> tuple | None:
        try:
            return self._conn().execute(query, params).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"reading {self.path} failed: {exc}") from exc

    def load_by_name(self, name: str) -> StoredSecret | None:
        row = self._one("SELECT arn, name, revision, document FROM secrets WHERE name = ?", (name,))
        return None if row is None else StoredSecret(*row)

    def load_by_arn(self, arn: str) -> StoredSecret | None:
        row = self._one("SELECT arn, name, revision, document FROM secrets WHERE arn = ?", (arn,))
        return None if row is None else StoredSecret(*row)

    def iter_secrets(self) -> Iterator[StoredSecret]:
        # Pages keyed by name: no read transaction stays open while the caller iterates.
        after = None
        while True:
            try:
                if after is None:
                    rows = (
                        self._conn()
                        .execute(
                            "SELECT arn, name, revision, document FROM secrets "
                            "ORDER BY name LIMIT ?",
                            (_PAGE,),
                        )
                        .fetchall()
                    )
                else:
                    rows = (
                        self._conn()
                        .execute(
                            "SELECT arn, name, revision, document FROM secrets "
                            "WHERE name > ? ORDER BY name LIMIT ?",
                            (after, _PAGE),
                        )
                        .fetchall()
                    )
            except sqlite3.Error as exc:
                raise StorageError(f"reading {self.path} failed: {exc}") from exc
            for row in rows:
                yield StoredSecret(*row)
            if len(rows) < _PAGE:
                return
            after = rows[-1][1]

    def _all(self, query: str, params: tuple) -> list[tuple]:
        try:
            return self._conn().execute(query, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"reading {self.path} failed: {exc}") from exc

    def list_page(self, query: ListQuery) -> tuple[list[StoredSecret], SortKey | None]:
        statement, args = index.page_statement(query)
        rows, after = index.split_page(self._all(statement, tuple(args)), query.limit)
        return [StoredSecret(*row) for row in rows], after

    def rotation_candidates(self, now: float) -> list[StoredSecret]:
        return [StoredSecret(*row) for row in self._all(index.CANDIDATES_STATEMENT, (now,))]

    def read_value(self, arn: str, version_id: str) -> bytes | None:
        row = self._one(
            "SELECT value FROM secret_values WHERE arn = ? AND version_id = ?", (arn, version_id)
        )
        return None if row is None else row[0]

    def iter_values(self) -> Iterator[tuple[str, str, bytes]]:
        # Keyset pages, as iter_secrets: no read transaction stays open between pages.
        after: tuple[str, str] = ("", "")
        while True:
            try:
                rows = (
                    self._conn()
                    .execute(
                        "SELECT arn, version_id, value FROM secret_values "
                        "WHERE (arn, version_id) > (?, ?) ORDER BY arn, version_id LIMIT ?",
                        (*after, _PAGE),
                    )
                    .fetchall()
                )
            except sqlite3.Error as exc:
                raise StorageError(f"reading {self.path} failed: {exc}") from exc
            yield from rows
            if len(rows) < _PAGE:
                return
            after = (rows[-1][0], rows[-1][1])

    def read_events(self, arn: str, limit: int = 100) -> list[tuple[float, bytes]]:
        try:
            rows = (
                self._conn()
                .execute(
                    "SELECT at, event FROM events WHERE arn = ? ORDER BY at DESC, id DESC LIMIT ?",
                    (arn, limit),
                )
                .fetchall()
            )
        except sqlite3.Error as exc:
            raise StorageError(f"reading {self.path} failed: {exc}") from exc
        rows.reverse()
        return rows

    def get_setting(self, key: str) -> bytes | None:
        row = self._one("SELECT value FROM settings WHERE key = ?", (key,))
        return None if row is None else row[0]

    # -- writes ------------------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        # One BEGIN IMMEDIATE for the block, a savepoint per commit: only the end of the
        # block reaches the disk, so many writers pay for one fsync.
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StorageError(f"writing {self.path} failed: {exc}") from exc
        self._local.batch = True
        try:
            yield
        except BaseException:
            self._local.batch = False
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        self._local.batch = False
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise StorageError(f"writing {self.path} failed: {exc}") from exc

    def _write_in_batch(self, conn: sqlite3.Connection, apply, *args):
        try:
            conn.execute("SAVEPOINT change")
            try:
                result = apply(conn, *args)
            except BaseException:
                conn.execute("ROLLBACK TO change")
                conn.execute("RELEASE change")
                raise
            conn.execute("RELEASE change")
        except sqlite3.Error as exc:
            raise StorageError(f"writing {self.path} failed: {exc}") from exc
        return result

    def _write(self, apply, *args, durable: bool = True):
        conn = self._conn()
        if getattr(self._local, "batch", False):
            return self._write_in_batch(conn, apply, *args)
        try:
            if not durable:
                # History is diagnostic: it survives a crash of the process (the WAL is in
                # the OS's hands at commit) but skips the fsync a secret's change pays for.
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = apply(conn, *args)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StorageError(f"writing {self.path} failed: {exc}") from exc
        finally:
            if not durable:
                conn.execute("PRAGMA synchronous=FULL")
        return result

    def commit(self, change: Change, *, durable: bool = True) -> int:
        return self._write(_apply_change, change, durable=durable)

    def replace_value(self, arn: str, version_id: str, expected: bytes, value: bytes) -> bool:
        cursor = self._write(
            lambda conn: conn.execute(
                "UPDATE secret_values SET value = ? WHERE arn = ? AND version_id = ? AND value = ?",
                (value, arn, version_id, expected),
            )
        )
        return cursor.rowcount == 1

    def append_event(self, arn: str, at: float, event: bytes) -> None:
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO events (arn, at, event) VALUES (?, ?, ?)", (arn, at, event)
            ),
            durable=False,
        )

    def put_setting(self, key: str, value: bytes) -> None:
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
        )

    # -- IAM users ---------------------------------------------------------------------

    def load_user(self, name: str) -> StoredUser | None:
        return users.user(self._one(users.SELECT_USER, (users.fold(name),)))

    def list_users(self) -> list[StoredUser]:
        return [StoredUser(*row) for row in self._all(users.SELECT_USERS, ())]

    def load_access_key(self, access_key_id: str) -> tuple[StoredUser, bytes] | None:
        return users.key(self._one(users.SELECT_KEY, (access_key_id,)))

    def user_keys(self, name: str) -> list[tuple[str, bytes]]:
        return [(row[0], row[1]) for row in self._all(users.SELECT_USER_KEYS, (users.fold(name),))]

    def change_marker(self) -> object | None:
        # data_version moves when another connection commits; total_changes when this one
        # does. Connections are per thread, so the marker names the connection too.
        conn = self._conn()
        row = self._one("PRAGMA data_version", ())
        assert row is not None
        return (id(conn), row[0], conn.total_changes)

    def commit_user(self, change: UserChange) -> int:
        return self._write(
            lambda conn: users.apply_user_change(
                conn, change, placeholder="?", unique_violation=sqlite3.IntegrityError
            )
        )


def _apply_change(conn, change: Change) -> int:
    return apply_change(conn, change, placeholder="?", unique_violation=sqlite3.IntegrityError)
