"""The audit chain in PostgreSQL: one chain for every node sharing the store.

Theory of operation. ``audit_log`` holds each stored line by its sequence number;
``audit_head`` is one row with the chain's last sequence and hash. An append is one
transaction: lock the head row (``SELECT ... FOR UPDATE``), seal the group onto it, insert
the lines, move the head, commit. A second node appending meanwhile waits on the row lock
and then seals after the first node's records, so the chain stays linear across nodes.
Callers group records (``service.audit.AuditTrail``), so a node pays one transaction, and
one lock turn, for many requests.

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
# Any constant shared by every node; distinct from the store's migration lock.
_SETUP_LOCK = 0x5EC2E75D_A0D17


class PostgresAuditLog(AuditLog):
    appends_may_block = True

    def __init__(self, dsn: str, *, schema: str = "secretsd", connect_timeout: int = 10) -> None:
        self._dsn = dsn
        self._schema = schema
        self._timeout = connect_timeout
        self._mutex = threading.Lock()
        self._conn: psycopg.Connection | None = None
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

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=self._timeout,
                application_name=f"secretsd:{self._schema}:audit",
            )
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
            self._conn = conn
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def append(self, records: Sequence[str]) -> None:
        with self._mutex:
            try:
                conn = self._connection()
                with conn.transaction(), conn.cursor() as cur:
                    cur.execute("SELECT sequence, hash FROM audit_head WHERE id = 1 FOR UPDATE")
                    row = cur.fetchone()
                    if row is None:
                        raise AuditWriteError("the audit chain's head row is missing")
                    head = Head(row[0], row[1])
                    rows = []
                    for record in records:
                        line, head = seal(record, head)
                        rows.append((head.sequence, line.decode().rstrip("\n")))
                    cur.executemany("INSERT INTO audit_log VALUES (%s, %s)", rows)
                    cur.execute(
                        "UPDATE audit_head SET sequence = %s, hash = %s WHERE id = 1",
                        (head.sequence, head.hash),
                    )
            except psycopg.Error as exc:
                self._drop()
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
