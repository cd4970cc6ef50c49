"""The HTTP surface, row by row, over real HTTP: live agent, live secretsd server."""

from __future__ import annotations

import base64
import json
import socket
import time

import pytest

from .support import TOKEN, TOKEN_HEADER


def created(sm, name: str, value: str = '{"username":"app","password":"p@ss"}') -> dict:
    sm.create_secret(Name=name, SecretString=value)
    return sm.get_secret_value(SecretId=name)


def expected_body(response: dict) -> bytes:
    date = response["CreatedDate"].timestamp()
    date_text = str(int(date)) if date.is_integer() else repr(date)
    body = {"ARN": response["ARN"], "Name": response["Name"], "VersionId": response["VersionId"]}
    if "SecretString" in response:
        body["SecretString"] = response["SecretString"]
    if "SecretBinary" in response:
        body["SecretBinary"] = base64.b64encode(response["SecretBinary"]).decode()
    body["VersionStages"] = response["VersionStages"]
    body["CreatedDate"] = date_text
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


# -- health ---------------------------------------------------------------------------------


def test_ping_needs_no_token(agent):
    assert agent.get("/ping", token=None) == (200, b"healthy")


def test_health_is_served_like_ping(agent):
    assert agent.get("/health", token=None) == (200, b"healthy")


def test_ping_ignores_forwarded_header(agent):
    assert agent.get("/ping", token=None, headers={"X-Forwarded-For": "1.2.3.4"}) == (
        200,
        b"healthy",
    )


def test_post_ping_is_not_allowed(agent):
    assert agent.get("/ping", method="POST", token=None) == (405, b"Not allowed")


# -- order of checks ------------------------------------------------------------------------


def test_forwarded_header_is_refused_before_the_token(agent, sm, name):
    created(sm, name)
    url = f"/secretsmanager/get?secretId={name}"
    assert agent.get(url, headers={"X-Forwarded-For": "10.0.0.1"}) == (400, b"Forwarded")
    assert agent.get(url, token=None, headers={"X-Forwarded-For": "10.0.0.1"}) == (
        400,
        b"Forwarded",
    )


def test_missing_or_wrong_token(agent, sm, name):
    created(sm, name)
    url = f"/secretsmanager/get?secretId={name}"
    assert agent.get(url, token=None) == (403, b"Bad Token")
    assert agent.get(url, token=TOKEN + "x") == (403, b"Bad Token")
    assert agent.get(url, token=TOKEN[:-1]) == (403, b"Bad Token")
    assert agent.get(url, token="") == (403, b"Bad Token")


def test_token_checked_before_method(agent):
    assert agent.get("/secretsmanager/get?secretId=x", method="POST", token=None) == (
        403,
        b"Bad Token",
    )
    assert agent.get("/nowhere", method="DELETE", token=None) == (403, b"Bad Token")


def test_method_checked_before_route(agent):
    assert agent.get("/secretsmanager/get?secretId=x", method="POST") == (405, b"Not allowed")
    assert agent.get("/nowhere", method="PUT") == (405, b"Not allowed")


def test_unknown_route(agent):
    assert agent.get("/nowhere") == (404, b"Not found")
    assert agent.get("/secretsmanager/get/extra?secretId=x") == (404, b"Not found")


def test_other_token_header_and_any_case(agent, sm, name):
    created(sm, name)
    url = f"/secretsmanager/get?secretId={name}"
    status, _ = agent.get(url, token=None, headers={"X-Vault-Token": TOKEN})
    assert status == 200
    status, _ = agent.get(url, token=None, headers={TOKEN_HEADER.lower(): TOKEN})
    assert status == 200


# -- routes and bodies ----------------------------------------------------------------------


def test_query_route_body_matches_get_secret_value(agent, sm, name):
    response = created(sm, name)
    status, body, headers = agent.request(f"/secretsmanager/get?secretId={name}")
    assert status == 200
    assert body == expected_body(response)
    assert list(json.loads(body)) == [
        "ARN",
        "Name",
        "VersionId",
        "SecretString",
        "VersionStages",
        "CreatedDate",
    ]
    assert isinstance(json.loads(body)["CreatedDate"], str)
    assert headers["Content-Length"] == str(len(body))
    assert "Content-Type" not in headers  # as the AWS agent: nothing more for clients to parse


def test_path_route_with_slashes_in_the_id(agent, sm, name):
    response = created(sm, name)
    assert "/" in name
    assert agent.get(f"/v1/{name}") == (200, expected_body(response))


def test_arn_and_name_both_work(agent, sm, name):
    response = created(sm, name)
    assert agent.get(f"/secretsmanager/get?secretId={response['ARN']}")[1] == expected_body(
        response
    )


def test_binary_secret_is_base64(agent, sm, name):
    sm.create_secret(Name=name, SecretBinary=b"\x00\x01\xfe\xff")
    status, body = agent.get(f"/secretsmanager/get?secretId={name}")
    assert status == 200
    payload = json.loads(body)
    assert base64.b64decode(payload["SecretBinary"]) == b"\x00\x01\xfe\xff"
    assert "SecretString" not in payload


def test_version_id_and_stage(agent, sm, name):
    first = created(sm, name, "one")
    sm.put_secret_value(SecretId=name, SecretString="two")
    status, body = agent.get(f"/secretsmanager/get?secretId={name}&versionStage=AWSPREVIOUS")
    assert (status, json.loads(body)["SecretString"]) == (200, "one")
    status, body = agent.get(f"/v1/{name}?versionId={first['VersionId']}")
    assert (status, json.loads(body)["SecretString"]) == (200, "one")
    status, body = agent.get(f"/v1/{name}")
    assert json.loads(body)["SecretString"] == "two"


def test_query_values_are_url_decoded(agent, sm, name):
    created(sm, name, "x")
    encoded = name.replace("/", "%2F")
    status, body = agent.get(f"/secretsmanager/get?secretId={encoded}&versionStage=AWS%43URRENT")
    assert (status, json.loads(body)["SecretString"]) == (200, "x")


@pytest.mark.parametrize(
    ("target", "text"),
    [
        ("/secretsmanager/get?secretId=x&refreshNow=maybe", b"invalid refreshNow value"),
        ("/secretsmanager/get?secretId=x&color=red", b"unknown parameter: color"),
        ("/secretsmanager/get", b"missing parameter secretId"),
        ("/secretsmanager/get?secretId=", b"missing parameter secretId"),
        ("/secretsmanager/get?versionStage=AWSCURRENT", b"missing parameter secretId"),
        ("/v1/", b"missing secret ID"),
        ("/v1/x?secretId=y", b"unknown parameter: secretId"),
        ("/v1/x?refreshNow=2", b"invalid refreshNow value"),
    ],
)
def test_bad_queries(agent, target, text):
    assert agent.get(target) == (400, text)


def test_backend_error_body_and_status(agent, sm):
    status, body = agent.get("/secretsmanager/get?secretId=agent-test/does-not-exist")
    assert status == 400
    assert body == (
        b'{"__type":"ResourceNotFoundException", '
        b'"message":"Secrets Manager can\'t find the specified secret."}'
    )


def test_stage_not_found_error(agent, sm, name):
    created(sm, name)
    status, body = agent.get(f"/secretsmanager/get?secretId={name}&versionStage=NOPE")
    assert status == 400
    assert json.loads(body)["__type"] == "ResourceNotFoundException"


def test_refresh_now_sees_a_new_value_at_once(agent, sm, name):
    created(sm, name, "old")
    url = f"/secretsmanager/get?secretId={name}"
    assert json.loads(agent.get(url)[1])["SecretString"] == "old"
    sm.put_secret_value(SecretId=name, SecretString="new")
    assert json.loads(agent.get(url)[1])["SecretString"] == "old"  # cached, ttl 300
    assert json.loads(agent.get(url + "&refreshNow=true")[1])["SecretString"] == "new"
    assert json.loads(agent.get(url)[1])["SecretString"] == "new"


def test_cached_hit_makes_no_backend_call(agent, sm, name):
    created(sm, name)
    url = f"/v1/{name}"
    agent.get(url)
    before = agent.metric("secretsd_agent_backend_calls_total")
    for _ in range(20):
        assert agent.get(url)[0] == 200
    assert agent.metric("secretsd_agent_backend_calls_total") == before


# -- connection handling --------------------------------------------------------------------


def raw_exchange(agent, data: bytes, expect: int = 1, timeout: float = 10) -> bytes:
    with agent.connect() as sock:
        sock.settimeout(timeout)
        sock.sendall(data)
        received = b""
        while received.count(b"HTTP/1.1 ") < expect or not _complete(received, expect):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def _complete(data: bytes, count: int) -> bool:
    parts = data.split(b"HTTP/1.1 ")[1:]
    if len(parts) < count:
        return False
    last = b"HTTP/1.1 " + parts[-1]
    head, sep, body = last.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def test_keep_alive_and_pipelining_answer_in_order(agent, sm, name):
    created(sm, name, "pipelined")
    token = f"{TOKEN_HEADER}: {TOKEN}\r\n".encode()
    requests = (
        b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
        + f"GET /v1/{name} HTTP/1.1\r\nHost: x\r\n".encode()
        + token
        + b"\r\n"
        + b"GET /nowhere HTTP/1.1\r\nHost: x\r\n"
        + token
        + b"\r\n"
    )
    data = raw_exchange(agent, requests, expect=3)
    statuses = [part[:3] for part in data.split(b"HTTP/1.1 ")[1:]]
    assert statuses == [b"200", b"200", b"404"]
    assert b"pipelined" in data.split(b"HTTP/1.1 ")[2]


def test_http_1_0_connection_is_closed_after_the_response(agent):
    with agent.connect() as sock:
        sock.sendall(b"GET /ping HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"healthy")


def send_head(agent, head: bytes, chunk: int) -> bytes:
    """Send ``head`` ``chunk`` bytes per write; everything the agent answers until it
    closes. The agent may close (431) before the rest is sent."""
    with agent.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for start in range(0, len(head), chunk):
                sock.sendall(head[start : start + chunk])
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        try:
            while received := sock.recv(65536):
                data += received
        except ConnectionResetError:
            pass
    return data


def head_of(size: int) -> bytes:
    """A GET /ping head of ``size`` bytes in all, most of it one header's value."""
    start, end = b"GET /ping HTTP/1.1\r\nConnection: close\r\nX-Big: ", b"\r\n\r\n"
    return start + b"a" * (size - len(start) - len(end)) + end


# The AWS agent's request buffer is 321 KiB: the same answer whatever the arrival pattern.
ARRIVALS = {"one write": 1 << 20, "many writes": 4096, "byte by byte": 1}


@pytest.mark.parametrize("chunk", ARRIVALS.values(), ids=ARRIVALS.keys())
def test_a_head_over_the_limit_gets_431(agent, chunk):
    assert send_head(agent, head_of(330 * 1024), chunk).startswith(b"HTTP/1.1 431")


@pytest.mark.parametrize("chunk", ARRIVALS.values(), ids=ARRIVALS.keys())
def test_a_head_within_the_limit_is_answered(agent, chunk):
    answer = send_head(agent, head_of(300 * 1024), chunk)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"healthy")


def test_a_head_over_the_limit_after_a_small_request_in_the_same_write(agent):
    # Pipelined: the first request is answered, the second refused.
    answer = send_head(agent, b"GET /ping HTTP/1.1\r\n\r\n" + head_of(330 * 1024), 1 << 20)
    first, _, rest = answer.partition(b"healthy")
    assert first.startswith(b"HTTP/1.1 200") and rest.startswith(b"HTTP/1.1 431")


def test_garbage_gets_400_not_a_crash(agent):
    with agent.connect() as sock:
        sock.sendall(b"\x00\x01 not http\r\n\r\n")
        data = sock.recv(4096)
    assert data.startswith(b"HTTP/1.1 400")
    assert agent.get("/ping", token=None) == (200, b"healthy")


def test_slow_client_does_not_block_others(agent, sm, name):
    created(sm, name)
    slow = agent.connect()
    try:
        slow.sendall(b"GET /v1/")  # and then nothing
        started = time.monotonic()
        for _ in range(10):
            assert agent.get(f"/v1/{name}")[0] == 200
        assert time.monotonic() - started < 5
    finally:
        slow.close()


def test_metrics_need_the_token(agent):
    assert agent.get("/metrics", token=None) == (403, b"Bad Token")
    status, body, headers = agent.request("/metrics")
    assert status == 200
    assert b"secretsd_agent_cache_hits_total" in body
    assert b"secretsd_agent_backend_latency_seconds_bucket" in body
    assert headers["Content-Type"].startswith("text/plain")


def test_metrics_never_show_ids_or_values(agent, sm, name):
    created(sm, name, "very-secret-value-42")
    agent.get(f"/v1/{name}")
    body = agent.get("/metrics")[1]
    assert b"very-secret-value-42" not in body and name.encode() not in body


def test_unicode_secret_value_round_trips(agent, sm, name):
    created(sm, name, 'pässwörd ✓ "quoted" \\ back')
    status, body = agent.get(f"/v1/{name}")
    assert status == 200
    assert json.loads(body)["SecretString"] == 'pässwörd ✓ "quoted" \\ back'


def test_agent_survives_a_client_hanging_up_mid_request(agent):
    sock = socket.create_connection(("127.0.0.1", agent.port))
    sock.sendall(b"GET /secretsmanager/get?secretId=x HTTP/1.1\r\n")
    sock.close()
    assert agent.get("/ping", token=None) == (200, b"healthy")


def test_client_that_pipelines_without_reading_is_throttled_not_buffered(agent):
    import threading

    count = 400_000
    request = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
    sock = agent.connect()
    sock.settimeout(30)
    sender = threading.Thread(target=lambda: sock.sendall(request * count), daemon=True)
    sender.start()
    time.sleep(0.5)
    assert sender.is_alive()  # the agent stopped reading: its writes were not being drained
    assert agent.get("/ping", token=None) == (200, b"healthy")  # others are still served
    expected = count * len(b"healthy")
    received = b""
    while received.count(b"healthy") * len(b"healthy") < expected:
        chunk = sock.recv(1 << 20)
        assert chunk
        received += chunk
    sender.join(10)
    sock.close()
    assert received.count(b"HTTP/1.1 200 OK") == count


def test_upgrade_and_connect_requests_are_answered_then_closed(agent):
    with agent.connect() as sock:
        sock.sendall(
            b"GET /ping HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        )
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"healthy")
    with agent.connect() as sock:
        sock.sendall(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 403")
    assert agent.get("/ping", token=None) == (200, b"healthy")


def test_checks_apply_to_a_cached_target_too(agent, sm, name):
    created(sm, name)
    url = f"/v1/{name}"
    assert agent.get(url)[0] == 200  # now cached, and its target known to the fast path
    assert agent.get(url, headers={"X-Forwarded-For": "10.0.0.1"}) == (400, b"Forwarded")
    assert agent.get(url, token=None) == (403, b"Bad Token")
    assert agent.get(url, token="wrong") == (403, b"Bad Token")
    assert agent.get(url, method="POST") == (405, b"Not allowed")
    assert agent.get(url, method="HEAD")[0] == 405
    assert agent.get(url)[0] == 200


def test_requests_after_connection_close_in_one_write_are_not_answered(agent, sm, name):
    created(sm, name)
    target = f"/v1/{name}"
    assert agent.get(target)[0] == 200
    request = f"GET {target} HTTP/1.1\r\nHost: x\r\nX-Vault-Token: {TOKEN}\r\n".encode()
    with agent.connect() as sock:
        sock.sendall(request + b"Connection: close\r\n\r\n" + request + b"\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.count(b"HTTP/1.1 200") == 1
