"""The shared store: PostgreSQL, for several server nodes over one database.

Theory of operation. Tables live in their own schema (``secretsd`` unless told otherwise),
so one database can hold several independent stores, and tests use a fresh schema each.
Each thread gets its own autocommit connection whose ``search_path`` is that schema;
a commit is one explicit transaction. Optimistic concurrency is the ``WHERE revision = %s``
of the update: under READ COMMITTED, a second writer on the same row waits for the first,
re-reads the row, finds the revision moved and updates nothing, which is a Conflict.

Schema versions are kept in ``schema_version``. Opening takes a transaction-scoped advisory
lock, so nodes starting together migrate once, and refuses a schema newer than this code.
A connection the server dropped is replaced; a read on it is retried once, a write is not
(its outcome is unknown, so the caller has to re-read).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import sql

from secretsd.store import index
from secretsd.store.base import Change, ListQuery, SortKey, Storage, StorageError, StoredSecret
from secretsd.store.changes import apply_change, runners

# A step is a statement, or a function for what SQL alone cannot do (decoding documents).
Step = str | Callable[[psycopg.Connection], None]
MIGRATIONS: tuple[tuple[Step, ...], ...] = (
    (
        """CREATE TABLE secrets (
            arn text PRIMARY KEY,
            name text COLLATE "C" NOT NULL UNIQUE,
            revision bigint NOT NULL,
            document bytea NOT NULL)""",
        """CREATE TABLE secret_values (
            arn text NOT NULL,
            version_id text NOT NULL,
            value bytea NOT NULL,
            PRIMARY KEY (arn, version_id))""",
        """CREATE TABLE events (
            id bigserial PRIMARY KEY,
            arn text NOT NULL,
            at double precision NOT NULL,
            event bytea NOT NULL)""",
        "CREATE INDEX events_by_arn ON events (arn, at, id)",
        "CREATE TABLE settings (key text PRIMARY KEY, value bytea NOT NULL)",
    ),
    (
        # "C" collation: ties and names sort by code point, as Python and SQLite sort them.
        """CREATE TABLE secret_index (
            arn text COLLATE "C" PRIMARY KEY,
            name text COLLATE "C" NOT NULL,
            created double precision NOT NULL,
            last_changed double precision NOT NULL,
            last_accessed double precision NOT NULL,
            deleted_date double precision,
            deletion_date double precision,
            rotation_attention double precision)""",
        "CREATE INDEX secret_index_name ON secret_index (name, arn)",
        "CREATE INDEX secret_index_created ON secret_index (created, arn)",
        "CREATE INDEX secret_index_last_changed ON secret_index (last_changed, arn)",
        "CREATE INDEX secret_index_last_accessed ON secret_index (last_accessed, arn)",
        "CREATE INDEX secret_index_rotation ON secret_index (rotation_attention)",
        """CREATE TABLE secret_attributes (
            arn text COLLATE "C" NOT NULL,
            kind text NOT NULL,
            value text COLLATE "C" NOT NULL,
            folded text COLLATE "C" NOT NULL)""",
        "CREATE INDEX secret_attributes_by_arn ON secret_attributes (arn, kind)",
        lambda conn: index.rebuild(*runners(conn, "%s")),
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_PAGE = 256
_SELECT = "SELECT arn, name, revision, document FROM secrets"


class PostgresStorage(Storage):
    """A Storage in the PostgreSQL database ``dsn``, tables in schema ``schema``."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "secretsd",
        connect_timeout: int = 10,
        create: bool = True,
    ) -> None:
        """``create=False`` refuses a database without this store's schema instead of
        making it (for commands that only read)."""
        if not _SCHEMA_NAME.fullmatch(schema):
            raise StorageError(
                f"invalid schema name {schema!r}: use lower-case letters, digits and _"
            )
        self.schema = schema
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._local = threading.local()
        # Each connection with the thread it serves, so that those of finished threads close.
        self._connections: dict[psycopg.Connection, threading.Thread] = {}
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._migrate(create)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStorage({self.location!r})"

    @property
    def location(self) -> str:
        """Where the store is, for messages: host, database and schema, never a password."""
        try:
            info = psycopg.conninfo.conninfo_to_dict(self._dsn)
        except psycopg.Error:
            info = {}
        host = info.get("host", "localhost")
        port = info.get("port", "5432")
        return f"postgresql://{host}:{port}/{info.get('dbname', '')} schema {self.schema}"

    # -- connections -------------------------------------------------------------------

    def _conn(self) -> psycopg.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed:
            return conn
        with self._lock:
            if self._closed:
                raise StorageError(f"the store {self.location} is closed")
        conn = self._connect()
        try:
            conn.execute("SELECT set_config('search_path', %s, false)", (self.schema,))
        except psycopg.Error as exc:
            conn.close()
            raise StorageError(f"cannot connect to {self.location}: {exc}") from exc
        with self._lock:
            if self._closed:
                conn.close()
                raise StorageError(f"the store {self.location} is closed")
            self._connections[conn] = threading.current_thread()
            orphans = [c for c, t in self._connections.items() if not t.is_alive()]
            for orphan in orphans:
                del self._connections[orphan]
        for orphan in orphans:
            orphan.close()
        self._local.conn = conn
        return conn

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(
                self._dsn, autocommit=True, connect_timeout=self._connect_timeout
            )
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to {self.location}: {exc}") from exc

    def _discard(self, conn: psycopg.Connection) -> None:
        with self._lock:
            self._connections.pop(conn, None)
        conn.close()
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, {}
        for conn in connections:
            conn.close()

    @contextlib.contextmanager
    def claim_lock(self, name: str) -> Iterator[bool]:
        """Try, without waiting, to take the cluster-wide lock ``name`` of this store.

        Yields True when this node now holds it (until the block exits), False when another
        session holds it. The lock lives in a session of its own, so a node that dies drops
        it with its connection.
        """
        conn = self._connect()
        try:
            row = conn.execute(
                "SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s))", (self.schema, name)
            ).fetchone()
            assert row is not None  # a SELECT without FROM returns one row
            held = row[0]
            yield held
        except psycopg.Error as exc:
            raise StorageError(f"locking {name} in {self.location} failed: {exc}") from exc
        finally:
            # Ending the session releases every advisory lock it took.
            conn.close()

    # -- schema ------------------------------------------------------------------------

    def _migrate(self, create: bool = True) -> None:
        def apply(conn: psycopg.Connection) -> None:
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"secretsd-migrate {self.schema}",)
            )
            if not create:
                row = conn.execute(
                    "SELECT to_regclass(%s) IS NOT NULL", (f"{self.schema}.schema_version",)
                ).fetchone()
                exists = row is not None and row[0]
                if not exists:
                    raise StorageError(f"there is no secretsd store at {self.location}")
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (0)")
                version = 0
            else:
                version = row[0]
            known = len(MIGRATIONS)
            if version > known:
                raise StorageError(
                    f"{self.location} has schema version {version}, newer than the "
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
                conn.execute("UPDATE schema_version SET version = %s", (known,))

        self._write(apply)

    # -- plumbing ----------------------------------------------------------------------

    def _read(self, query: str, params: tuple, fetch: Callable[[psycopg.Cursor], Any]) -> Any:
        for attempt in (1, 2):
            conn = self._conn()
            try:
                return fetch(conn.execute(query, params))
            except psycopg.OperationalError as exc:
                if conn.broken:
                    self._discard(conn)
                    if attempt == 1:
                        continue
                raise StorageError(f"reading {self.location} failed: {exc}") from exc
            except psycopg.Error as exc:
                raise StorageError(f"reading {self.location} failed: {exc}") from exc
        raise AssertionError("unreachable")

    def _write(self, apply: Callable[..., Any], *args: Any) -> Any:
        conn = self._conn()
        try:
            with conn.transaction():
                return apply(conn, *args)
        except psycopg.Error as exc:
            if conn.broken:
                self._discard(conn)
            raise StorageError(f"writing {self.location} failed: {exc}") from exc

    # -- reads -------------------------------------------------------------------------

    def load_by_name(self, name: str) -> StoredSecret | None:
        row = self._read(f"{_SELECT} WHERE name = %s", (name,), psycopg.Cursor.fetchone)
        return None if row is None else StoredSecret(*row)

    def load_by_arn(self, arn: str) -> StoredSecret | None:
        row = self._read(f"{_SELECT} WHERE arn = %s", (arn,), psycopg.Cursor.fetchone)
        return None if row is None else StoredSecret(*row)

    def iter_secrets(self) -> Iterator[StoredSecret]:
        # Pages keyed by name; the column's "C" collation orders by code point, as SQLite does.
        after = None
        while True:
            if after is None:
                rows = self._read(
                    f"{_SELECT} ORDER BY name LIMIT %s",
                    (_PAGE,),
                    psycopg.Cursor.fetchall,
                )
            else:
                rows = self._read(
                    f"{_SELECT} WHERE name > %s ORDER BY name LIMIT %s",
                    (after, _PAGE),
                    psycopg.Cursor.fetchall,
                )
            for row in rows:
                yield StoredSecret(*row)
            if len(rows) < _PAGE:
                return
            after = rows[-1][1]

    def list_page(self, query: ListQuery) -> tuple[list[StoredSecret], SortKey | None]:
        statement, args = index.page_statement(query)
        rows = self._read(statement.replace("?", "%s"), tuple(args), psycopg.Cursor.fetchall)
        page, after = index.split_page(rows, query.limit)
        return [StoredSecret(*row) for row in page], after

    def rotation_candidates(self, now: float) -> list[StoredSecret]:
        rows = self._read(
            index.CANDIDATES_STATEMENT.replace("?", "%s"), (now,), psycopg.Cursor.fetchall
        )
        return [StoredSecret(*row) for row in rows]

    def read_value(self, arn: str, version_id: str) -> bytes | None:
        row = self._read(
            "SELECT value FROM secret_values WHERE arn = %s AND version_id = %s",
            (arn, version_id),
            psycopg.Cursor.fetchone,
        )
        return None if row is None else row[0]

    def iter_values(self) -> Iterator[tuple[str, str, bytes]]:
        # Keyset pages; "C"-collated comparisons are not needed: any total order will do.
        after: tuple[str, str] = ("", "")
        while True:
            rows = self._read(
                "SELECT arn, version_id, value FROM secret_values "
                "WHERE (arn, version_id) > (%s, %s) ORDER BY arn, version_id LIMIT %s",
                (*after, _PAGE),
                psycopg.Cursor.fetchall,
            )
            for arn, version_id, value in rows:
                yield arn, version_id, bytes(value)
            if len(rows) < _PAGE:
                return
            after = (rows[-1][0], rows[-1][1])

    def read_events(self, arn: str, limit: int = 100) -> list[tuple[float, bytes]]:
        rows = self._read(
            "SELECT at, event FROM events WHERE arn = %s ORDER BY at DESC, id DESC LIMIT %s",
            (arn, limit),
            psycopg.Cursor.fetchall,
        )
        return [(at, event) for at, event in reversed(rows)]

    def get_setting(self, key: str) -> bytes | None:
        row = self._read(
            "SELECT value FROM settings WHERE key = %s", (key,), psycopg.Cursor.fetchone
        )
        return None if row is None else row[0]

    # -- writes ------------------------------------------------------------------------

    def commit(self, change: Change, *, durable: bool = True) -> int:
        if durable:
            return self._write(_apply_change, change)
        return self._write(_apply_change_lazily, change)

    def replace_value(self, arn: str, version_id: str, expected: bytes, value: bytes) -> bool:
        cursor = self._write(
            lambda conn: conn.execute(
                "UPDATE secret_values SET value = %s "
                "WHERE arn = %s AND version_id = %s AND value = %s",
                (value, arn, version_id, expected),
            )
        )
        return cursor.rowcount == 1

    def append_event(self, arn: str, at: float, event: bytes) -> None:
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO events (arn, at, event) VALUES (%s, %s, %s)", (arn, at, event)
            )
        )

    def put_setting(self, key: str, value: bytes) -> None:
        self._write(
            lambda conn: conn.execute(
                "INSERT INTO settings (key, value) VALUES (%s, %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
        )


def _apply_change_lazily(conn, change: Change) -> int:
    # This transaction alone commits without waiting for the WAL flush.
    conn.execute("SET LOCAL synchronous_commit TO OFF")
    return _apply_change(conn, change)


def _apply_change(conn, change: Change) -> int:
    return apply_change(
        conn, change, placeholder="%s", unique_violation=psycopg.errors.UniqueViolation
    )
