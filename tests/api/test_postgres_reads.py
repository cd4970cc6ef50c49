"""A server on PostgreSQL: a read that waits on a lock delays only itself."""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time
import uuid

import psycopg
import pytest

from tests.support.server import start_server
from tests.support.wait import wait_for

pytestmark = pytest.mark.postgres
DSN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_server(tmp_path, postgres_available):
    schema = f"reads_{uuid.uuid4().hex[:10]}"
    env = dict(os.environ, SECRETSD_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode())
    args = ("--database-url", DSN, "--database-schema", schema)
    server = start_server(tmp_path / "server", *args, env=env)
    yield server, schema
    server.stop()
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def sessions_waiting_on_a_lock(schema: str) -> int:
    with psycopg.connect(DSN, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = %s AND wait_event_type = 'Lock'",
            (f"secretsd:{schema}",),
        ).fetchone()[0]


def test_a_read_waiting_on_a_locked_table_holds_up_no_other_request(pg_server):
    server, schema = pg_server
    sm = server.client()
    name = f"stall/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="v")
    # Short timeouts: a server that stalls fails this test instead of hanging it.
    quick = server.client(read_timeout=5)
    described: list[dict] = []
    with psycopg.connect(DSN) as locker:
        locker.execute(f'LOCK TABLE "{schema}".secrets IN ACCESS EXCLUSIVE MODE')
        waiting = threading.Thread(
            target=lambda: described.append(server.client().describe_secret(SecretId=name))
        )
        waiting.start()
        wait_for(lambda: sessions_waiting_on_a_lock(schema) == 1)

        slowest = 0.0
        for _ in range(5):
            started = time.perf_counter()
            password = quick.get_random_password(PasswordLength=24)["RandomPassword"]
            slowest = max(slowest, time.perf_counter() - started)
            assert len(password) == 24
        assert slowest < 1.0, f"GetRandomPassword took {slowest * 1000:.0f} ms"
        # The DescribeSecret is still waiting: the lock, not luck, is what was tested.
        assert waiting.is_alive()
        assert described == []
        locker.rollback()  # releases the lock
    waiting.join(timeout=30)
    assert [d["Name"] for d in described] == [name]
