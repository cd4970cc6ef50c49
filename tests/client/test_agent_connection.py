"""The client's connection to the agent against a scripted HTTP peer: answers cut into
pieces, chunked bodies, Connection: close, silence, and a peer that hangs up."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from secretsd.client._agent_connection import AgentConnection, AgentConnectionClosed

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a": "b"}\n'


class ScriptedPeer:
    """Accepts connections; for each request head it runs ``answer(conn)``."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(4096)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                self.requests.append(head)
                if self.answer(conn) is False:
                    return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def peer():
    peers: list[ScriptedPeer] = []

    def make(answer) -> ScriptedPeer:
        peers.append(ScriptedPeer(answer))
        return peers[-1]

    yield make
    for each in peers:
        each.close()


@pytest.fixture
def connect():
    opened: list[AgentConnection] = []

    def make(peer: ScriptedPeer, read_timeout: float = 2.0, busy_poll: float = 100e-6):
        opened.append(AgentConnection("127.0.0.1", peer.port, 1.0, read_timeout, busy_poll))
        return opened[-1]

    yield make
    for connection in opened:
        connection.close()


@pytest.mark.parametrize("busy_poll", [0.0, 100e-6, 1.0])
def test_answers_on_one_kept_alive_connection(peer, connect, busy_poll):
    server = peer(lambda conn: conn.sendall(OK))
    connection = connect(server, busy_poll=busy_poll)
    for _ in range(3):
        assert connection.request("/secretsmanager/get?secretId=a", "X-Token", "t") == (
            200,
            b'{"a": "b"}\n',
        )
    assert server.connections == 1
    assert server.requests[0].split(b"\r\n") == [
        b"GET /secretsmanager/get?secretId=a HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}".encode(),
        b"X-Token: t",
    ]
    connection.close()


def test_an_answer_in_pieces_and_a_chunked_body(peer, connect):
    answers = iter(
        [
            lambda conn: dribble(conn, OK),
            lambda conn: conn.sendall(
                b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nnot\r\n6\r\n found\r\n0\r\n\r\n"
            ),
        ]
    )

    def dribble(conn: socket.socket, answer: bytes) -> None:
        for i in range(len(answer)):
            conn.sendall(answer[i : i + 1])
            if i % 16 == 0:
                time.sleep(0.001)

    server = peer(lambda conn: next(answers)(conn))
    connection = connect(server)
    assert connection.request("/a", "X-Token", "t") == (200, b'{"a": "b"}\n')
    assert connection.request("/b", "X-Token", "t") == (404, b"not found")


def test_connection_close_is_honoured(peer, connect):
    def once(conn: socket.socket) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        return False

    server = peer(once)
    connection = connect(server)
    assert connection.request("/a", "X-Token", "t") == (200, b"ok")
    assert not connection.connected
    assert connection.request("/a", "X-Token", "t") == (200, b"ok")
    assert server.connections == 2


def test_a_peer_that_hangs_up_before_answering(peer, connect):
    server = peer(lambda conn: False)
    connection = connect(server)
    with pytest.raises(AgentConnectionClosed):
        connection.request("/a", "X-Token", "t")
    assert not connection.connected


def test_a_silent_peer_times_out_after_the_read_timeout(peer, connect):
    server = peer(lambda conn: time.sleep(5))
    connection = connect(server, read_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        connection.request("/a", "X-Token", "t")
    assert 0.3 <= time.monotonic() - started < 2
    assert not connection.connected


def test_nothing_listening_is_refused_at_once():
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    connection = AgentConnection("127.0.0.1", port, 1.0, 1.0, 100e-6)
    with pytest.raises(ConnectionRefusedError):
        connection.request("/a", "X-Token", "t")
