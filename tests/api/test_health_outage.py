"""/health says 503 while the store is out of reach or the master key is gone, and 200 again
once the store is back."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
import uuid

import psycopg
import pytest

from tests.support.metrics import http
from tests.support.server import start_server
from tests.support.tcp_proxy import TcpProxy
from tests.support.wait import wait_for

DSN = "postgresql://postgres@127.0.0.1:{port}/test"
KEYS = [sys.executable, "-m", "secretsd.cli", "keys"]


def health(server) -> tuple[int, dict]:
    answer = http(server.endpoint_url, "/health")
    return answer.status, answer.json()


@pytest.mark.postgres
def test_unreachable_postgres_store_is_503_until_it_is_back(tmp_path, postgres_available) -> None:
    schema = f"health_{uuid.uuid4().hex[:10]}"
    proxy = TcpProxy(("127.0.0.1", 5432)).start()
    env = dict(os.environ, SECRETSD_MASTER_KEY=base64.b64encode(secrets.token_bytes(32)).decode())
    url = DSN.format(port=proxy.port)
    server = start_server(
        tmp_path / "data", "--database-url", url, "--database-schema", schema, env=env
    )
    try:
        assert health(server)[0] == 200
        proxy.stop()
        _, body = wait_for(lambda: (found := health(server))[0] == 503 and found)
        assert body["status"] == "unavailable"
        assert body["reason"] in (
            "the store does not answer",
            "the store did not answer within 2 s",
        )
        # The reason is general: no address, no driver message, for an unsigned caller.
        assert str(proxy.port) not in body["reason"]
        proxy.start()
        wait_for(lambda: health(server)[0] == 200, timeout=60)
    finally:
        proxy.stop()
        server.stop()
        with psycopg.connect(DSN.format(port=5432), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_server_left_with_a_retired_master_key_is_503(tmp_path) -> None:
    def key_command(name: str) -> str:
        path = tmp_path / name
        path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
        return f"cat {path}"

    old, new = key_command("old.b64"), key_command("new.b64")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECRETSD_MASTER_KEY")}
    # An empty store: nothing the server reads meanwhile makes it learn the new key early.
    server = start_server(tmp_path / "data", "--master-key-command", old, env=env)
    try:
        assert health(server)[0] == 200
        data = ["--data-dir", str(server.data_dir)]
        for step in (
            ["rotate-master", *data, "--master-key-command", old, "--new-key-command", new],
            ["retire-old-key", *data, "--master-key-command", new],
        ):
            done = subprocess.run([*KEYS, *step], capture_output=True, text=True, env=env)
            assert done.returncode == 0, done.stderr
        status, body = health(server)
        assert (status, body["reason"]) == (503, "the master key is not available")
        assert "restart it with the new master key" in server.log_text()
    finally:
        server.stop()
