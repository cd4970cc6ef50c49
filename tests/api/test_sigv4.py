"""SigV4 verification against requests signed by botocore itself."""

from __future__ import annotations

import calendar
import hashlib
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretsd.api.canonical import CONTENT_SHA256_MISMATCH
from secretsd.api.sigv4 import (
    HOST_NOT_SIGNED,
    INVALID_TOKEN,
    MISSING_TOKEN,
    REQUEST_EXPIRED,
    SIGNATURE_MISMATCH,
    SigV4Verifier,
)
from secretsd.model.errors import (
    AccessDenied,
    AuthError,
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    UnrecognizedClient,
)

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CREDS = Credentials(ACCESS_KEY, SECRET_KEY)
ENDPOINT = "http://127.0.0.1:8080"
JSON = "application/x-amz-json-1.1"


@dataclass
class Wire:
    """A request as the server receives it: raw target, headers in arrival order, body."""

    method: str
    path: bytes
    query: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    signed_at: float

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == name.lower().encode():
                return value.decode("latin-1")
        raise KeyError(name)

    def replace_header(self, name: str, value: str) -> Wire:
        lname = name.lower().encode()
        headers = [(k, value.encode("latin-1") if k == lname else v) for k, v in self.headers]
        return Wire(self.method, self.path, self.query, headers, self.body, self.signed_at)

    def without_header(self, name: str) -> Wire:
        lname = name.lower().encode()
        headers = [(k, v) for k, v in self.headers if k != lname]
        return Wire(self.method, self.path, self.query, headers, self.body, self.signed_at)


def to_wire(request: AWSRequest) -> Wire:
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    headers = [(b"host", parts.netloc.encode())]
    # The request's own headers keep repeats; preparing adds Content-Length.
    items = list(request.headers.items())
    names = {name.lower() for name, _ in items}
    items += [(k, v) for k, v in prepared.headers.items() if k.lower() not in names]
    for name, value in items:
        raw = value if isinstance(value, bytes) else value.encode("latin-1")
        headers.append((name.lower().encode(), raw))
    body = prepared.body or b""
    if isinstance(body, str):
        body = body.encode()
    amz_date = dict(headers).get(b"x-amz-date")
    if amz_date is None:
        amz_date = dict(
            pair.split("=", 1) for pair in parts.query.split("&") if pair.startswith("X-Amz-Date=")
        )["X-Amz-Date"].encode()
    signed_at = calendar.timegm(time.strptime(amz_date.decode(), "%Y%m%dT%H%M%SZ"))
    return Wire(
        prepared.method, parts.path.encode(), parts.query.encode(), headers, body, signed_at
    )


def sign(
    body: bytes = b'{"SecretId": "prod/db"}',
    path: str = "/",
    query: str = "",
    headers: dict[str, str] | None = None,
    method: str = "POST",
    region: str = "us-east-1",
    service: str = "secretsmanager",
    credentials: Credentials = CREDS,
    params: dict[str, str] | None = None,
) -> Wire:
    url = ENDPOINT + path + (f"?{query}" if query else "")
    all_headers = {"Content-Type": JSON, "X-Amz-Target": "secretsmanager.GetSecretValue"}
    all_headers.update(headers or {})
    request = AWSRequest(method=method, url=url, data=body, headers=all_headers, params=params)
    SigV4Auth(credentials, service, region).add_auth(request)
    return to_wire(request)


def presign(
    query: str = "Action=GetSecretValue&SecretId=prod%2Fdb",
    expires: int = 60,
    credentials: Credentials = CREDS,
    body: bytes = b"",
) -> Wire:
    request = AWSRequest(method="GET", url=f"{ENDPOINT}/?{query}", data=body)
    SigV4QueryAuth(credentials, "secretsmanager", "eu-west-1", expires=expires).add_auth(request)
    return to_wire(request)


def verifier(
    at: float, keys: dict[str, str] | None = None, region: str | None = None
) -> SigV4Verifier:
    keys = {ACCESS_KEY: SECRET_KEY} if keys is None else keys
    return SigV4Verifier(keys.get, region=region, clock=lambda: at)


def check(wire: Wire, at: float | None = None, keys: dict[str, str] | None = None):
    now = wire.signed_at if at is None else at
    return verifier(now, keys).verify(wire.method, wire.path, wire.query, wire.headers, wire.body)


def fails(wire: Wire, error: type[AuthError], at: float | None = None) -> AuthError:
    with pytest.raises(error) as caught:
        check(wire, at)
    assert caught.value.status == 403
    return caught.value


def fmt(epoch: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


# --- requests that must verify -------------------------------------------------------------


def test_request_sent_by_a_boto3_client_verifies():
    captured = []

    def stop(request, **_):
        captured.append(request)
        raise RuntimeError("captured")

    client = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name="ap-south-1"
    ).client("secretsmanager", endpoint_url=ENDPOINT)
    client.meta.events.register("before-send", stop)
    with pytest.raises(RuntimeError):
        client.get_secret_value(SecretId="prod/db/password")
    request = captured[0]
    parts = urlsplit(request.url)
    headers = [(b"host", parts.netloc.encode())] + [
        (k.lower().encode(), v if isinstance(v, bytes) else v.encode())
        for k, v in request.headers.items()
    ]
    amz_date = dict(headers)[b"x-amz-date"].decode()
    now = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    result = verifier(now).verify("POST", parts.path, parts.query, headers, request.body)
    assert result.access_key_id == ACCESS_KEY
    assert result.region == "ap-south-1"
    assert result.signed_at == now
    assert result.presigned is False


@pytest.mark.parametrize(
    "body",
    [b"", b"{}", b'{"SecretId": "a", "SecretString": "\xc3\xa9\\n"}', bytes(range(256)) * 40],
)
def test_bodies_verify(body):
    assert check(sign(body=body)).access_key_id == ACCESS_KEY


@pytest.mark.parametrize(
    "path",
    ["/", "/a/b", "/a%20b/c", "/a/./b/../c", "//double//slash/", "/~user/%E2%9C%93", "/x/.."],
)
def test_paths_verify(path):
    check(sign(path=path))


@pytest.mark.parametrize(
    "query",
    [
        "a=1&b=2",
        "b=2&a=1",
        "x=%2Fy&x=%2Fa",
        "empty=&flag",
        "sp=a%20b&tilde=~&plus=%2B",
        "z=%e2%9c%93",
        "a=1&&b=2",
        "Action=GetSecretValue&X-Amz-Signature=not-ours",
    ],
)
def test_query_strings_verify(query):
    check(sign(query=query))


def test_query_given_as_params_verifies():
    check(sign(params={"b": "two words", "a": "ü/?&=", "c": ""}))


def test_header_casing_whitespace_and_repeats_verify():
    wire = sign(
        headers={
            "X-CUSTOM-Header": "  spaced    out\tvalue  ",
            "x-lower": "v",
        }
    )
    check(wire)
    request = AWSRequest(method="POST", url=ENDPOINT + "/", data=b"{}")
    request.headers["X-Multi"] = "first"
    request.headers["X-Multi"] = "  second  value"
    SigV4Auth(CREDS, "secretsmanager", "us-east-1").add_auth(request)
    repeated = to_wire(request)
    assert [k for k, _ in repeated.headers].count(b"x-multi") == 2
    check(repeated)


def test_headers_arriving_as_text_verify():
    wire = sign()
    headers = [(k.decode().title(), v.decode("latin-1")) for k, v in wire.headers]
    result = verifier(wire.signed_at).verify(
        "post", wire.path.decode(), wire.query.decode(), headers, wire.body
    )
    assert result.access_key_id == ACCESS_KEY


def test_date_header_instead_of_x_amz_date_verifies():
    request = AWSRequest(method="POST", url=ENDPOINT + "/", data=b"{}", headers={"Date": "x"})
    SigV4Auth(CREDS, "secretsmanager", "us-east-1").add_auth(request)
    wire = to_wire_with_date_header(request)
    check(wire)


def to_wire_with_date_header(request: AWSRequest) -> Wire:
    prepared = request.prepare()
    assert "X-Amz-Date" not in prepared.headers
    parts = urlsplit(prepared.url)
    headers = [(b"host", parts.netloc.encode())] + [
        (k.lower().encode(), v.encode()) for k, v in prepared.headers.items()
    ]
    from email.utils import parsedate_to_datetime

    signed_at = parsedate_to_datetime(prepared.headers["Date"]).timestamp()
    return Wire("POST", parts.path.encode(), b"", headers, prepared.body, signed_at)


def test_declared_payload_hash_verifies_and_guards_the_body():
    body = b'{"SecretId": "x"}'
    wire = sign(body=body, headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    check(wire)
    tampered = Wire(wire.method, wire.path, wire.query, wire.headers, b"{}", wire.signed_at)
    assert fails(tampered, InvalidSignature).message == CONTENT_SHA256_MISMATCH


def test_unsigned_payload_is_refused_in_a_header_signed_request():
    # Were it accepted, a captured request could be replayed with any body it liked.
    request = AWSRequest(method="POST", url="https://sm.example/", data=b'{"a": 1}')
    request.context["payload_signing_enabled"] = False
    SigV4Auth(CREDS, "secretsmanager", "us-east-1").add_auth(request)
    wire = to_wire(request)
    assert wire.header("x-amz-content-sha256") == "UNSIGNED-PAYLOAD"
    assert fails(wire, InvalidSignature).message == SIGNATURE_MISMATCH
    other = Wire(wire.method, wire.path, wire.query, wire.headers, b"other", wire.signed_at)
    assert fails(other, InvalidSignature).message == SIGNATURE_MISMATCH


def test_presigned_url_signed_with_unsigned_payload_verifies():
    request = AWSRequest(method="GET", url="https://sm.example/?Action=GetSecretValue", data=b"")
    request.context["payload_signing_enabled"] = False
    SigV4QueryAuth(CREDS, "secretsmanager", "us-east-1", expires=60).add_auth(request)
    wire = to_wire(request)
    assert check(wire).presigned
    declared = [*wire.headers, (b"x-amz-content-sha256", b"UNSIGNED-PAYLOAD")]
    with_header = Wire(wire.method, wire.path, wire.query, declared, b"", wire.signed_at)
    assert check(with_header).presigned


def test_endpoint_region_verifies_and_another_region_fails():
    ok = sign(region="us-east-1")
    v = verifier(ok.signed_at, region="us-east-1")
    assert v.verify(ok.method, ok.path, ok.query, ok.headers, ok.body).region == "us-east-1"
    for wire in (sign(region="eu-west-1"), presign()):
        with pytest.raises(InvalidSignature) as caught:
            v.verify(wire.method, wire.path, wire.query, wire.headers, wire.body)
        assert caught.value.status == 403
        assert caught.value.message == (
            "Credential should be scoped to a valid region, not 'eu-west-1'. "
        )


def test_replay_within_the_window_verifies_and_region_is_recorded():
    wire = sign(region="eu-central-1")
    v = verifier(wire.signed_at + 299)
    for _ in range(3):
        result = v.verify(wire.method, wire.path, wire.query, wire.headers, wire.body)
        assert result.region == "eu-central-1"


def test_one_verifier_serves_many_regions_and_keys():
    other = Credentials("AKIAOTHERKEY00000000", "another-secret-access-key-of-forty-chars")
    keys = {ACCESS_KEY: SECRET_KEY, other.access_key: other.secret_key}
    a = sign(region="us-west-2")
    b = sign(region="sa-east-1", credentials=other)
    v = verifier(a.signed_at, keys)
    assert v.verify(a.method, a.path, a.query, a.headers, a.body).region == "us-west-2"
    result = v.verify(b.method, b.path, b.query, b.headers, b.body)
    assert (result.access_key_id, result.region) == (other.access_key, "sa-east-1")


def test_a_changed_secret_takes_effect_despite_the_key_cache():
    keys = {ACCESS_KEY: SECRET_KEY}
    wire = sign()
    v = SigV4Verifier(keys.get, region="us-east-1", clock=lambda: wire.signed_at)
    v.verify(wire.method, wire.path, wire.query, wire.headers, wire.body)
    keys[ACCESS_KEY] = "a-different-secret"
    with pytest.raises(InvalidSignature):
        v.verify(wire.method, wire.path, wire.query, wire.headers, wire.body)


# --- tampering ---------------------------------------------------------------------------------


def test_changed_body_fails():
    wire = sign(body=b'{"SecretId": "prod/db"}')
    tampered = Wire(wire.method, wire.path, wire.query, wire.headers, b'{"SecretId": "prod/dc"}', 0)
    assert fails(tampered, InvalidSignature, wire.signed_at).message == SIGNATURE_MISMATCH


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x-amz-target", "secretsmanager.DeleteSecret"),
        ("content-type", "application/json"),
        ("host", "127.0.0.1:8081"),
    ],
)
def test_changed_signed_header_fails(name, value):
    wire = sign().replace_header(name, value)
    assert fails(wire, InvalidSignature).message == SIGNATURE_MISMATCH


def test_unsigned_headers_may_change():
    wire = sign().replace_header("content-length", "23").replace_header("user-agent", "x")
    wire.headers.append((b"x-added-later", b"1"))
    check(wire)


def test_changed_path_query_or_method_fails():
    wire = sign(path="/a", query="a=1")
    for changed in (
        Wire(wire.method, b"/b", wire.query, wire.headers, wire.body, wire.signed_at),
        Wire(wire.method, wire.path, b"a=2", wire.headers, wire.body, wire.signed_at),
        Wire("PUT", wire.path, wire.query, wire.headers, wire.body, wire.signed_at),
    ):
        assert fails(changed, InvalidSignature).message == SIGNATURE_MISMATCH


def test_changed_time_within_the_day_fails():
    wire = sign()
    moved = wire.signed_at + 1
    assert fails(
        wire.replace_header("x-amz-date", fmt(moved)), InvalidSignature, moved
    ).message == (SIGNATURE_MISMATCH)


def test_date_outside_the_credential_scope_fails():
    wire = sign()
    next_day = wire.signed_at + 86400
    error = fails(wire.replace_header("x-amz-date", fmt(next_day)), InvalidSignature, next_day)
    scope_date = fmt(wire.signed_at)[:8]
    assert error.message == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        f"HTTP: '{scope_date}' != '{fmt(next_day)[:8]}', from '{fmt(next_day)}'."
    )


def test_wrong_secret_fails():
    wire = sign(credentials=Credentials(ACCESS_KEY, "not-the-secret"))
    assert fails(wire, InvalidSignature).message == SIGNATURE_MISMATCH


def test_unknown_access_key_fails():
    wire = sign(credentials=Credentials("AKIAUNKNOWN000000000", SECRET_KEY))
    error = fails(wire, UnrecognizedClient)
    assert (error.code, error.message) == ("UnrecognizedClientException", INVALID_TOKEN)


def test_other_service_in_scope_fails():
    error = fails(sign(service="sts"), InvalidSignature)
    assert error.message == "Credential should be scoped to correct service: 'secretsmanager'. "


def test_invalid_region_in_scope_fails():
    error = fails(sign(region="Not A Region"), InvalidSignature)
    assert error.message == "Credential should be scoped to a valid region, not 'Not A Region'. "


def test_changed_signature_fails():
    wire = sign()
    auth = wire.header("authorization")
    last = auth[-1]
    forged = auth[:-1] + ("0" if last != "0" else "1")
    assert fails(wire.replace_header("authorization", forged), InvalidSignature).message == (
        SIGNATURE_MISMATCH
    )
    non_ascii = auth[: auth.index("Signature=") + 10] + "é" * 64
    fails(wire.replace_header("authorization", non_ascii), InvalidSignature)


def test_host_must_be_signed():
    wire = sign()
    auth = wire.header("authorization").replace("content-type;host;", "content-type;")
    assert fails(wire.replace_header("authorization", auth), InvalidSignature).message == (
        HOST_NOT_SIGNED
    )


# --- time ----------------------------------------------------------------------------------


def test_stale_request_fails_with_aws_message():
    wire = sign()
    now = wire.signed_at + 301
    error = fails(wire, InvalidSignature, now)
    assert error.message == (
        f"Signature expired: {fmt(wire.signed_at)} is now earlier than {fmt(now - 300)} "
        f"({fmt(now)} - 5 min.)"
    )


def test_future_request_fails_with_aws_message():
    wire = sign()
    now = wire.signed_at - 301
    error = fails(wire, InvalidSignature, now)
    assert error.message == (
        f"Signature not yet current: {fmt(wire.signed_at)} is still later than "
        f"{fmt(now + 300)} ({fmt(now)} + 5 min.)"
    )


def test_skew_up_to_five_minutes_either_way_verifies():
    wire = sign()
    check(wire, wire.signed_at + 300)
    check(wire, wire.signed_at - 300)


def test_malformed_date_fails():
    wire = sign().replace_header("x-amz-date", "2024-01-01T00:00:00Z")
    error = fails(wire, IncompleteSignature)
    assert error.message == (
        "Date must be in ISO-8601 'basic format'. Got '2024-01-01T00:00:00Z'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )
    fails(sign().replace_header("x-amz-date", "20241301T000000Z"), IncompleteSignature)


# --- malformed or missing authentication -----------------------------------------------------


def test_no_authentication_at_all():
    wire = sign().without_header("authorization")
    error = fails(wire, MissingAuthenticationToken)
    assert (error.code, error.message) == ("MissingAuthenticationTokenException", MISSING_TOKEN)


def test_authorization_of_another_scheme_lists_what_is_missing():
    wire = sign().replace_header("authorization", "Bearer abc.def")
    assert fails(wire, IncompleteSignature).message == (
        "Authorization header requires 'Credential' parameter. "
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        "Authorization=Bearer abc.def"
    )


def test_missing_parts_and_date_are_listed():
    auth = (
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20240101/us-east-1/secretsmanager/aws4_request"
    )
    wire = sign().replace_header("authorization", auth).without_header("x-amz-date")
    assert fails(wire, IncompleteSignature).message == (
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        f"Authorization={auth}"
    )


def test_component_without_equal_sign():
    wire = sign()
    auth = wire.header("authorization").replace("SignedHeaders=", "SignedHeaders ")
    error = fails(wire.replace_header("authorization", auth), IncompleteSignature)
    assert error.message.startswith("'SignedHeaders content-type;host;")
    assert error.message.endswith(f"(missing equal-sign) in Authorization header: '{auth}'.")


def test_credential_with_wrong_number_of_elements():
    wire = sign()
    auth = wire.header("authorization").replace("/us-east-1/", "/")
    error = fails(wire.replace_header("authorization", auth), IncompleteSignature)
    credential = auth.split("Credential=")[1].split(",")[0]
    assert error.message == (
        "Credential must have exactly 5 slash-delimited elements, "
        f"e.g. keyid/date/region/service/term, got '{credential}'"
    )


def test_wrong_terminator():
    wire = sign()
    auth = wire.header("authorization").replace("/aws4_request", "/aws5_request")
    error = fails(wire.replace_header("authorization", auth), InvalidSignature)
    assert error.message == (
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. "
    )


# --- presigned URLs ----------------------------------------------------------------------------


def test_presigned_url_verifies_until_it_expires():
    wire = presign(expires=60)
    result = check(wire)
    assert (result.presigned, result.region) == (True, "eu-west-1")
    check(wire, wire.signed_at + 60)
    error = fails(wire, AccessDenied, wire.signed_at + 61)
    assert (error.code, error.message) == ("AccessDeniedException", REQUEST_EXPIRED)


def test_presigned_url_from_the_future_fails():
    wire = presign()
    error = fails(wire, InvalidSignature, wire.signed_at - 301)
    assert error.message.startswith(f"Signature not yet current: {fmt(wire.signed_at)}")


def test_presigned_url_with_session_token_verifies():
    wire = presign(credentials=Credentials(ACCESS_KEY, SECRET_KEY, "session/token+=="))
    assert b"X-Amz-Security-Token=" in wire.query
    check(wire)


def test_presigned_url_tampering_fails():
    wire = presign()
    for query in (
        wire.query.replace(b"prod%2Fdb", b"prod%2Fdc"),
        wire.query.replace(b"X-Amz-Expires=60", b"X-Amz-Expires=600"),
        wire.query[:-1] + (b"0" if wire.query[-1:] != b"0" else b"1"),
    ):
        changed = Wire(wire.method, wire.path, query, wire.headers, wire.body, wire.signed_at)
        assert fails(changed, InvalidSignature).message == SIGNATURE_MISMATCH
    with_body = Wire(wire.method, wire.path, wire.query, wire.headers, b"x", wire.signed_at)
    fails(with_body, InvalidSignature)


def test_presigned_url_missing_parameters():
    wire = presign()
    query = b"&".join(p for p in wire.query.split(b"&") if not p.startswith(b"X-Amz-Credential"))
    changed = Wire(wire.method, wire.path, query, wire.headers, wire.body, wire.signed_at)
    assert fails(changed, IncompleteSignature).message == (
        "AWS query-string parameters must include 'X-Amz-Credential'. "
        "Re-examine the query-string parameters."
    )


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        (b"soon", "X-Amz-Expires should be a number"),
        (b"-1", "X-Amz-Expires must be non-negative"),
        (b"604801", "X-Amz-Expires must be less than a week (in seconds) that is 604800"),
    ],
)
def test_presigned_url_bad_expiry(expires, message):
    wire = presign()
    query = wire.query.replace(b"X-Amz-Expires=60", b"X-Amz-Expires=" + expires)
    changed = Wire(wire.method, wire.path, query, wire.headers, wire.body, wire.signed_at)
    assert fails(changed, IncompleteSignature).message == message


# --- properties ----------------------------------------------------------------------------------

segment = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(min_size=1, max_size=300),
    path=st.lists(segment, max_size=3),
    params=st.dictionaries(segment, st.text(max_size=8), max_size=4),
    header_value=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
    flip=st.integers(min_value=0),
    delta=st.integers(min_value=1, max_value=255),
)
def test_any_botocore_signed_request_verifies_and_any_body_byte_change_fails(
    body, path, params, header_value, flip, delta
):
    from urllib.parse import quote

    raw_path = "/" + "/".join(quote(part, safe="") for part in path)
    wire = sign(body=body, path=raw_path, params=params, headers={"X-Extra": header_value})
    check(wire)
    index = flip % len(body)
    changed = bytearray(body)
    changed[index] = (changed[index] + delta) % 256
    tampered = Wire(wire.method, wire.path, wire.query, wire.headers, bytes(changed), 0)
    with pytest.raises(InvalidSignature):
        check(tampered, wire.signed_at)


@settings(max_examples=300, deadline=None)
@given(
    authorization=st.one_of(
        st.none(),
        st.text(max_size=60),
        st.builds(
            lambda cred, rest: f"AWS4-HMAC-SHA256 Credential={cred}, {rest}",
            st.text(max_size=40),
            st.text(max_size=40),
        ),
    ),
    query=st.binary(max_size=60),
    path=st.binary(max_size=30),
    header_bytes=st.binary(max_size=30),
    amz_date=st.one_of(st.none(), st.text(max_size=20)),
)
def test_arbitrary_input_gets_an_auth_error_never_a_crash(
    authorization, query, path, header_bytes, amz_date
):
    headers: list[tuple[bytes | str, bytes | str]] = [(b"host", header_bytes), ("x-odd", "é")]
    if authorization is not None:
        headers.append(("Authorization", authorization))
    if amz_date is not None:
        headers.append(("X-Amz-Date", amz_date))
    presigned_query = query + b"&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + query
    for q in (query, presigned_query):
        with pytest.raises(AuthError):
            verifier(1.7e9).verify("POST", path, q, headers, b"")


@settings(max_examples=300, deadline=None)
@given(
    target=st.sampled_from(["authorization", "x-amz-date", "host", "query", "path"]),
    position=st.integers(min_value=0),
    replacement=st.binary(min_size=0, max_size=3),
    presigned=st.booleans(),
)
def test_mutated_signed_requests_verify_or_get_an_auth_error(
    target, position, replacement, presigned
):
    wire = presign() if presigned else sign(path="/a/b", query="x=1&y=%2F")
    if target == "query":
        original = wire.query
    elif target == "path":
        original = wire.path
    else:
        original = dict(wire.headers).get(target.encode(), b"")
    index = position % (len(original) + 1)
    mutated = original[:index] + replacement + original[index + 1 :]
    query, path, headers = wire.query, wire.path, wire.headers
    if target == "query":
        query = mutated
    elif target == "path":
        path = mutated
    else:
        headers = [(k, mutated if k == target.encode() else v) for k, v in headers]
    try:
        result = verifier(wire.signed_at).verify(wire.method, path, query, headers, wire.body)
    except AuthError:
        return
    assert result.access_key_id == ACCESS_KEY


def test_raw_non_ascii_path_verifies_as_bytes_or_latin1_text():
    request = AWSRequest(method="POST", url=ENDPOINT + "/caf\u00e9/x", data=b"{}")
    SigV4Auth(CREDS, "secretsmanager", "us-east-1").add_auth(request)
    wire = to_wire(request)
    raw = "/caf\u00e9/x".encode()
    v = verifier(wire.signed_at)
    assert v.verify("POST", raw, b"", wire.headers, wire.body).access_key_id == ACCESS_KEY
    v.verify("POST", raw.decode("latin-1"), "", wire.headers, wire.body)
