"""AWS Signature Version 4 verification for the Secrets Manager API.

Theory of operation
-------------------
A client signs a request by hashing a canonical form of it (method, path, query, the headers it
chose, a payload hash) into a string-to-sign and HMAC-ing that with a key derived from its secret
access key, the date, the region and the service. We rebuild the same canonical form from what
arrived, derive the same key from our copy of the secret and compare.

The canonical form has to match the client's byte for byte, and botocore is the reference:

- path: the raw, still percent-encoded path with empty and dot segments removed, then
  percent-encoded once more ("%20" becomes "%2520"), keeping "/" and "~".
- query: the raw query split on "&", each pair split at its first "=", pairs sorted and joined
  again without re-encoding. A client whose wire encoding differs from what it signed (botocore
  signs a space in ``params`` as "%20" but sends "+") gets a second try with every name and value
  decoded and re-encoded the RFC 3986 way; that costs only on the failure path.
- headers: the names listed in SignedHeaders, values with runs of whitespace collapsed, repeated
  headers joined with ",".
- payload: X-Amz-Content-SHA256 when present (checked against the body), otherwise the SHA-256
  of the body. UNSIGNED-PAYLOAD counts only for a presigned URL, which may have been signed with
  it; a header-signed request that declares it is verified against its body's real hash, so its
  signature fails: a signed body is what keeps a captured request from carrying another body.
- scope: the region must be this endpoint's and the service one this verifier serves
  (``secretsmanager``; ``iam`` and ``sts`` for the Query protocol).

A request may be replayed within its validity window: the same signed request verifies again, as
on AWS. Derived signing keys are cached per (access key, secret, date, region), as HMACs already
keyed with them, because deriving one costs four HMACs and changes at most once a day per
client. Nothing about a request is cached: each one is canonicalised, hashed and signed anew.

Nothing here does I/O: the caller passes the request parts, a secret lookup and a clock.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from secretsd.api.canonical import (
    Header,
    Headers,
    canonical_headers,
    canonical_path,
    payload_candidates,
    query_candidates,
    signed_header_names,
)
from secretsd.model.errors import (
    AccessDenied,
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    UnrecognizedClient,
)

SERVICE = "secretsmanager"
ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
MAX_PRESIGNED_EXPIRES = 604800  # one week, AWS's ceiling for presigned URLs

# Messages as the real service words them.
MISSING_TOKEN = "Missing Authentication Token"
INVALID_TOKEN = "The security token included in the request is invalid."
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)
REQUEST_EXPIRED = "Request has expired"
HOST_NOT_SIGNED = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."

_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_REGION = re.compile(r"[a-z0-9-]{1,32}")
_KEY_CACHE_LIMIT = 4096
_QUERY_AUTH_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
)


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """Who signed a request that verified, and in which region's scope."""

    access_key_id: str
    region: str
    signed_at: float
    presigned: bool
    # The service of the credential scope, and what the key lookup returned for the key.
    service: str = SERVICE
    credential: object = None


@dataclass(slots=True)
class _Parsed:
    """The signature parts of a request, whichever form carried them."""

    credential: str
    signed_headers: str
    signature: str
    amz_date: str
    presigned: bool
    expires: int = 0


class SigV4Verifier:
    """Checks SigV4 signatures of requests to the ``secretsmanager`` service (or others).

    ``lookup_secret`` maps an access key id to its secret access key, or None when unknown;
    or to a ``(secret, credential)`` pair, whose credential the ``VerifiedRequest`` carries
    (so the principal a key stands for is read with its secret, in one lookup).
    ``services`` names the services a credential scope may name; the first is the one
    messages name.
    ``region`` is the region this endpoint serves: a request signed for another is refused,
    as AWS refuses it, so a client pointed at the wrong region learns so at once. Only a
    verifier shared by several regional endpoints passes None, and must say so.
    ``clock`` returns the current time in seconds since the epoch.
    """

    def __init__(
        self,
        lookup_secret: Callable[[str], str | tuple[str, object] | None],
        *,
        region: str | None,
        clock: Callable[[], float] = time.time,
        max_skew: int = 300,
        service: str = SERVICE,
        services: tuple[str, ...] | None = None,
    ) -> None:
        self._lookup = lookup_secret
        self._clock = clock
        self._max_skew = max_skew
        self._services = services or (service,)
        self._service = self._services[0]
        self._region = region
        # This endpoint's own region, when well formed, is accepted without the pattern.
        self._valid_region = region if region is not None and _REGION.fullmatch(region) else None
        self._keys: dict[tuple[str, str, str, str, str], hmac.HMAC] = {}
        self._last_date: tuple[str, float] = ("", 0.0)

    def verify(
        self,
        method: str,
        path: str | bytes,
        query: str | bytes,
        headers: Sequence[Header],
        body: bytes,
    ) -> VerifiedRequest:
        """Verify one request or raise the 403 error AWS would return.

        ``path`` and ``query`` are the raw request target as sent, still percent-encoded
        (ASGI's ``raw_path`` and ``query_string``), as bytes or as text decoded from Latin-1.
        """
        hmap = Headers(headers)
        if isinstance(query, bytes):
            query = query.decode("latin-1")
        authorization = hmap.first(b"authorization")
        if authorization is not None:
            parsed = _parse_authorization(authorization, hmap)
            params: dict[str, str] = {}
        else:
            params = _query_params(query)
            if not any(name in params for name in _QUERY_AUTH_PARAMS):
                raise MissingAuthenticationToken(MISSING_TOKEN)
            parsed = _parse_query_auth(params)

        signed_at = self._check_time(parsed)
        access_key_id, date, region, service = self._check_scope(parsed)
        found = self._lookup(access_key_id)
        if found is None:
            raise UnrecognizedClient(INVALID_TOKEN)
        secret, credential = (found, None) if isinstance(found, str) else found

        payloads = payload_candidates(hmap, body, parsed.presigned)
        path_form = canonical_path(path)
        queries = query_candidates(query, parsed.presigned)
        signed_names = signed_header_names(parsed.signed_headers)
        if not any(name in ("host", ":authority") for name, _ in signed_names):
            raise InvalidSignature(HOST_NOT_SIGNED)
        prefix = f"{method.upper()}\n{path_form}\n"
        suffix = f"\n{canonical_headers(signed_names, hmap)}\n{parsed.signed_headers}\n"
        scope = f"{date}/{region}/{service}/{TERMINATOR}"
        key = self._signing_key(access_key_id, secret, date, region, service)
        provided = parsed.signature
        for canonical_query in queries:
            for payload in payloads:
                canonical = f"{prefix}{canonical_query}{suffix}{payload}"
                digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
                to_sign = f"{ALGORITHM}\n{parsed.amz_date}\n{scope}\n{digest}"
                mac = key.copy()
                mac.update(to_sign.encode("utf-8", "surrogatepass"))
                expected = mac.digest()
                if provided.isascii() and hmac.compare_digest(expected.hex(), provided):
                    return VerifiedRequest(
                        access_key_id, region, signed_at, parsed.presigned, service, credential
                    )
        raise InvalidSignature(SIGNATURE_MISMATCH)

    def _check_scope(self, parsed: _Parsed) -> tuple[str, str, str, str]:
        parts = parsed.credential.split("/")
        if len(parts) != 5:
            raise IncompleteSignature(
                "Credential must have exactly 5 slash-delimited elements, "
                f"e.g. keyid/date/region/service/term, got '{parsed.credential}'"
            )
        access_key_id, date, region, service, terminator = parts
        if region != self._valid_region and (
            not _REGION.fullmatch(region) or self._region not in (None, region)
        ):
            raise InvalidSignature(
                f"Credential should be scoped to a valid region, not '{region}'. "
            )
        if service not in self._services:
            raise InvalidSignature(
                f"Credential should be scoped to correct service: '{self._service}'. "
            )
        if terminator != TERMINATOR:
            raise InvalidSignature(
                f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
                f"not '{terminator}'. "
            )
        if date != parsed.amz_date[:8]:
            raise InvalidSignature(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                f"from HTTP: '{date}' != '{parsed.amz_date[:8]}', from '{parsed.amz_date}'."
            )
        return access_key_id, date, region, service

    def _check_time(self, parsed: _Parsed) -> float:
        signed_at = self._parse_amz_date(parsed.amz_date)
        now = self._clock()
        skew = self._max_skew
        if signed_at > now + skew:
            raise InvalidSignature(
                f"Signature not yet current: {parsed.amz_date} is still later than "
                f"{_format(now + skew)} ({_format(now)} + {_minutes(skew)} min.)"
            )
        if parsed.presigned:
            if now > signed_at + parsed.expires:
                raise AccessDenied(REQUEST_EXPIRED)
        elif signed_at < now - skew:
            raise InvalidSignature(
                f"Signature expired: {parsed.amz_date} is now earlier than "
                f"{_format(now - skew)} ({_format(now)} - {_minutes(skew)} min.)"
            )
        return signed_at

    def _parse_amz_date(self, amz_date: str) -> float:
        # Consecutive requests mostly carry the same second; remember the last one parsed.
        last, epoch = self._last_date
        if amz_date == last:
            return epoch
        epoch = _parse_timestamp(amz_date)
        self._last_date = (amz_date, epoch)
        return epoch

    def _signing_key(
        self, access_key_id: str, secret: str, date: str, region: str, service: str
    ) -> hmac.HMAC:
        """An HMAC keyed with the derived signing key and fed nothing yet: copies of it sign,
        without setting up the key again for every request."""
        cache_key = (access_key_id, secret, date, region, service)
        mac = self._keys.get(cache_key)
        if mac is None:
            key = ("AWS4" + secret).encode("utf-8")
            for part in (date, region, service, TERMINATOR):
                key = hmac.digest(key, part.encode("utf-8"), "sha256")
            mac = hmac.new(key, digestmod=hashlib.sha256)
            if len(self._keys) >= _KEY_CACHE_LIMIT:
                self._keys.clear()
            self._keys[cache_key] = mac
        return mac


def _request_date(hmap: Headers) -> str | None:
    amz_date = hmap.first(b"x-amz-date")
    if amz_date is not None:
        return amz_date.strip()
    date = hmap.first(b"date")
    if date is None:
        return None
    try:
        parsed = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return date.strip()  # reported as not ISO-8601 below, with the text the client sent
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime(_TIMESTAMP)


def _parse_authorization(value: str, hmap: Headers) -> _Parsed:
    scheme, _, rest = value.strip().partition(" ")
    fields: dict[str, str] = {}
    if scheme == ALGORITHM:
        for component in rest.split(","):
            component = component.strip()
            name, eq, field_value = component.partition("=")
            if not eq:
                raise IncompleteSignature(
                    f"'{component}' not a valid key=value pair (missing equal-sign) in "
                    f"Authorization header: '{value}'."
                )
            fields[name.strip()] = field_value.strip()
    amz_date = _request_date(hmap)
    credential = fields.get("Credential")
    signed_headers = fields.get("SignedHeaders")
    signature = fields.get("Signature")
    if credential and signed_headers and signature and amz_date is not None:
        return _Parsed(credential, signed_headers, signature, amz_date, presigned=False)
    # Something is missing: name everything that is, as AWS does.
    missing = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not fields.get(name)
    ]
    if amz_date is None:
        missing.append(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        )
    raise IncompleteSignature(" ".join([*missing, f"Authorization={value}"]))


def _query_params(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    if query:
        for pair in query.split("&"):
            name, _, value = pair.partition("=")
            params.setdefault(unquote(name), unquote(value))
    return params


def _parse_query_auth(params: dict[str, str]) -> _Parsed:
    missing = [name for name in _QUERY_AUTH_PARAMS if not params.get(name)]
    if missing:
        raise IncompleteSignature(
            "".join(f"AWS query-string parameters must include '{name}'. " for name in missing)
            + "Re-examine the query-string parameters."
        )
    algorithm = params["X-Amz-Algorithm"]
    if algorithm != ALGORITHM:
        raise IncompleteSignature(f"Unsupported AWS 'algorithm': '{algorithm}'")
    expires_text = params.get("X-Amz-Expires")
    if expires_text is None:
        expires = 300  # without X-Amz-Expires a presigned request lives as long as a signed one
    else:
        try:
            expires = int(expires_text)
        except ValueError:
            raise IncompleteSignature("X-Amz-Expires should be a number") from None
        if expires < 0:
            raise IncompleteSignature("X-Amz-Expires must be non-negative")
        if expires > MAX_PRESIGNED_EXPIRES:
            raise IncompleteSignature(
                "X-Amz-Expires must be less than a week (in seconds) that is "
                f"{MAX_PRESIGNED_EXPIRES}"
            )
    return _Parsed(
        credential=params["X-Amz-Credential"],
        signed_headers=params["X-Amz-SignedHeaders"],
        signature=params["X-Amz-Signature"],
        amz_date=params["X-Amz-Date"],
        presigned=True,
        expires=expires,
    )


def _parse_timestamp(amz_date: str) -> float:
    digits = amz_date[:8] + amz_date[9:15]
    if (
        len(amz_date) == 16
        and amz_date[8] == "T"
        and amz_date[15] == "Z"
        and digits.isascii()
        and digits.isdigit()
    ):
        try:
            return datetime(
                int(digits[0:4]),
                int(digits[4:6]),
                int(digits[6:8]),
                int(digits[8:10]),
                int(digits[10:12]),
                int(digits[12:14]),
                tzinfo=UTC,
            ).timestamp()
        except ValueError:
            pass
    raise IncompleteSignature(
        f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )


def _format(epoch: float) -> str:
    return time.strftime(_TIMESTAMP, time.gmtime(epoch))


def _minutes(seconds: int) -> str:
    return f"{seconds / 60:g}"
