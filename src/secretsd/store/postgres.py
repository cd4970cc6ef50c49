"""The shared store: PostgreSQL, for several server nodes over one database.

Theory of operation. Tables live in their own schema (``secretsd`` unless told otherwise),
so one database can hold several independent stores, and tests use a fresh schema each.
Calls borrow an autocommit connection from a pool (``pool_size`` at most, ``search_path``
set to the schema) for the length of one statement or one transaction, so any number of
threads share a bounded set of sessions; a commit is one explicit transaction. Optimistic
concurrency is the ``WHERE revision = %s`` of the update: under READ COMMITTED, a second
writer on the same row waits for the first, re-reads the row, finds the revision moved and
updates nothing, which is a Conflict. A ``batch`` keeps one connection for its thread and
one transaction open for the block, each commit inside being a savepoint.

A read can wait: on a lock another session holds, on the network. ``reads_may_block`` says
so, and the server runs reads on threads of their own instead of its event loop.

Schema versions are kept in ``schema_version``. Opening takes a transaction-scoped advisory
lock, so nodes starting together migrate once, and refuses a schema newer than this code.
A connection the server dropped is discarded by the pool; a read on it is retried, a write
is not (its outcome is unknown, so the caller has to re-read). Sessions carry the
application name ``secretsd:<schema>``, so an operator can find them in pg_stat_activity.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

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
    # The ``all`` filter matches word prefixes, from "word" rows: index every secret again.
    (lambda conn: index.rebuild(*runners(conn, "%s")),),
    users.schema("bytea"),
)
SCHEMA_VERSION = len(MIGRATIONS)
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_PAGE = 256
_SELECT = "SELECT arn, name, revision, document FROM secrets"
DEFAULT_POOL_SIZE = 10
# How long a call waits for a free connection of the pool before it fails.
_POOL_WAIT_S = 30.0


class PostgresStorage(Storage):
    """A Storage in the PostgreSQL database ``dsn``, tables in schema ``schema``."""

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "secretsd",
        connect_timeout: int = 10,
        pool_size: int = DEFAULT_POOL_SIZE,
        create: bool = True,
    ) -> None:
        """``create=False`` refuses a database without this store's schema instead of
        making it (for commands that only read)."""
        if not _SCHEMA_NAME.fullmatch(schema):
            raise StorageError(
                f"invalid schema name {schema!r}: use lower-case letters, digits and _"
            )
        if pool_size < 1:
            raise StorageError(f"the pool needs at least one connection, not {pool_size}")
        self.schema = schema
        self.pool_size = pool_size
        self._dsn = dsn
        self._connect_options: dict[str, Any] = {
            "autocommit": True,
            "connect_timeout": connect_timeout,
            "application_name": f"secretsd:{schema}",
        }
        # The connection of the batch this thread is in, if any.
        self._local = threading.local()
        # Migrating on a connection of its own reports a failure to connect as it is, where
        # a pool would only time out.
        self._migrate(create)
        self._pool = ConnectionPool(
            dsn,
            kwargs=self._connect_options,
            min_size=min(2, pool_size),
            max_size=pool_size,
            configure=self._configure,
            timeout=_POOL_WAIT_S,
            name=f"secretsd:{schema}",
            open=False,
        )
        self._pool.open()

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

    @property
    def reads_may_block(self) -> bool:
        return True

    # -- connections -------------------------------------------------------------------

    def _configure(self, conn: psycopg.Connection) -> None:
        conn.execute("SELECT set_config('search_path', %s, false)", (self.schema,))

    def _connect(self) -> psycopg.Connection:
        """A session outside the pool, for what outlives one call (a claim, the migration)."""
        try:
            conn = psycopg.connect(self._dsn, **self._connect_options)
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to {self.location}: {exc}") from exc
        try:
            self._configure(conn)
        except psycopg.Error as exc:
            conn.close()
            raise StorageError(f"cannot connect to {self.location}: {exc}") from exc
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        conn = getattr(self._local, "batch", None)
        if conn is not None:
            yield conn
            return
        if self._pool.closed:
            raise StorageError(f"the store {self.location} is closed")
        # A connection that broke is not put back: the pool opens another one instead.
        with self._pool.connection() as conn:
            yield conn

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()

    @contextlib.contextmanager
    def claim_lock(self, name: str) -> Iterator[bool]:
        # The lock lives in a session of its own, so a node that dies drops it with its
        # connection, and a rotation holding it for minutes keeps no pool connection busy.
        conn = self._connect()
        try:
            row = conn.execute(
                "SELECT pg_try_advisory_lock(hashtext(%s), hashtext(%s))", (self.schema, name)
            ).fetchone()
            assert row is not None  # a SELECT without FROM returns one row
            held = row[0]
        except psycopg.Error as exc:
            conn.close()
            raise StorageError(f"locking {name} in {self.location} failed: {exc}") from exc
        try:
            yield held
        finally:
            try:
                if held:
                    # Released here, not left to the session's end: the server ends a
                    # closed session in its own time, and until then another node's claim
                    # would still find the lock taken.
                    conn.execute(
                        "SELECT pg_advisory_unlock(hashtext(%s), hashtext(%s))",
                        (self.schema, name),
                    )
            except psycopg.Error:
                pass  # a broken session drops its locks as it ends
            finally:
                conn.close()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        if getattr(self._local, "batch", None) is not None:
            raise StorageError("batches do not nest")
        try:
            with self._connection() as conn, conn.transaction():
                self._local.batch = conn
                try:
                    yield
                finally:
                    self._local.batch = None
        except psycopg.Error as exc:
            raise StorageError(f"writing {self.location} failed: {exc}") from exc

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

        conn = self._connect()
        try:
            with conn.transaction():
                apply(conn)
        except psycopg.Error as exc:
            raise StorageError(f"migrating {self.location} failed: {exc}") from exc
        finally:
            conn.close()

    # -- plumbing ----------------------------------------------------------------------

    def _read(self, query: str, params: tuple, fetch: Callable[[psycopg.Cursor], Any]) -> Any:
        # A server restart breaks every pooled session at once: a read tries each in turn.
        for attempt in range(self.pool_size + 1):
            conn = None
            try:
                with self._connection() as conn:
                    return fetch(conn.execute(query, params))
            except psycopg.OperationalError as exc:
                retry = conn is not None and conn.broken and attempt < self.pool_size
                if retry and getattr(self._local, "batch", None) is None:
                    continue
                raise StorageError(f"reading {self.location} failed: {exc}") from exc
            except psycopg.Error as exc:
                raise StorageError(f"reading {self.location} failed: {exc}") from exc
        raise AssertionError("unreachable")

    def _write(self, apply: Callable[..., Any], *args: Any) -> Any:
        try:
            with self._connection() as conn, conn.transaction():
                return apply(conn, *args)
        except psycopg.Error as exc:
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
        # Inside a batch the change is a savepoint: SET LOCAL would make the whole batch lazy.
        if durable or getattr(self._local, "batch", None) is not None:
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

    # -- IAM users ---------------------------------------------------------------------

    def load_user(self, name: str) -> StoredUser | None:
        row = self._read(
            users.SELECT_USER.replace("?", "%s"), (users.fold(name),), psycopg.Cursor.fetchone
        )
        return users.user(row)

    def list_users(self) -> list[StoredUser]:
        rows = self._read(users.SELECT_USERS, (), psycopg.Cursor.fetchall)
        return [StoredUser(row[0], row[1], bytes(row[2])) for row in rows]

    def load_access_key(self, access_key_id: str) -> tuple[StoredUser, bytes] | None:
        row = self._read(
            users.SELECT_KEY.replace("?", "%s"), (access_key_id,), psycopg.Cursor.fetchone
        )
        return users.key(row)

    def user_keys(self, name: str) -> list[tuple[str, bytes]]:
        rows = self._read(
            users.SELECT_USER_KEYS.replace("?", "%s"), (users.fold(name),), psycopg.Cursor.fetchall
        )
        return [(row[0], bytes(row[1])) for row in rows]

    def change_marker(self) -> object | None:
        # Other nodes commit without telling this one: every read must go to the database.
        return None

    def commit_user(self, change: UserChange) -> int:
        return self._write(
            lambda conn: users.apply_user_change(
                conn,
                change,
                placeholder="%s",
                unique_violation=psycopg.errors.UniqueViolation,
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
