"""The canonical form of a request, as SigV4 signers build it (see ``sigv4``'s theory of
operation): path, query, signed headers and payload hash. Pure functions of the request parts."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import quote, quote_from_bytes, unquote_plus

from secretsd.model.errors import InvalidSignature

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
CONTENT_SHA256_MISMATCH = (
    "The provided 'x-amz-content-sha256' header does not match what was computed."
)

Header = tuple[bytes | str, bytes | str]


class Headers:
    """Request headers by lower-case name; values are decoded only when asked for.

    Latin-1 is how HTTP/1.1 header bytes map to text: it never fails and round-trips.
    """

    __slots__ = ("_raw",)

    def __init__(self, headers: Sequence[Header]) -> None:
        raw: dict[bytes, list[bytes | str]] = {}
        for name, value in headers:
            key = name.lower() if isinstance(name, bytes) else name_bytes(name)
            existing = raw.get(key)
            if existing is None:
                raw[key] = [value]
            else:
                existing.append(value)
        self._raw = raw

    def first(self, name: bytes) -> str | None:
        values = self._raw.get(name)
        if values is None:
            return None
        value = values[0]
        return value.decode("latin-1") if isinstance(value, bytes) else value

    def canonical(self, name: str) -> str:
        values = self._raw.get(name_bytes(name), ())
        return ",".join(
            " ".join((value.decode("latin-1") if isinstance(value, bytes) else value).split())
            for value in values
        )


def name_bytes(name: str) -> bytes:
    return name.lower().encode("utf-8", "surrogatepass")


def canonical_path(path: str | bytes) -> str:
    if path == "/" or path == b"/":
        return "/"
    if isinstance(path, str):
        # Text is the wire bytes decoded as Latin-1; anything beyond it can only be UTF-8.
        try:
            raw = path.encode("latin-1")
        except UnicodeEncodeError:
            raw = path.encode("utf-8", "surrogatepass")
    else:
        raw = path
    return quote_from_bytes(_remove_dot_segments(raw), safe="/~")


def _remove_dot_segments(path: bytes) -> bytes:
    # RFC 3986 section 5.2.4, plus the removal of empty segments that AWS also applies.
    if not path:
        return b"/"
    kept: list[bytes] = []
    for segment in path.split(b"/"):
        if segment == b"..":
            if kept:
                kept.pop()
        elif segment and segment != b".":
            kept.append(segment)
    lead = b"/" if path.startswith(b"/") else b""
    trail = b"/" if path.endswith(b"/") and kept else b""
    return lead + b"/".join(kept) + trail


def query_candidates(query: str, presigned: bool) -> list[str]:
    if not query:
        return [""]
    pairs = []
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if presigned and name == "X-Amz-Signature":
            continue
        pairs.append((name, value))
    raw = "&".join(f"{name}={value}" for name, value in sorted(pairs))
    recoded = "&".join(
        f"{name}={value}"
        for name, value in sorted(
            (quote(unquote_plus(name), safe="-_.~"), quote(unquote_plus(value), safe="-_.~"))
            for name, value in pairs
        )
    )
    return [raw] if recoded == raw else [raw, recoded]


def canonical_headers(signed_names: list[str], hmap: Headers) -> str:
    return "".join(f"{name}:{hmap.canonical(name)}\n" for name in signed_names)


def payload_candidates(hmap: Headers, body: bytes, presigned: bool) -> list[str]:
    value = hmap.first(b"x-amz-content-sha256")
    actual = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    if value is None:
        return [actual, UNSIGNED_PAYLOAD] if presigned else [actual]
    if value == UNSIGNED_PAYLOAD:
        # Only a presigned URL may leave its body out of the signature.
        return [value] if presigned else [actual]
    if not hmac.compare_digest(actual.encode(), value.encode("utf-8", "surrogatepass")):
        raise InvalidSignature(CONTENT_SHA256_MISMATCH)
    return [value]
