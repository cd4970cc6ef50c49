"""Where ours goes further, over real HTTP against a live server: rotation awareness,
refresh-ahead, refreshNow that reads your write, the Unix socket and the loud non-loopback bind."""

from __future__ import annotations

import json
import socket
import stat
import time
from concurrent.futures import ThreadPoolExecutor

from tests.support.wait import wait_for

from .fakes import FakeSecretsManager
from .support import InProcess, start_agent, write_config


def value_of(agent, target: str) -> str:
    status, body = agent.get(target)
    assert status == 200, body
    return json.loads(body)["SecretString"]


def test_rotation_in_progress_shortens_revalidation(shared_server, tmp_path, sm, name):
    config = write_config(tmp_path, "ttl_seconds = 2\npending_revalidate_seconds = 0.5\n")
    agent = start_agent(config, shared_server.env)
    try:
        sm.create_secret(Name=name, SecretString="old")
        assert value_of(agent, f"/v1/{name}") == "old"
        pending = sm.put_secret_value(
            SecretId=name, SecretString="new", VersionStages=["AWSPENDING"]
        )["VersionId"]
        time.sleep(2.2)  # expired: the revalidation sees AWSPENDING
        revalidated_by = time.monotonic()
        assert value_of(agent, f"/v1/{name}") == "old"
        current = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
        old_version = next(v for v, stages in current.items() if "AWSCURRENT" in stages)
        sm.update_secret_version_stage(
            SecretId=name,
            VersionStage="AWSCURRENT",
            MoveToVersionId=pending,
            RemoveFromVersionId=old_version,
        )
        wait_for(lambda: value_of(agent, f"/v1/{name}") == "new", timeout=10)
        # Seen sooner than the 2 s TTL allows: AWSPENDING shortened the revalidation.
        assert time.monotonic() - revalidated_by < 2
    finally:
        agent.stop()


def test_refresh_ahead_keeps_a_hot_key_from_waiting(shared_server, tmp_path, sm, name):
    # Lifetimes of 4 s leave a loaded machine seconds of slack on each side of the instants
    # the test aims at: the entry is stored between ``first`` and ``fetched``.
    config = write_config(tmp_path, "ttl_seconds = 4\nrefresh_ahead_fraction = 0.5\n")
    agent = start_agent(config, shared_server.env)
    try:
        sm.create_secret(Name=name, SecretString="hot")
        first = time.monotonic()
        assert value_of(agent, f"/v1/{name}") == "hot"
        fetched = time.monotonic()
        time.sleep(2.2)  # past refresh_at (stored + 2), before fresh_until (stored + 4)
        assert time.monotonic() < first + 4, "the machine is too slow for this test's timing"
        assert value_of(agent, f"/v1/{name}") == "hot"  # a hit; starts the background check
        assert agent.metric("secretsd_agent_cache_refresh_ahead_total") == 1
        deadline = time.monotonic() + 10
        while agent.metric("secretsd_agent_cache_confirmed_total") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        describes = agent.metric("secretsd_agent_backend_calls_total", operation="DescribeSecret")
        time.sleep(max(0.0, fetched + 4.3 - time.monotonic()))  # the first lifetime is over
        hits = agent.metric("secretsd_agent_cache_hits_total")
        assert value_of(agent, f"/v1/{name}") == "hot"
        assert agent.metric("secretsd_agent_cache_hits_total") == hits + 1  # a hit, no wait
        after = agent.metric("secretsd_agent_backend_calls_total", operation="DescribeSecret")
        assert after == describes
    finally:
        agent.stop()


def test_refresh_now_reads_every_write_at_once(agent, sm, name):
    sm.create_secret(Name=name, SecretString="v0")
    assert value_of(agent, f"/v1/{name}") == "v0"
    for round_ in range(1, 6):
        sm.put_secret_value(SecretId=name, SecretString=f"v{round_}")
        assert value_of(agent, f"/v1/{name}") == f"v{round_ - 1}"  # cached
        assert value_of(agent, f"/v1/{name}?refreshNow=true") == f"v{round_}"
        assert value_of(agent, f"/v1/{name}") == f"v{round_}"


def test_concurrent_refreshes_each_make_or_share_a_call(agent, sm, name):
    # That they share one is pinned in test_cache.py with a controlled backend; over HTTP
    # how many overlap is timing, so here: every answer, and every request accounted for.
    sm.create_secret(Name=name, SecretString="x")
    operation = {"operation": "GetSecretValue"}
    calls_before = agent.metric("secretsd_agent_backend_calls_total", **operation)
    coalesced_before = agent.metric("secretsd_agent_cache_coalesced_total")
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(lambda _: value_of(agent, f"/v1/{name}?refreshNow=true"), range(64))
        )
    assert answers == ["x"] * 64
    calls = agent.metric("secretsd_agent_backend_calls_total", **operation) - calls_before
    coalesced = agent.metric("secretsd_agent_cache_coalesced_total") - coalesced_before
    # Every request either made a call or shared one that started after it arrived.
    assert calls + coalesced == 64


def test_unix_socket_listener(tmp_path):
    path = tmp_path / "agent.sock"
    backend = FakeSecretsManager()
    backend.put("db/app", "over-unix")
    with InProcess(backend, unix_socket=str(path)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
            sock.sendall(
                b"GET /v1/db/app HTTP/1.1\r\nHost: x\r\n"
                b"X-Aws-Parameters-Secrets-Token: test-token-0123456789\r\n\r\n"
            )
            data = b""
            while b"over-unix" not in data:
                chunk = sock.recv(4096)
                assert chunk
                data += chunk
        assert data.startswith(b"HTTP/1.1 200")
    assert not path.exists()


def test_non_loopback_address_is_logged_loudly(shared_server, tmp_path):
    config = write_config(tmp_path, 'http_address = "0.0.0.0"\n')
    agent = start_agent(config, shared_server.env)
    try:
        assert agent.url.startswith("http://0.0.0.0:")
        assert "not loopback" in agent.log_text()
    finally:
        agent.stop()


def test_custom_path_prefix(shared_server, tmp_path, sm, name):
    sm.create_secret(Name=name, SecretString="prefixed")
    agent = start_agent(write_config(tmp_path, 'path_prefix = "/secrets/"\n'), shared_server.env)
    try:
        assert value_of(agent, f"/secrets/{name}") == "prefixed"
        assert agent.get(f"/v1/{name}") == (404, b"Not found")
        assert agent.get("/secrets/") == (400, b"missing secret ID")
        assert value_of(agent, f"/secretsmanager/get?secretId={name}") == "prefixed"
    finally:
        agent.stop()


def test_unix_socket_path_taken_by_a_file_is_a_clean_error(shared_server, tmp_path):
    from .support import TOKEN, run_agent_to_exit

    taken = tmp_path / "taken"
    taken.write_text("not a socket")
    config = write_config(tmp_path, f'unix_socket = "{taken}"\n')
    result = run_agent_to_exit(config, dict(shared_server.env, AWS_TOKEN=TOKEN))
    assert result.returncode == 1
    assert f"Could not bind to {taken}" in result.stderr
    assert "Traceback" not in result.stderr
    assert taken.read_text() == "not a socket"
