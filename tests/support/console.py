"""A browser-like client of the web console: one cookie jar, forms posted with their CSRF token.

It talks either to a live server over HTTP (``over_http``) or to a ``ConsoleApp`` in
process through ASGI (``in_process``), so tests whose clock must move (session expiry)
run the same requests without a socket.
"""

from __future__ import annotations

import asyncio
import configparser
import http.client
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
COOKIE = "secretsd_console"


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: str

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name]

    @property
    def csrf(self) -> str:
        match = CSRF.search(self.body)
        assert match, f"no CSRF token in the page:\n{self.body[:2000]}"
        return match.group(1)


Transport = Callable[[str, str, dict[str, str], bytes], Reply]


def over_http(base_url: str, cafile: Path | None = None) -> Transport:
    """Requests to a live server; an https URL is verified against ``cafile``."""
    parts = urlsplit(base_url)

    def connect() -> http.client.HTTPConnection:
        if parts.scheme == "https":
            context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
            return http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=30, context=context
            )
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def send(method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        connection = connect()
        try:
            connection.request(method, target, body=body or None, headers=headers)
            response = connection.getresponse()
            return Reply(response.status, response.getheaders(), response.read().decode())
        finally:
            connection.close()

    return send


def in_process(app, host: str = "console.test", scheme: str = "http") -> Transport:
    def send(method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        path, _, query = target.partition("?")
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "scheme": scheme,
            "headers": [(b"host", host.encode())]
            + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: dict) -> None:
            sent.append(message)

        asyncio.run(app(scope, receive, capture))
        start = sent[0]
        return Reply(
            start["status"],
            [(k.decode(), v.decode()) for k, v in start["headers"]],
            b"".join(m.get("body", b"") for m in sent[1:]).decode(),
        )

    return send


class ConsoleClient:
    def __init__(self, transport: Transport, origin: str | None = None) -> None:
        self.transport = transport
        self.origin = origin
        self.cookie: str | None = None

    def request(
        self, method: str, target: str, form: dict[str, str] | None = None, **headers: str
    ) -> Reply:
        sent = dict(headers)
        body = b""
        if self.cookie:
            sent.setdefault("Cookie", f"{COOKIE}={self.cookie}")
        if method == "POST":
            body = urlencode(form or {}).encode()
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
            if self.origin:
                sent.setdefault("Origin", self.origin)
        reply = self.transport(method, target, sent, body)
        for value in reply.all("set-cookie"):
            name, _, rest = value.partition("=")
            if name == COOKIE:
                self.cookie = rest.split(";")[0] or None
        return reply

    def get(self, target: str, **headers: str) -> Reply:
        return self.request("GET", target, **headers)

    def post(self, target: str, form: dict[str, str], **headers: str) -> Reply:
        return self.request("POST", target, form, **headers)

    def sign_in(self, access_key_id: str, secret_access_key: str) -> Reply:
        page = self.get("/console/sign-in")
        return self.post(
            "/console/sign-in",
            {
                "csrf": page.csrf,
                "access_key_id": access_key_id,
                "secret_access_key": secret_access_key,
            },
        )


def root_key(data_dir: Path) -> tuple[str, str]:
    parser = configparser.ConfigParser()
    parser.read(data_dir / "credentials")
    profile = parser["secretsd"]
    return profile["aws_access_key_id"], profile["aws_secret_access_key"]
