"""Backend down or slow, connection limits, single-flight: the agent keeps answering."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from secretsd.agent import http as front_module
from tests.support.wait import wait_for

from .fakes import FakeSecretsManager
from .support import TOKEN, InProcess, start_agent, write_config


def test_backend_down_serves_stale_up_to_max_stale_then_errors(server, tmp_path):
    sm = server.client()
    sm.create_secret(Name="db/app", SecretString="kept")
    config = write_config(
        tmp_path, "ttl_seconds = 1\nmax_stale_seconds = 3\nbackend_max_attempts = 1\n"
    )
    agent = start_agent(config, server.env)
    try:
        assert json.loads(agent.get("/v1/db/app")[1])["SecretString"] == "kept"
        server.kill()
        time.sleep(1.2)  # expired: revalidation fails, the stale value is served
        assert json.loads(agent.get("/v1/db/app")[1])["SecretString"] == "kept"
        status, body = agent.get("/v1/never-cached")
        assert (status, body) == (502, b'{"__type":"ConnectionError", "message":"Read Error"}')
        time.sleep(3.5)  # past ttl + max_stale since the last confirmation
        status, body = agent.get("/v1/db/app")
        assert status == 502 and json.loads(body)["__type"] == "ConnectionError"
        assert agent.get("/ping", token=None) == (200, b"healthy")
        assert agent.metric("secretsd_agent_cache_stale_served_total") >= 1
        assert agent.alive()
    finally:
        agent.stop()


class Silent:
    """A TCP endpoint that accepts and never answers: a hung backend."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self) -> None:
        self.sock.close()
        for connection in self.held:
            connection.close()


def test_hung_backend_gives_504_timeout(shared_server, tmp_path):
    silent = Silent()
    try:
        config = write_config(
            tmp_path,
            f'endpoint_url = "{silent.url}"\nbackend_read_timeout_seconds = 0.3\n'
            "backend_max_attempts = 1\n",
        )
        agent = start_agent(config, shared_server.env)  # credential check: transient, passes
        try:
            started = time.monotonic()
            status, body = agent.get("/v1/anything")
            assert (status, body) == (504, b'{"__type":"TimeoutError", "message":"Timeout"}')
            assert time.monotonic() - started < 5
        finally:
            agent.stop()
    finally:
        silent.close()


def test_unreachable_backend_at_start_with_transient_errors_not_ignored(shared_server, tmp_path):
    from .support import run_agent_to_exit

    config = write_config(
        tmp_path,
        'endpoint_url = "http://127.0.0.1:9"\nignore_transient_errors = false\n'
        "backend_max_attempts = 1\n",
    )
    result = run_agent_to_exit(config, dict(shared_server.env, AWS_TOKEN=TOKEN))
    assert result.returncode == 1
    assert "Could not validate the backend credentials" in result.stderr


def test_200_concurrent_misses_make_one_backend_call(agent, sm, name):
    sm.create_secret(Name=name, SecretString="one-call")
    before = agent.metric("secretsd_agent_backend_calls_total", operation="GetSecretValue")
    barrier = threading.Barrier(200)

    def one(_: int) -> int:
        sock = agent.connect()
        try:
            barrier.wait()
            request = f"GET /v1/{name} HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {TOKEN}\r\n\r\n"
            sock.sendall(request.encode())
            data = b""
            while b"one-call" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            return int(data[9:12])
        finally:
            sock.close()

    with ThreadPoolExecutor(200) as pool:
        statuses = list(pool.map(one, range(200)))
    assert statuses == [200] * 200
    after = agent.metric("secretsd_agent_backend_calls_total", operation="GetSecretValue")
    assert after - before == 1
    assert agent.metric("secretsd_agent_cache_coalesced_total") >= 1


LIMITED = (429, b"Connection limit exceeded")


def test_connection_limit_429_and_spare_ping_slots(shared_server, tmp_path):
    agent = start_agent(write_config(tmp_path, "max_conn = 2\n"), shared_server.env)
    shared_server.client().create_secret(Name="agent-test/limit", SecretString="x")
    idle = []
    try:
        assert agent.get("/v1/agent-test/limit")[0] == 200  # cached: the fast path knows it
        idle = [agent.connect() for _ in range(2)]
        # The agent counts a connection once it has accepted it, a moment after connect().
        wait_for(lambda: agent.get("/v1/agent-test/limit") == LIMITED, timeout=10)
        assert agent.get("/v1/x") == (429, b"Connection limit exceeded")
        assert agent.get("/v1/x", token=None) == (429, b"Connection limit exceeded")
        assert agent.get("/ping", token=None) == (200, b"healthy")
        idle += [agent.connect() for _ in range(2)]
        wait_for(lambda: agent.get("/ping", token=None) == LIMITED, timeout=10)
        for sock in idle:
            sock.close()
        idle = []
        # Served again once the agent has seen the closes: the backend says not found.
        wait_for(lambda: agent.get("/v1/x")[0] == 400, timeout=10)
    finally:
        for sock in idle:
            sock.close()
        agent.stop()


def test_connections_are_dropped_after_the_limit(monkeypatch):
    monkeypatch.setattr(front_module, "CONNECTION_SECONDS", 0.5)
    backend = FakeSecretsManager()
    backend.put("db/app", "v")
    with InProcess(backend) as agent:
        sock = agent.connect()
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).endswith(b"healthy")
        started = time.monotonic()
        sock.settimeout(5)
        assert sock.recv(4096) == b""  # closed by the agent, keep-alive or not
        assert 0.2 < time.monotonic() - started < 3
        sock.close()


def test_a_response_in_progress_is_finished_before_the_connection_limit(monkeypatch):
    monkeypatch.setattr(front_module, "CONNECTION_SECONDS", 0.3)
    backend = FakeSecretsManager()
    backend.put("db/app", "slow-but-delivered")
    original = backend.get_secret_value

    async def slow(*args):
        await asyncio.sleep(0.6)
        return await original(*args)

    backend.get_secret_value = slow
    with InProcess(backend) as agent:
        status, body = agent.get("/v1/db/app")
        assert status == 200 and b"slow-but-delivered" in body


def test_shutdown_closes_idle_connections():
    backend = FakeSecretsManager()
    process = InProcess(backend)
    with process as agent:
        sock = agent.connect()
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).endswith(b"healthy")
    sock.settimeout(5)
    assert sock.recv(10) == b""
    sock.close()


@pytest.mark.parametrize("count", [3])
def test_prefetch_fills_the_cache_at_start(count):
    backend = FakeSecretsManager()
    names = [f"pre/{i}" for i in range(count)]
    for item in names:
        backend.put(item, item)
    with InProcess(backend, prefetch=names) as agent:
        wait_for(lambda: backend.count("GetSecretValue") >= count, timeout=5)
        for item in names:
            assert agent.get(f"/v1/{item}")[0] == 200
    assert backend.count("GetSecretValue") == count


class Garbage:
    """An HTTP endpoint that answers every call with 200 and a body that is not JSON."""

    def __init__(self) -> None:
        import http.server

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                body = b"<html>not json"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_malformed_backend_response_gives_502_response_error(shared_server, tmp_path):
    garbage = Garbage()
    try:
        config = write_config(
            tmp_path, f'endpoint_url = "{garbage.url}"\nvalidate_credentials = false\n'
        )
        agent = start_agent(config, shared_server.env)
        try:
            assert agent.get("/v1/anything") == (
                502,
                b'{"__type":"ConnectionError", "message":"Response Error"}',
            )
        finally:
            agent.stop()
    finally:
        garbage.close()


def test_no_credentials_at_all_gives_500_internal_failure(shared_server, tmp_path):
    env = {k: v for k, v in shared_server.env.items() if k != "AWS_PROFILE"}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    config = write_config(tmp_path, "validate_credentials = false\n")
    agent = start_agent(config, env)
    try:
        assert agent.get("/v1/anything") == (500, b'{"__type":"InternalFailure"}')
        assert agent.alive()
    finally:
        agent.stop()
