"""The console's HTTP: requests read from ASGI, responses written with the security headers.

Every response carries the same headers: a Content-Security-Policy that lets a page load
only this server's own stylesheet and script (no inline script or style, no frames, forms
posting only here), ``X-Frame-Options: DENY``, no caching (pages may show a secret value) and
no Referer to other sites (a sign-in link carries its token in the URL).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl

from secretsd.model.request import RequestFacts

MAX_FORM = 256 * 1024  # a secret value is at most 64 KiB, percent-encoded up to three times

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    # Not no-referrer: under it a browser sends "Origin: null" with the console's own forms.
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
)
HTML = "text/html; charset=utf-8"


class BadRequest(Exception):
    """The request cannot be read; the message is shown to the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Request:
    method: str
    path: str  # below the console's prefix: "/secrets", "/secret/reveal"
    # Not in a repr: the query may carry a sign-in link's token, the cookies the session
    # id, the form a secret access key, a secret value or the CSRF token.
    query: dict[str, str] = field(repr=False)
    cookies: dict[str, str] = field(repr=False)
    form: dict[str, str] = field(repr=False)
    secure: bool
    origin: str | None
    host: str | None
    # The connection's facts, for the audit trail (and authorization's condition keys).
    context: RequestFacts

    def same_origin(self) -> bool:
        """False when the browser says the request came from another origin."""
        if self.origin is None or self.host is None:
            return True  # browsers send Origin on POST; SameSite and CSRF cover the rest
        scheme = "https" if self.secure else "http"
        return self.origin == f"{scheme}://{self.host}"


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def parse_cookies(header: str | None) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in cookies:
            cookies[name] = value
    return cookies


async def read_request(
    scope: dict, receive: Callable, prefix: str, context: RequestFacts
) -> Request:
    method = scope["method"]
    form: dict[str, str] = {}
    if method == "POST":
        kind = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        body = await _read_body(receive)
        if kind != "application/x-www-form-urlencoded":
            raise BadRequest(415, "The console takes forms only.")
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            raise BadRequest(400, "The form is not UTF-8.") from None
        form = dict(pairs)
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    path = scope["path"][len(prefix) :] or "/"
    return Request(
        method=method,
        path=path,
        query=query,
        cookies=parse_cookies(_header(scope, b"cookie")),
        form=form,
        secure=scope.get("scheme") == "https",
        origin=_header(scope, b"origin"),
        host=_header(scope, b"host"),
        context=context,
    )


async def _read_body(receive: Callable) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest(400, "The browser closed the connection.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM:
            raise BadRequest(413, "The form is too large.")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


@dataclass(slots=True)
class Response:
    status: int
    # Not in a repr: a page may show a secret value, a header may set the session cookie.
    body: bytes = field(default=b"", repr=False)
    content_type: str = HTML
    headers: list[tuple[str, str]] = field(default_factory=list, repr=False)

    def set_cookie(self, name: str, value: str, *, path: str, max_age: int, secure: bool) -> None:
        cookie: SimpleCookie = SimpleCookie()
        cookie[name] = value
        morsel = cookie[name]
        morsel["path"] = path
        morsel["max-age"] = max_age
        morsel["httponly"] = True
        morsel["samesite"] = "Strict"
        if secure:
            morsel["secure"] = True
        self.headers.append(("set-cookie", morsel.OutputString()))


def redirect(location: str) -> Response:
    return Response(303, headers=[("location", location)])


async def send_response(send: Callable, response: Response, cache: bool = False) -> None:
    headers = [(b"content-type", response.content_type.encode())]
    headers.append((b"content-length", str(len(response.body)).encode()))
    headers.append((b"cache-control", b"max-age=3600" if cache else b"no-store"))
    headers.extend((name.encode(), value.encode()) for name, value in SECURITY_HEADERS)
    headers.extend((name.encode(), value.encode("latin-1")) for name, value in response.headers)
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
