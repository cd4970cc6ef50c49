"""Connection limits for the API server: slow or idle clients can't exhaust it.

Theory of operation
-------------------
uvicorn closes a keep-alive connection that stays idle after a response, but nothing else:
a client that sends half a request head, then a byte every few seconds, holds its socket for
as long as it likes, and a thousand such clients use up every file descriptor the process may
open, after which no one is served (slowloris). Three rules here stop that:

1. Deadline. A request's head and body must both arrive within ``request_timeout`` seconds
   of its first byte (of the connection being opened, for the first request). The timer is
   armed then and disarmed when the parser has the whole request; if it fires, the connection
   is closed without an answer. Bytes trickling in do not extend it, and a connection that
   only sends blank lines between requests is also on the clock.
2. Cap. At most ``max_connections`` connections are open, a number below the open-file
   limit so that the store, the log and the listening socket always get their descriptors.
3. Eviction. A connection that arrives at the cap takes the place of the connection that
   has waited longest without a request to run: first the longest idle keep-alive one, else
   the one whose request has been arriving for longest. A legitimate request arrives whole
   in milliseconds, so it is never the one evicted while slow clients hold places; the slow
   ones go first. Only when every connection is running a request is the newcomer answered
   503 (which the SDKs retry) and closed.

uvicorn's own ``limit_concurrency`` was considered and not used: it counts connections only
once a request head is complete and then answers 503, so slow clients that never finish
their heads still take every descriptor, and the legitimate requests are the ones refused.

The rules live in a subclass of uvicorn's httptools protocol (``uvicorn.Config(http=...)``
takes a protocol class), hooking the parser callbacks that mark a request's start and end.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD = 64 * 1024  # AWS SDK request heads are about 1 KiB; this is ample
_RESERVED_FILES = 64  # store, WAL, log, listening socket, event loop, rotation connections

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: application/x-amz-json-1.1\r\n"
    b"content-length: 90\r\n"
    b"connection: close\r\n\r\n"
    b'{"__type":"ServiceUnavailableException","Message":"The server is at its connection limit."}'
)


@dataclass(frozen=True, slots=True)
class Limits:
    request_timeout: float = 20.0
    keep_alive_timeout: float = 60.0
    max_connections: int = 0  # 0: derived from the open-file limit

    def connection_cap(self) -> int:
        return self.max_connections or default_max_connections()


def default_max_connections(soft_limit: int | None = None) -> int:
    """The cap that leaves room under the open-file limit for everything else.

    The listening socket may hold a backlog of accepted-but-unseen connections beyond the cap
    for a moment, so the room kept is an eighth of the limit as well as the fixed reserve.
    """
    if soft_limit is None:
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft_limit == resource.RLIM_INFINITY or soft_limit > 1 << 20:
        soft_limit = 1 << 20
    return max(16, soft_limit - soft_limit // 8 - _RESERVED_FILES)


def listen_backlog() -> int:
    """A backlog that fits in the room ``default_max_connections`` keeps."""
    soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft_limit == resource.RLIM_INFINITY:
        return 1024
    return max(16, min(1024, soft_limit // 8))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--request-timeout",
        type=_positive,
        default=20.0,
        help="seconds a request's head and body may take to arrive before the connection "
        "is closed (20)",
    )
    parser.add_argument(
        "--keep-alive-timeout",
        type=_positive,
        default=60.0,
        help="seconds an idle keep-alive connection stays open (60)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=0,
        help="open connections at most; 0 derives it from the open-file limit (0)",
    )


def limits_from(args: argparse.Namespace) -> Limits:
    return Limits(args.request_timeout, args.keep_alive_timeout, max(0, args.max_connections))


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


class ConnectionGuard:
    """The cap and the eviction order, shared by every connection of one server."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.cap = limits.connection_cap()
        self.open = 0
        # Insertion order is the order connections started waiting, oldest first.
        self._idle: dict[GuardedProtocol, None] = {}
        self._arriving: dict[GuardedProtocol, None] = {}
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0

    def protocol_class(self) -> type[GuardedProtocol]:
        return type("GuardedHttpToolsProtocol", (GuardedProtocol,), {"guard": self})

    def admit(self, newcomer: GuardedProtocol) -> bool:
        self.open += 1
        if self.open <= self.cap:
            return True
        for waiting in (self._idle, self._arriving):
            if waiting:
                victim = next(iter(waiting))
                self.forget(victim)
                victim.transport.close()
                self.evicted += 1
                return True
        self.refused += 1
        return False

    def release(self, protocol: GuardedProtocol) -> None:
        self.open -= 1
        self.forget(protocol)

    def arriving(self, protocol: GuardedProtocol) -> None:
        self._idle.pop(protocol, None)
        self._arriving[protocol] = None

    def running(self, protocol: GuardedProtocol) -> None:
        self._arriving.pop(protocol, None)

    def idle(self, protocol: GuardedProtocol) -> None:
        self._idle[protocol] = None

    def forget(self, protocol: GuardedProtocol) -> None:
        self._idle.pop(protocol, None)
        self._arriving.pop(protocol, None)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a request deadline and a place under the cap."""

    guard: ConnectionGuard

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0  # received since the last complete head or request
        self._in_body = False
        self._admitted = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._admitted = True
        if not self.guard.admit(self):
            transport.write(_BUSY)
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._admitted:
            self._admitted = False
            self.guard.release(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            # Bytes between requests start the next one's clock, even if they are only the
            # blank lines the parser skips: else a byte now and then would hold the connection.
            self._arm()
        # The parser keeps a head's pieces until the head is whole, and nothing bounds them but
        # this count (a chunk's worth over at most).
        if not self._in_body:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._head_bytes > MAX_HEAD and not self._in_body and not self.transport.is_closing():
            self._disarm()
            self.send_400_response("The request head is too large.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._head_bytes = 0
        self._in_body = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        self._in_body = False
        self._head_bytes = 0
        self.guard.running(self)
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._deadline is None:
            self.guard.idle(self)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.guard.limits.request_timeout, self._expire)
        self.guard.arriving(self)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.guard.timed_out += 1
            self.transport.close()
