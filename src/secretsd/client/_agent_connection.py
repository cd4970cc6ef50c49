"""One keep-alive HTTP/1.1 connection to the local agent, built for the latency of a hit.

Theory of operation: an agent cache hit takes the agent about 1 us; what a caller waits for
is its own HTTP stack and the kernel. So the request goes out in one ``send`` of bytes built
once per target, the answer is parsed by httptools (the agent's own C parser), and the wait
for it starts with a short busy poll: on a virtual machine a thread that sleeps in ``poll``
is woken through the hypervisor, which costs tens of microseconds, several times the whole
hit. The poll yields the CPU on each turn (an agent on the same core still runs) and gives
up after ``busy_poll`` seconds, after which the thread sleeps in ``poll`` until
``read_timeout``. The socket stays non-blocking throughout.
"""

from __future__ import annotations

import os
import select
import socket
import time

import httptools

SPIN_ERRORS = (BlockingIOError, InterruptedError)


class AgentConnectionClosed(ConnectionError):
    """The agent closed the connection before answering."""


class _Response:
    """httptools callbacks collecting one response at a time; the parser carries on from
    one response to the next on a kept-alive connection."""

    __slots__ = ("body", "complete", "keep_alive", "parser")

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.complete = False
        self.keep_alive = False
        self.parser = httptools.HttpResponseParser(self)

    def reset(self) -> None:
        self.body = []
        self.complete = False

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True
        # Only meaningful here: once the message is over the parser starts on the next one.
        self.keep_alive = self.parser.should_keep_alive()


class AgentConnection:
    """A connection to ``host:port`` for one thread at a time; connects on first use."""

    def __init__(
        self,
        host: str,
        port: int,
        connect_timeout: float,
        read_timeout: float,
        busy_poll: float,
    ) -> None:
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.busy_poll_ns = int(busy_poll * 1e9)
        self.sock: socket.socket | None = None
        self._poll: select.poll | None = None
        self._response: _Response | None = None
        self._heads: dict[tuple[str, str], bytes] = {}

    @property
    def connected(self) -> bool:
        return self.sock is not None

    def request(self, target: str, token_header: str, token: str) -> tuple[int, bytes]:
        """GET ``target``; the status and body of the answer. Raises OSError (TimeoutError
        included) or httptools.HttpParserError; the connection is then closed."""
        key = (target, token)
        head = self._heads.get(key)
        if head is None:
            if len(self._heads) >= 256:
                self._heads.clear()
            head = (
                f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"{token_header}: {token}\r\n\r\n"
            ).encode("latin-1")
            self._heads[key] = head
        if self.sock is None:
            self._connect()
        try:
            self._send(head)
            return self._receive()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        sock, self.sock, self._poll, self._response = self.sock, None, None, None
        if sock is not None:
            sock.close()

    def _connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        self.sock, self._poll, self._response = sock, poller, _Response()

    def _send(self, data: bytes) -> None:
        sock = self.sock
        assert sock is not None
        try:
            sent = sock.send(data)
        except SPIN_ERRORS:
            sent = 0
        if sent == len(data):  # always, unless the socket buffer is full
            return
        view = memoryview(data)[sent:]
        deadline = time.monotonic() + self.read_timeout
        while view:
            try:
                view = view[sock.send(view) :]
            except SPIN_ERRORS:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("timed out sending to the agent") from None
                select.select([], [sock], [], remaining)

    def _receive(self) -> tuple[int, bytes]:
        sock, poller, response = self.sock, self._poll, self._response
        assert sock is not None and poller is not None and response is not None
        response.reset()
        parser = response.parser
        spin_until = time.monotonic_ns() + self.busy_poll_ns
        deadline = time.monotonic() + self.read_timeout
        while not response.complete:
            try:
                data = sock.recv(65536)
            except SPIN_ERRORS:
                if time.monotonic_ns() < spin_until:
                    os.sched_yield()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not poller.poll(remaining * 1000):
                    raise TimeoutError("timed out waiting for the agent") from None
                continue
            if not data:
                raise AgentConnectionClosed("the agent closed the connection")
            parser.feed_data(data)
        if not response.keep_alive:
            self.close()
        return parser.get_status_code(), b"".join(response.body)
