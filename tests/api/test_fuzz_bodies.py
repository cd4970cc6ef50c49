"""Generated and mutated request bodies against a live server: a 200 or an AWS 4xx, never a 5xx.

Bodies are built from botocore's service model (the members each operation takes, mostly of
the right type, sometimes of any type), then some are mutated as text: a member set to a
literal Python's decoder accepts but JSON does not (NaN, Infinity), a number no integer type
holds, deep nesting, a huge string, an unpaired surrogate, a cut-off body. Every operation of
the model is sent, including those the server does not implement.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import urlsplit

import botocore.session
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.server import start_server

MODEL = botocore.session.get_session().get_service_model("secretsmanager")
OPERATIONS = sorted(MODEL.operation_names) + ["NoSuchOperation"]
KNOWN_SECRET = "fuzz/known"
SECRET_IDS = [KNOWN_SECRET, "fuzz/other", "arn:aws:secretsmanager:us-east-1:123456789012:x"]

RAW_LITERALS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "1e-999",
    "9" * 5000,  # beyond Python's default int digit limit
    "9" * 400,
    "-0",
    "7.0",
    "7.5",
    "null",
    '"\\ud800"',
    '"\\udfff\\ud800"',
    '"\\ud83d\\ude00"',
    '"' + "x" * 70_000 + '"',
    "[" * 5000 + "]" * 5000,
    '{"a":' * 3000 + "1" + "}" * 3000,
    "[]",
    "{}",
    '""',
    "true",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # includes NaN and the infinities, which json.dumps writes as literals
    st.text(max_size=40),
    st.sampled_from(["\ud800", "a\udfffb", "\x00", "\u2028", "AWSCURRENT", "AWSPENDING"]),
)
any_json = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _for_shape(shape, depth: int = 0) -> st.SearchStrategy:
    """Values of the shape's type most of the time, anything at all now and then."""
    if depth > 3:
        return any_json
    kind = shape.type_name
    if kind == "string":
        typed = st.one_of(
            st.sampled_from(SECRET_IDS),
            st.text(min_size=shape.metadata.get("min", 0), max_size=80),
            st.uuids().map(str),
        )
    elif kind in ("integer", "long"):
        typed = st.integers(min_value=-5, max_value=5000) | st.integers()
    elif kind == "boolean":
        typed = st.booleans()
    elif kind == "timestamp":
        typed = st.floats(allow_nan=False, allow_infinity=False) | st.integers()
    elif kind == "blob":
        typed = st.sampled_from(["dmFsdWU=", "not base64!", ""])
    elif kind == "list":
        typed = st.lists(_for_shape(shape.member, depth + 1), max_size=4)
    elif kind == "map":
        typed = st.dictionaries(st.text(max_size=8), _for_shape(shape.value, depth + 1), max_size=3)
    elif kind == "structure":
        typed = _members(shape, depth + 1)
    else:
        typed = any_json
    return st.one_of(typed, typed, typed, any_json)


def _members(shape, depth: int = 0) -> st.SearchStrategy:
    names = list(shape.members)
    if not names:
        return st.dictionaries(st.text(max_size=8), any_json, max_size=2)
    return st.fixed_dictionaries(
        {},
        optional={name: _for_shape(shape.members[name], depth) for name in names},
    )


@st.composite
def requests(draw) -> tuple[str, bytes]:
    operation = draw(st.sampled_from(OPERATIONS))
    if operation in MODEL.operation_names and MODEL.operation_model(operation).input_shape:
        members = draw(_members(MODEL.operation_model(operation).input_shape))
        names = list(MODEL.operation_model(operation).input_shape.members)
    else:
        members = draw(st.dictionaries(st.text(max_size=8), any_json, max_size=3))
        names = ["SecretId"]
    text = json.dumps(members)
    mutation = draw(st.sampled_from(["none", "none", "literal", "literal", "cut", "bytes"]))
    if mutation == "literal":
        name = draw(st.sampled_from(names) | st.text(max_size=6))
        literal = draw(st.sampled_from(RAW_LITERALS))
        member = f"{json.dumps(name)}:{literal}"
        text = "{" + member + ("," + text[1:] if text != "{}" else "}")
    body = text.encode("utf-8", "surrogatepass")
    if mutation == "cut":
        body = body[: draw(st.integers(min_value=0, max_value=len(body)))]
    elif mutation == "bytes":
        at = draw(st.integers(min_value=0, max_value=len(body)))
        body = body[:at] + draw(st.binary(min_size=1, max_size=4)) + body[at:]
    return operation, body


@pytest.fixture(scope="module")
def unsigned_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("fuzz"), "--no-auth")
    url = urlsplit(server.endpoint_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    yield server, conn
    conn.close()
    server.stop()


def _post(conn: http.client.HTTPConnection, operation: str, body: bytes):
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"secretsmanager.{operation}",
    }
    for attempt in (1, 2):
        try:
            conn.request("POST", "/", body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        except (ConnectionError, http.client.HTTPException):
            # The server may close after an error answer; a fresh connection, once.
            conn.close()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@pytest.mark.slow
def test_any_body_to_any_operation_gets_200_or_an_aws_4xx(unsigned_server):
    server, conn = unsigned_server
    status, _ = _post(
        conn,
        "CreateSecret",
        json.dumps(
            {"Name": KNOWN_SECRET, "SecretString": "v", "ClientRequestToken": "t" * 32}
        ).encode(),
    )
    assert status == 200

    @settings(
        max_examples=250,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=requests())
    def check(request):
        operation, body = request
        status, payload = _post(conn, operation, body)
        assert status < 500, (status, payload[:300])
        if status != 200:
            assert 400 <= status < 500, status
            error = json.loads(payload)
            assert isinstance(error.get("__type"), str) and error["__type"], error
            assert isinstance(error.get("Message"), str), error

    check()
    assert "Traceback" not in server.log_text()
    assert "internal error" not in server.log_text()
