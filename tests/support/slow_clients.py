"""Slow HTTP clients (slowloris): many connections that start a request and never finish it.

Half send a partial request head, half a whole head and part of the body; ``trickle`` sends
each one more byte, which keeps the request incomplete, as an attacker would every few
seconds. Everything is non-blocking, so a thousand connections cost one thread.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time

PARTIAL_HEAD = (
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
    b"X-Amz-Target: secretsmanager.ListSecrets\r\nX-Padding: "
)
PARTIAL_BODY = (
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
    b'X-Amz-Target: secretsmanager.ListSecrets\r\nContent-Length: 100000\r\n\r\n{"Max'
)


class SlowClients:
    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.sockets: list[socket.socket] = []
        self.failed = 0

    def open(self, count: int, timeout: float = 10.0) -> int:
        """Start ``count`` connections and their requests; how many got through."""
        selector = selectors.DefaultSelector()
        for index in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            code = sock.connect_ex(self.address)
            if code not in (0, errno.EINPROGRESS):
                sock.close()
                self.failed += 1
                continue
            selector.register(sock, selectors.EVENT_WRITE, index)
        deadline = time.monotonic() + timeout
        pending = len(selector.get_map())
        while pending and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.2):
                sock = key.fileobj
                selector.unregister(sock)
                pending -= 1
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    sock.close()
                    self.failed += 1
                    continue
                try:
                    sock.send(PARTIAL_HEAD if key.data % 2 else PARTIAL_BODY)
                except OSError:
                    sock.close()
                    self.failed += 1
                    continue
                self.sockets.append(sock)
        for key in list(selector.get_map().values()):
            key.fileobj.close()
            self.failed += 1
        selector.close()
        return len(self.sockets)

    def trickle(self) -> None:
        """One more byte on every connection still open; a byte never completes a request."""
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.send(b"a")

    def still_open(self) -> int:
        """Connections the server has neither closed nor answered (a 503 comes with a close)."""
        count = 0
        for sock in self.sockets:
            try:
                sock.recv(1, socket.MSG_PEEK)
            except BlockingIOError:
                count += 1
                continue
            except OSError:
                continue
        return count

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()
