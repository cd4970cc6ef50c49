"""Whatever bytes arrive, a connection answers in HTTP or closes; it never raises."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.agent import config as configuration
from secretsd.agent.metrics import Metrics
from secretsd.agent.run import build

from .fakes import FakeSecretsManager
from .support import TOKEN


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


PIECES = [
    b"GET ",
    b"POST ",
    b"/ping",
    b"/health",
    b"/v1/",
    b"db/app",
    b"/secretsmanager/get?secretId=db/app",
    b"&refreshNow=",
    b"true",
    b"%zz",
    b"?versionStage=AWSCURRENT",
    b" HTTP/1.1\r\n",
    b" HTTP/1.0\r\n",
    b"Host: x\r\n",
    f"X-Aws-Parameters-Secrets-Token: {TOKEN}\r\n".encode(),
    b"X-Forwarded-For: 1.2.3.4\r\n",
    b"Content-Length: 3\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n",
    b"\r\n",
    b"abc",
    b"\xff\xfe",
    b"\x00",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=40)), min_size=1, max_size=40),
    st.integers(min_value=1, max_value=64),
)
def test_connection_never_raises(pieces, chunk):
    async def scenario() -> Transport:
        backend = FakeSecretsManager()
        backend.put("db/app", "v")
        settings = configuration.from_mapping({"log_to_file": False}, {})
        agent = build(settings, TOKEN.encode(), backend, Metrics())
        connection = agent.front.protocol()
        transport = Transport()
        connection.connection_made(transport)
        data = b"".join(pieces)
        for start in range(0, len(data), chunk):
            if transport.closed:
                break
            connection.data_received(data[start : start + chunk])
            await asyncio.sleep(0)
        for _ in range(5):
            await asyncio.sleep(0)
        connection.connection_lost(None)
        return transport

    transport = asyncio.run(scenario())
    for response in transport.written:
        assert response.startswith(b"HTTP/1.1 ")
