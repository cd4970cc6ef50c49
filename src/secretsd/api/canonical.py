"""The canonical form of a request, as SigV4 signers build it (see ``sigv4``'s theory of
operation): path, query, signed headers and payload hash. Pure functions of the request parts."""

from __future__ import annotations

import functools
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
        # A name maps to its one value, or to a list when the header is repeated (rare): a
        # list per header would cost more than the rest of the map.
        raw: dict[bytes, bytes | str | list[bytes | str]] = {}
        for name, value in headers:
            key = name.lower() if isinstance(name, bytes) else name_bytes(name)
            if key in raw:
                existing = raw[key]
                raw[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
            else:
                raw[key] = value
        self._raw = raw

    def first(self, name: bytes) -> str | None:
        value = self._raw.get(name)
        if isinstance(value, list):
            value = value[0]
        return value.decode("latin-1") if isinstance(value, bytes) else value

    def canonical(self, name: bytes) -> str:
        """The values of header ``name`` (lower case), whitespace runs collapsed, joined by ","."""
        value = self._raw.get(name)
        if value is None:
            return ""
        if isinstance(value, list):
            return ",".join(
                " ".join((v.decode("latin-1") if isinstance(v, bytes) else v).split())
                for v in value
            )
        return " ".join((value.decode("latin-1") if isinstance(value, bytes) else value).split())


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


@functools.lru_cache(maxsize=256)
def signed_header_names(signed_headers: str) -> tuple[tuple[str, bytes], ...]:
    """The names in a SignedHeaders value, each with the header key it looks up.

    A client sends the same SignedHeaders on every request, so the split is remembered; the
    value is public, and the header values themselves are read from each request.
    """
    return tuple((name, name_bytes(name)) for name in signed_headers.split(";"))


def canonical_headers(signed_names: tuple[tuple[str, bytes], ...], hmap: Headers) -> str:
    canonical = hmap.canonical
    return "".join([f"{name}:{canonical(key)}\n" for name, key in signed_names])


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
