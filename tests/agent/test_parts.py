"""Query parsing, body rendering, token reading: the pure parts of the HTTP surface."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging

import pytest

from secretsd.agent import messages, render
from secretsd.agent.backend import BackendError, BotocoreBackend, translate
from secretsd.agent.query import QueryError, parse_path_route, parse_query_route
from secretsd.agent.token import TokenError, read_token, token_matches


def test_query_route_values_are_decoded_and_last_wins():
    lookup = parse_query_route("secretId=a%2Fb+c&versionStage=X&versionStage=AWSPREVIOUS")
    assert lookup.secret_id == "a/b c"
    assert lookup.version_stage == "AWSPREVIOUS"
    assert lookup.version_id is None and lookup.refresh_now is False


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("False", False), ("0", False)],
)
def test_refresh_now_values(raw, expected):
    assert parse_query_route(f"secretId=x&refreshNow={raw}").refresh_now is expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("secretId=x&refreshNow=yes", messages.INVALID_REFRESH_NOW),
        ("secretId=x&abc=1", "unknown parameter: abc"),
        ("versionId=v", messages.MISSING_SECRET_ID_QUERY),
        ("secretId=", messages.MISSING_SECRET_ID_QUERY),
        ("", messages.MISSING_SECRET_ID_QUERY),
    ],
)
def test_query_route_errors(query, message):
    with pytest.raises(QueryError) as error:
        parse_query_route(query)
    assert error.value.message == message and error.value.status == 400


def test_path_route_keeps_the_raw_remainder():
    lookup = parse_path_route("/v1/My/Test%2F", "versionId=abc", "/v1/")
    assert lookup.secret_id == "My/Test%2F" and lookup.version_id == "abc"
    with pytest.raises(QueryError) as error:
        parse_path_route("/v1/", "", "/v1/")
    assert error.value.message == messages.MISSING_SECRET_ID_PATH
    with pytest.raises(QueryError) as error:
        parse_path_route("/v1/x", "secretId=y", "/v1/")
    assert error.value.message == "unknown parameter: secretId"


def test_success_body_field_order_and_formats():
    body = render.secret_body(
        {
            "CreatedDate": dt.datetime.fromtimestamp(1569534789.046, dt.UTC),
            "VersionStages": ["AWSCURRENT"],
            "SecretBinary": b"\x00\xffbin",
            "Name": "n",
            "ARN": "arn:x",
        }
    )
    assert body == (
        b'{"ARN":"arn:x","Name":"n","VersionId":null,"SecretBinary":"'
        + base64.b64encode(b"\x00\xffbin")
        + b'","VersionStages":["AWSCURRENT"],"CreatedDate":"1569534789.046"}'
    )


def test_created_date_whole_second_has_no_fraction():
    assert render.created_date(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)) == "1704067200"
    assert render.created_date(1569534789.5) == "1569534789.5"


def test_error_body_is_valid_json_with_the_space():
    body = render.error_body("ResourceNotFoundException", 'can\'t find "x"')
    assert body == b'{"__type":"ResourceNotFoundException", "message":"can\'t find \\"x\\""}'
    assert json.loads(body)["message"] == 'can\'t find "x"'
    assert render.error_body("InternalFailure", "anything") == b'{"__type":"InternalFailure"}'


def test_botocore_errors_translate_to_the_agents_answers():
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    client_error = ClientError(
        {
            "Error": {"Code": "ResourceNotFoundException", "Message": "gone"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "GetSecretValue",
    )
    assert (translate(client_error).status, translate(client_error).transient) == (400, False)
    server_error = ClientError(
        {
            "Error": {"Code": "InternalServiceError", "Message": "boom"},
            "ResponseMetadata": {"HTTPStatusCode": 500},
        },
        "GetSecretValue",
    )
    assert translate(server_error).transient
    timeout = translate(ReadTimeoutError(endpoint_url="http://x"))
    assert (timeout.status, timeout.body) == (504, BackendError.timeout().body)
    down = translate(EndpointConnectionError(endpoint_url="http://x"))
    assert down.body == b'{"__type":"ConnectionError", "message":"Read Error"}'
    assert down.status == 502
    internal = translate(NoCredentialsError())
    assert (internal.status, internal.body) == (500, b'{"__type":"InternalFailure"}')
    throttled = ClientError(
        {
            "Error": {"Code": "ThrottlingException", "Message": "slow down"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "GetSecretValue",
    )
    # The AWS agent's rule (secretsd.transient): a 4xx is definite, throttling included.
    assert (translate(throttled).status, translate(throttled).transient) == (400, False)


def test_a_fault_on_the_backend_path_is_logged_with_its_traceback(caplog):
    class Broken:
        def get_secret_value(self, **params):
            raise KeyError("a bug, not a backend failure")

    backend = BotocoreBackend(Broken(), 1, 5.0, lambda *_: None)
    try:
        with (
            caplog.at_level(logging.DEBUG, logger="secretsd.agent.backend"),
            pytest.raises(BackendError) as caught,
        ):
            asyncio.run(backend.get_secret_value("db/app", None, None))
    finally:
        backend.close()
    assert caught.value.status == 500 and caught.value.code == messages.INTERNAL_FAILURE
    [record] = [r for r in caplog.records if r.name == "secretsd.agent.backend"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[0] is KeyError


def test_token_from_first_set_variable_and_file(tmp_path):
    names = ["AWS_TOKEN", "AWS_SESSION_TOKEN"]
    assert read_token(names, {"AWS_SESSION_TOKEN": "b", "AWS_TOKEN": "a"}) == b"a"
    assert read_token(names, {"AWS_SESSION_TOKEN": "b"}) == b"b"
    path = tmp_path / "token"
    path.write_text("  secret-token\n")
    assert read_token(names, {"AWS_TOKEN": f"file://{path}"}) == b"secret-token"


def test_token_errors_have_the_aws_agents_text(tmp_path):
    with pytest.raises(TokenError) as error:
        read_token(["NOSUCH"], {})
    assert str(error.value) == (
        'Could not read SSRF token variable(s) ["NOSUCH"]: environment variable not found'
    )
    with pytest.raises(TokenError) as error:
        read_token(["AWS_TOKEN"], {"AWS_TOKEN": f"file://{tmp_path}/missing"})
    assert str(error.value).endswith("No such file or directory (os error 2)")


def test_empty_token_is_refused(tmp_path):
    with pytest.raises(TokenError) as error:
        read_token(["AWS_TOKEN"], {"AWS_TOKEN": ""})
    assert str(error.value).endswith("the token is empty")
    path = tmp_path / "blank"
    path.write_text(" \n")
    with pytest.raises(TokenError):
        read_token(["AWS_TOKEN"], {"AWS_TOKEN": f"file://{path}"})


def test_token_compare():
    assert token_matches(b"abc", b"abc")
    assert not token_matches(b"abd", b"abc")
    assert not token_matches(b"", b"abc")
