"""Slow and idle clients against a live server: they are cut off, and never crowd others out."""

from __future__ import annotations

import resource
import socket
import threading
import time
from urllib.parse import urlsplit

import pytest

from secretsd.api.guard import ConnectionGuard, Limits, default_max_connections
from tests.support.server import start_server
from tests.support.slow_clients import PARTIAL_BODY, PARTIAL_HEAD, SlowClients

SYSTEMD_OPEN_FILES = 1024
REQUEST = (
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
    b"X-Amz-Target: secretsmanager.GetRandomPassword\r\nContent-Length: 2\r\n\r\n{}"
)


def _address(server) -> tuple[str, int]:
    url = urlsplit(server.endpoint_url)
    return url.hostname, url.port


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def _read_response(sock: socket.socket) -> bytes:
    """One whole response (head and Content-Length body) off a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "closed before a response"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(line for line in head.split(b"\r\n") if line.startswith(b"content-length:"))[15:]
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


def _trickle_until_closed(sock: socket.socket, limit: float) -> float:
    """Send a byte every 0.2 s until the server closes; seconds that took."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if _closed_by_peer(sock):
            return time.monotonic() - started
        try:
            sock.send(b"a")
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"the server kept a slow connection open for {limit} s")


@pytest.fixture(scope="module")
def quick_server(tmp_path_factory):
    server = start_server(
        tmp_path_factory.mktemp("quick"), "--request-timeout", "1.5", "--keep-alive-timeout", "1"
    )
    yield server
    server.stop()


@pytest.mark.parametrize("start", [b"", PARTIAL_HEAD, PARTIAL_BODY], ids=["idle", "head", "body"])
def test_a_request_that_does_not_arrive_in_time_is_closed(quick_server, start):
    with socket.create_connection(_address(quick_server), timeout=5) as sock:
        sock.sendall(start)
        took = _trickle_until_closed(sock, limit=10)
    assert 1.2 <= took <= 4.5, took


def test_idle_keep_alive_connection_is_closed_and_a_prompt_one_is_served(quick_server):
    with socket.create_connection(_address(quick_server), timeout=5) as sock:
        for _ in range(3):  # three requests, each prompt, on one connection
            sock.sendall(REQUEST)
            assert _read_response(sock).startswith(b"HTTP/1.1 403")  # unsigned, but answered
        started = time.monotonic()
        sock.settimeout(5)
        assert sock.recv(65536) == b""
        assert 0.7 <= time.monotonic() - started <= 3.5


def test_a_head_beyond_64_kib_is_refused(quick_server):
    with socket.create_connection(_address(quick_server), timeout=5) as sock:
        sock.sendall(PARTIAL_HEAD + b"a" * (70 * 1024))
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")


@pytest.mark.slow
def test_slow_clients_beyond_the_open_file_limit_do_not_starve_requests(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    clients = 1200  # beyond the server's 1,024: before the cap, it then served no one
    if soft < clients + 200:
        if hard != resource.RLIM_INFINITY and hard < clients + 200:
            pytest.skip(f"this test process may open only {hard} files")
        resource.setrlimit(resource.RLIMIT_NOFILE, (clients + 200, hard))
    # A long deadline: the slow clients are still holding on when the requests arrive.
    server = start_server(
        tmp_path / "server", "--request-timeout", "60", open_files=SYSTEMD_OPEN_FILES
    )
    slow = SlowClients(*_address(server))
    try:
        assert slow.open(clients) == clients
        slow.trickle()
        for _ in range(5):
            client = server.client(connect_timeout=5, read_timeout=5)
            started = time.monotonic()
            assert client.get_random_password(PasswordLength=8)["RandomPassword"]
            assert time.monotonic() - started < 5
        assert server.process.poll() is None
        assert "Traceback" not in server.log_text()
    finally:
        slow.close()
        server.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.slow
def test_many_slow_clients_are_all_dropped_at_the_deadline(quick_server):
    slow = SlowClients(*_address(quick_server))
    stop = threading.Event()
    try:
        opened = slow.open(300)

        def trickle() -> None:
            while not stop.wait(0.3):
                slow.trickle()

        threading.Thread(target=trickle, daemon=True).start()
        deadline = time.monotonic() + 10
        while slow.still_open() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert opened == 300 and slow.still_open() == 0
        assert quick_server.client().get_random_password(PasswordLength=8)["RandomPassword"]
    finally:
        stop.set()
        slow.close()


# --- the cap and its eviction order, without sockets -----------------------------------------


class FakeTransport:
    def __init__(self) -> None:
        self.closed = False
        self.written = b""

    def close(self) -> None:
        self.closed = True

    def write(self, data: bytes) -> None:
        self.written += data


class FakeConnection:
    def __init__(self) -> None:
        self.transport = FakeTransport()


def test_default_cap_leaves_room_under_the_open_file_limit():
    cap = default_max_connections(1024)
    assert cap + 1024 // 8 + 32 < 1024
    assert default_max_connections(65536) > 50_000
    assert default_max_connections(20) == 16


def test_at_the_cap_idle_go_first_then_the_longest_arriving_then_newcomers_are_refused():
    guard = ConnectionGuard(Limits(max_connections=3))
    a, b, c, d, e, f = (FakeConnection() for _ in range(6))
    for conn in (a, b, c):
        assert guard.admit(conn)
        guard.arriving(conn)
    guard.running(a)
    guard.idle(a)  # a answered and now idles on keep-alive
    assert guard.admit(d) and a.transport.closed  # idle before arriving
    guard.release(a)
    guard.arriving(d)
    assert guard.admit(e) and b.transport.closed  # then the one arriving longest
    guard.release(b)
    guard.running(c)
    guard.running(d)
    guard.running(e)
    assert not guard.admit(f)  # everyone is being served: the newcomer is refused
    assert not any(x.transport.closed for x in (c, d, e))
    assert (guard.evicted, guard.refused) == (2, 1)
