"""The audit chain in PostgreSQL: one chain for every node sharing the store.

Theory of operation. ``audit_log`` holds each stored line by its sequence number;
``audit_head`` is one row with the chain's last sequence and hash. An append seals the
group onto the head this node last saw and sends one statement: move the head row from
that head to the new one (``UPDATE ... WHERE sequence = old AND hash = old``), and insert
the lines only if that update happened. The update takes the
row's lock, so nodes take turns; a node whose idea of the head was stale (another node
appended) updates no row and inserts nothing, reads the head, seals again and retries. So
the chain stays linear across nodes, and a node alone pays one round trip per group.
Callers group records (``service.audit.AuditTrail``), so a node pays one transaction, and
one lock turn, for many requests; the rows go in as two arrays, and the commit does not wait
for the disk (``synchronous_commit`` off for this session): a crash of PostgreSQL's host
may lose the last fraction of a second of records, as a crash of the machine may lose the
file log's.

The tables are made with ``IF NOT EXISTS`` under an advisory lock when a log is opened: they
are independent of the secrets' schema versions, and nodes starting together make them once.
The log keeps one connection of its own (appends come from one thread); a connection lost
mid-append fails that append, and the next one connects again.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

import psycopg
from psycopg import sql

from secretsd.model.audit_chain import GENESIS, Head, Line, seal
from secretsd.store.audit import AuditLog, AuditWriteError
from secretsd.store.base import StorageError

_TABLES = (
    """CREATE TABLE IF NOT EXISTS audit_log (
        sequence bigint PRIMARY KEY,
        record text NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS audit_head (
        id integer PRIMARY KEY CHECK (id = 1),
        sequence bigint NOT NULL,
        hash text NOT NULL)""",
    f"INSERT INTO audit_head VALUES (1, 0, '{GENESIS}') ON CONFLICT (id) DO NOTHING",
)
# One statement, one transaction (the connection autocommits), one round trip: a node's
# thread waiting on the network may wait as long again for the interpreter lock afterwards,
# so every round trip counts.
_APPEND = """
    WITH moved AS (
        UPDATE audit_head SET sequence = %s, hash = %s
        WHERE id = 1 AND sequence = %s AND hash = %s
        RETURNING 1)
    INSERT INTO audit_log (sequence, record)
    SELECT * FROM unnest(%s::bigint[], %s::text[])
    WHERE EXISTS (SELECT 1 FROM moved)"""
_HEAD = "SELECT sequence, hash FROM audit_head WHERE id = 1"


def _head_of(row: tuple | None) -> Head:
    if row is None:
        raise AuditWriteError("the audit chain's head row is missing")
    return Head(row[0], row[1])


def _sealed(start: Head, records: Sequence[str]) -> tuple[Head, tuple]:
    """The head after ``records``, and the arguments of _APPEND that store them."""
    head = start
    sequences, lines = [], []
    for record in records:
        line, head = seal(record, head)
        sequences.append(head.sequence)
        lines.append(line[:-1].decode())
    return head, (head.sequence, head.hash, start.sequence, start.hash, sequences, lines)


# Any constant shared by every node; distinct from the store's migration lock.
_SETUP_LOCK = 0x5EC2E75D_A0D17


class PostgresAuditLog(AuditLog):
    appends_may_block = True

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "secretsd",
        connect_timeout: int = 10,
        create: bool = True,
    ) -> None:
        """``create`` False is for readers: a schema without the log is an error, not made."""
        self._dsn = dsn
        self._schema = schema
        self._timeout = connect_timeout
        self._mutex = threading.Lock()
        self._conn: psycopg.Connection | None = None
        # The chain head as this node last left it; None to read it again. The connection
        # and head of ``append_async`` are apart: the two paths may run at once, and the
        # head row keeps them in line like two nodes.
        self._head: Head | None = None
        self._async_conn: psycopg.AsyncConnection | None = None
        self._async_head: Head | None = None
        if not create:
            self._require_tables()
            return
        try:
            conn = self._connection()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
                )
                for statement in _TABLES:
                    conn.execute(statement)
        except psycopg.Error as exc:
            self._drop()
            raise StorageError(f"cannot prepare the audit log tables: {exc}") from None

    def _require_tables(self) -> None:
        try:
            found = (
                self._connection()
                .execute("SELECT to_regclass(%s)", (f'"{self._schema}".audit_log',))
                .fetchone()
            )
        except psycopg.Error as exc:
            self._drop()
            raise StorageError(f"cannot read the audit log: {exc}") from None
        if found is None or found[0] is None:
            self._drop()
            raise StorageError(f"the schema {self._schema} holds no audit log")

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=self._timeout,
                application_name=f"secretsd:{self._schema}:audit",
            )
            for statement in self._session_settings():
                conn.execute(statement)
            self._conn = conn
        return self._conn

    def _session_settings(self) -> list[sql.Composed | sql.SQL]:
        return [
            sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)),
            # An append returns once PostgreSQL has the records, before its WAL reaches the
            # disk (within wal_writer_delay), as the file log returns once the kernel has
            # them: waiting for the disk would cost a sync per group of requests.
            sql.SQL("SET synchronous_commit TO off"),
        ]

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def append(self, records: Sequence[str]) -> None:
        with self._mutex:
            try:
                conn = self._connection()
                while not self._try_append(conn, records):
                    # Another node appended since this one last looked: seal again after it.
                    self._head = None
            except psycopg.Error as exc:
                self._drop()
                self._head = None
                raise AuditWriteError(f"cannot write the audit log: {exc}") from None

    def _try_append(self, conn: psycopg.Connection, records: Sequence[str]) -> bool:
        """One statement, so one round trip, when this node's idea of the head is right:
        move the head from it to the new one, and insert the rows only if that move
        happened. False, having stored nothing, when the head had moved."""
        if self._head is None:
            self._head = _head_of(conn.execute(_HEAD).fetchone())
        head, arguments = _sealed(self._head, records)
        if conn.execute(_APPEND, arguments, prepare=True).rowcount != len(records):
            return False
        self._head = head
        return True

    async def append_async(self, records: Sequence[str]) -> None:
        """``append`` on the caller's event loop, on a connection of its own: no thread
        to hand the records to and no wait for the interpreter lock after each round trip.
        Only one ``append_async`` runs at a time (``AuditTrail`` sees to it)."""
        try:
            if self._async_conn is None or self._async_conn.closed:
                self._async_conn = await psycopg.AsyncConnection.connect(
                    self._dsn,
                    autocommit=True,
                    connect_timeout=self._timeout,
                    application_name=f"secretsd:{self._schema}:audit",
                )
                for statement in self._session_settings():
                    await self._async_conn.execute(statement)
            conn = self._async_conn
            while True:
                if self._async_head is None:
                    self._async_head = _head_of(await (await conn.execute(_HEAD)).fetchone())
                head, arguments = _sealed(self._async_head, records)
                cursor = await conn.execute(_APPEND, arguments, prepare=True)
                if cursor.rowcount == len(records):
                    self._async_head = head
                    return
                self._async_head = None
        except psycopg.Error as exc:
            self._async_head = None
            if self._async_conn is not None:
                with contextlib.suppress(psycopg.Error):
                    await self._async_conn.close()
                self._async_conn = None
            raise AuditWriteError(f"cannot write the audit log: {exc}") from None

    def lines(self, after: int = 0) -> Iterator[Line]:
        conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=self._timeout)
        try:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
            # A named cursor streams the table instead of loading it whole.
            with conn.transaction(), conn.cursor(name="audit_lines") as cur:
                cur.itersize = 2000
                cur.execute(
                    "SELECT sequence, record FROM audit_log WHERE sequence > %s ORDER BY sequence",
                    (after,),
                )
                for sequence, record in cur:
                    yield Line(f"audit_log row {sequence}", record)
        finally:
            conn.close()

    def close(self) -> None:
        with self._mutex:
            self._drop()
            if self._async_conn is not None:
                # Its loop may be gone: close the socket without a goodbye.
                with contextlib.suppress(Exception):
                    self._async_conn.pgconn.finish()
                self._async_conn = None
