"""The AWS JSON 1.1 protocol seen from raw HTTP: what a client without an SDK gets back.

Requests are signed with botocore's own SigV4 signer and sent with http.client, so the
tests can send what no SDK would: unknown targets, broken JSON, stale or wrong signatures.
Whatever goes wrong, the answer is an AWS-shaped JSON error: never a 500, never a trace.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import socket
from dataclasses import dataclass
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.api.test_ops_helpers import unique_name

JSON_11 = "application/x-amz-json-1.1"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def error_code(self) -> str:
        # botocore strips a "namespace#" prefix; the spec's form has none, accept both.
        return self.json["__type"].rsplit("#", 1)[-1]

    @property
    def error_message(self) -> str:
        data = self.json
        return data.get("Message", data.get("message", ""))


@pytest.fixture
def wire(shared_server):
    """Send one request to the shared server, signed (or not) as asked."""
    creds = shared_server.session().get_credentials().get_frozen_credentials()
    good = Credentials(creds.access_key, creds.secret_key)
    url = urlsplit(shared_server.endpoint_url)

    def send(
        target: str | None,
        body: bytes | str = b"{}",
        *,
        sign: bool = True,
        credentials: Credentials | None = None,
        signed_at: dt.datetime | None = None,
        method: str = "POST",
        region: str = "us-east-1",
        unsigned_payload: bool = False,
    ) -> Reply:
        data = body.encode() if isinstance(body, str) else body
        headers = {"Content-Type": JSON_11}
        if target is not None:
            headers["X-Amz-Target"] = target
        request = AWSRequest(
            method=method, url=f"{shared_server.endpoint_url}/", data=data, headers=headers
        )
        if sign:
            signer = SigV4Auth(credentials or good, "secretsmanager", region)
            with contextlib.ExitStack() as patches:
                if signed_at is not None:
                    patches.enter_context(
                        mock.patch("botocore.auth.get_current_datetime", return_value=signed_at)
                    )
                if unsigned_payload:
                    # botocore signs every body sent over plain HTTP; this is what it sends
                    # over HTTPS when an operation turns payload signing off.
                    patches.enter_context(
                        mock.patch.object(
                            SigV4Auth, "_should_sha256_sign_payload", return_value=False
                        )
                    )
                signer.add_auth(request)
        prepared = request.prepare()
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        try:
            conn.request(method, "/", body=data, headers=dict(prepared.headers.items()))
            response = conn.getresponse()
            reply = Reply(
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            conn.close()
        assert reply.status < 500, reply
        assert b"Traceback" not in reply.body
        assert b'File "' not in reply.body
        return reply

    return send


def assert_aws_error(reply: Reply, status: int, codes: str | set[str]) -> None:
    codes = {codes} if isinstance(codes, str) else codes
    assert reply.status == status, reply
    assert reply.headers.get("x-amzn-requestid"), reply.headers
    assert reply.headers.get("content-type", "").startswith(JSON_11), reply.headers
    assert reply.error_code in codes, reply.body
    assert isinstance(reply.error_message, str)


def test_signed_request_succeeds(wire):
    reply = wire("secretsmanager.ListSecrets", "{}")
    assert reply.status == 200, reply
    assert reply.headers.get("x-amzn-requestid")
    assert reply.headers.get("content-type", "").startswith(JSON_11)
    assert isinstance(reply.json["SecretList"], list)


def test_dates_are_epoch_seconds_on_the_wire(wire, sm):
    name = unique_name("wire-dates")
    sm.create_secret(Name=name, SecretString="v")
    reply = wire("secretsmanager.DescribeSecret", json.dumps({"SecretId": name}))
    assert reply.status == 200, reply
    created = reply.json["CreatedDate"]
    assert isinstance(created, int | float) and not isinstance(created, bool)
    assert abs(created - dt.datetime.now(dt.UTC).timestamp()) < 300
    # AWS's dates have milliseconds, no finer digits.
    assert round(created, 3) == created


def test_error_body_has_type_and_message(wire):
    name = unique_name("wire-missing")
    reply = wire("secretsmanager.GetSecretValue", json.dumps({"SecretId": name}))
    assert_aws_error(reply, 400, "ResourceNotFoundException")
    assert reply.error_message == "Secrets Manager can't find the specified secret."


@pytest.mark.parametrize("target", ["secretsmanager.NoSuchOperation", "kms.ListKeys", "nonsense"])
def test_unknown_target(wire, target):
    assert_aws_error(wire(target, "{}"), 400, "UnknownOperationException")


def test_missing_target(wire):
    reply = wire(None, "{}")
    assert_aws_error(reply, 400, {"UnknownOperationException", "MissingAction"})


@pytest.mark.parametrize("body", ['{"SecretId": ', "not json at all", b"\xff\xfe{}"])
def test_malformed_json_body(wire, body):
    reply = wire("secretsmanager.DescribeSecret", body)
    assert_aws_error(reply, 400, "SerializationException")


@pytest.mark.parametrize("body", ["[1, 2]", '"text"', "null"])
def test_json_that_is_not_an_object(wire, body):
    reply = wire("secretsmanager.ListSecrets", body)
    assert_aws_error(reply, 400, {"SerializationException", "ValidationException"})


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("secretsmanager.DescribeSecret", {"SecretId": 42}),
        ("secretsmanager.ListSecrets", {"MaxResults": "ten"}),
        ("secretsmanager.ListSecrets", {"Filters": {"Key": "name"}}),
        ("secretsmanager.CreateSecret", {"Name": ["a"], "SecretString": "v"}),
        ("secretsmanager.GetRandomPassword", {"PasswordLength": 1.5}),
    ],
)
def test_wrong_member_types(wire, target, body):
    reply = wire(target, json.dumps(body))
    assert_aws_error(
        reply, 400, {"SerializationException", "ValidationException", "InvalidParameterException"}
    )


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("secretsmanager.ListSecrets", '{"Filters": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("secretsmanager.ListSecrets", '{"Tags": ' + '{"a":' * 50_000 + "1" + "}" * 50_001),
        ("secretsmanager.DeleteSecret", '{"SecretId": "x", "RecoveryWindowInDays": 1e999}'),
        ("secretsmanager.DeleteSecret", '{"SecretId": "x", "RecoveryWindowInDays": -1e999}'),
        ("secretsmanager.DeleteSecret", '{"SecretId": "x", "RecoveryWindowInDays": NaN}'),
        ("secretsmanager.GetRandomPassword", '{"PasswordLength": Infinity}'),
        ("secretsmanager.CreateSecret", '{"Name": "wire-surrogate", "SecretString": "\\ud800"}'),
        ("secretsmanager.CreateSecret", '{"Name": "\\udfff", "SecretString": "v"}'),
        ("secretsmanager.DescribeSecret", '{"SecretId": "x", "\\ud800": 1}'),
    ],
    ids=["deep-list", "deep-object", "inf", "-inf", "nan", "infinity", "surrogate", "low", "key"],
)
def test_bodies_python_decodes_but_json_does_not_allow_are_serialization_errors(wire, target, body):
    reply = wire(target, body)
    assert_aws_error(reply, 400, "SerializationException")


def test_paired_surrogate_escapes_are_one_character(wire, sm):
    name = unique_name("wire-emoji")
    reply = wire(
        "secretsmanager.CreateSecret",
        json.dumps({"Name": name, "SecretString": "\U0001f600", "ClientRequestToken": "t" * 32}),
    )
    assert reply.status == 200, reply
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "\U0001f600"


def test_huge_whole_numbers_are_range_errors(wire):
    body = '{"SecretId": "x", "RecoveryWindowInDays": ' + "9" * 400 + "}"
    assert_aws_error(wire("secretsmanager.DeleteSecret", body), 400, "InvalidParameterException")
    body = '{"PasswordLength": 1e300}'
    reply = wire("secretsmanager.GetRandomPassword", body)
    assert_aws_error(reply, 400, {"ValidationException", "InvalidParameterException"})


def test_missing_required_member(wire):
    reply = wire("secretsmanager.GetSecretValue", json.dumps({"VersionStage": "AWSCURRENT"}))
    assert_aws_error(reply, 400, {"ValidationException", "InvalidParameterException"})


def test_binary_that_is_not_base64(wire):
    body = {"Name": unique_name("wire-b64"), "SecretBinary": "***not base64***"}
    reply = wire("secretsmanager.CreateSecret", json.dumps(body))
    assert_aws_error(
        reply, 400, {"SerializationException", "ValidationException", "InvalidParameterException"}
    )


TOKEN_REQUIRED = "You must provide a ClientRequestToken value. We recommend a UUID-type value."


def test_raw_put_without_token_is_refused(wire, sm):
    # The SDKs fill ClientRequestToken in; a raw PutSecretValue has to bring its own.
    name = unique_name("wire-token")
    sm.create_secret(Name=name, SecretString="v1")
    reply = wire(
        "secretsmanager.PutSecretValue", json.dumps({"SecretId": name, "SecretString": "v2"})
    )
    assert_aws_error(reply, 400, "InvalidRequestException")
    assert reply.error_message == TOKEN_REQUIRED
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v1"


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("CreateSecret", {"SecretString": "v"}),
        ("CreateSecret", {"SecretBinary": "AAEC"}),
        ("UpdateSecret", {"SecretString": "v"}),
        ("PutSecretValue", {"SecretString": "v"}),
        ("RotateSecret", {"RotationRules": {"AutomaticallyAfterDays": 7}}),
    ],
)
def test_a_raw_write_that_makes_a_version_needs_a_token_before_anything_else(wire, target, body):
    """AWS answers 400 InvalidRequestException before it looks for the secret (one that
    does not exist is not reported), and makes nothing."""
    name = unique_name("wire-token")
    key = "Name" if target == "CreateSecret" else "SecretId"
    missing = wire(f"secretsmanager.{target}", json.dumps({key: name, **body}))
    assert_aws_error(missing, 400, "InvalidRequestException")
    assert missing.error_message == TOKEN_REQUIRED
    described = wire("secretsmanager.DescribeSecret", json.dumps({"SecretId": name}))
    assert_aws_error(described, 400, "ResourceNotFoundException")


def test_a_raw_write_without_a_value_needs_no_token(wire, sm):
    name = unique_name("wire-token")
    created = wire("secretsmanager.CreateSecret", json.dumps({"Name": name}))
    assert created.status == 200, created
    assert "VersionId" not in created.json
    updated = wire(
        "secretsmanager.UpdateSecret", json.dumps({"SecretId": name, "Description": "d"})
    )
    assert updated.status == 200, updated
    assert sm.describe_secret(SecretId=name)["Description"] == "d"


def test_unsigned_request(wire):
    reply = wire("secretsmanager.ListSecrets", "{}", sign=False)
    assert_aws_error(
        reply, 403, {"MissingAuthenticationTokenException", "IncompleteSignatureException"}
    )


def test_wrong_secret_key(wire, shared_server):
    creds = shared_server.session().get_credentials().get_frozen_credentials()
    wrong = Credentials(creds.access_key, "x" * len(creds.secret_key))
    reply = wire("secretsmanager.ListSecrets", "{}", credentials=wrong)
    assert_aws_error(reply, 403, "InvalidSignatureException")


def test_unknown_access_key(wire, shared_server):
    creds = shared_server.session().get_credentials().get_frozen_credentials()
    stranger = Credentials("AKIAUNKNOWNKEY000000", creds.secret_key)
    reply = wire("secretsmanager.ListSecrets", "{}", credentials=stranger)
    assert_aws_error(reply, 403, "UnrecognizedClientException")
    assert reply.error_message == "The security token included in the request is invalid."


def test_request_signed_for_another_region_is_refused(wire):
    reply = wire("secretsmanager.ListSecrets", "{}", region="eu-west-1")
    assert_aws_error(reply, 403, "InvalidSignatureException")
    assert reply.error_message == (
        "Credential should be scoped to a valid region, not 'eu-west-1'. "
    )


def test_header_signed_request_with_unsigned_payload_is_refused(wire):
    reply = wire("secretsmanager.ListSecrets", "{}", unsigned_payload=True)
    assert_aws_error(reply, 403, "InvalidSignatureException")
    assert wire("secretsmanager.ListSecrets", "{}").status == 200


@pytest.mark.parametrize("skew_minutes", [-20, 20])
def test_signature_far_from_now(wire, skew_minutes):
    signed_at = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=skew_minutes)
    reply = wire("secretsmanager.ListSecrets", "{}", signed_at=signed_at)
    assert_aws_error(reply, 403, "InvalidSignatureException")


def test_body_changed_after_signing_is_refused(wire, shared_server):
    creds = shared_server.session().get_credentials().get_frozen_credentials()
    request = AWSRequest(
        method="POST",
        url=f"{shared_server.endpoint_url}/",
        data=b'{"MaxResults": 1}',
        headers={"Content-Type": JSON_11, "X-Amz-Target": "secretsmanager.ListSecrets"},
    )
    SigV4Auth(
        Credentials(creds.access_key, creds.secret_key), "secretsmanager", "us-east-1"
    ).add_auth(request)
    url = urlsplit(shared_server.endpoint_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        conn.request("POST", "/", body=b'{"MaxResults": 2}', headers=headers)
        response = conn.getresponse()
        reply = Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()
    assert_aws_error(reply, 403, "InvalidSignatureException")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_are_refused_cleanly(wire, method):
    reply = wire("secretsmanager.ListSecrets", b"", method=method)
    assert 400 <= reply.status < 500, reply


def test_request_ids_are_unique(wire):
    ids = {wire("secretsmanager.ListSecrets", "{}").headers["x-amzn-requestid"] for _ in range(20)}
    assert len(ids) == 20


def test_oversized_body_is_refused_and_the_server_carries_on(wire, sm):
    body = json.dumps({"SecretId": "x", "Padding": "p" * (2 << 20)})
    reply = wire("secretsmanager.DescribeSecret", body)
    assert 400 <= reply.status < 500, reply
    assert sm.list_secrets(MaxResults=1)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_client_that_hangs_up_mid_body_does_not_hurt_others(shared_server, sm):
    url = urlsplit(shared_server.endpoint_url)
    for _ in range(5):
        with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
            sock.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
                b'X-Amz-Target: secretsmanager.ListSecrets\r\nContent-Length: 1000\r\n\r\n{"Max'
            )
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(b"this is not HTTP at all\r\n\r\n")
        sock.recv(1024)
    assert sm.list_secrets(MaxResults=1)["ResponseMetadata"]["HTTPStatusCode"] == 200


@pytest.mark.parametrize(
    ("target", "body", "path", "constraint"),
    [
        ("ListSecrets", {"SortOrder": "up"}, "sortOrder", "enum value set: [asc, desc]"),
        ("ListSecrets", {"SortBy": "size"}, "sortBy", "enum value set: [created-date"),
        ("ListSecrets", {"Filters": [{"Key": "name", "Values": ["a"]}] * 11}, "filters", "10"),
        (
            "ListSecrets",
            {"Filters": [{"Key": "name", "Values": []}]},
            "filters.1.member.values",
            "1",
        ),
        (
            "ListSecrets",
            {"Filters": [{"Key": "nom", "Values": ["a"]}]},
            "filters.1.member.key",
            "enum",
        ),
        (
            "ListSecrets",
            {"Filters": [{"Key": "name", "Values": ["a#"]}]},
            "filters.1.member.values",
            "pattern",
        ),
        ("BatchGetSecretValue", {"SecretIdList": []}, "secretIdList", "greater than or equal to 1"),
        ("GetSecretValue", {"SecretId": "s", "VersionStage": ""}, "versionStage", "1"),
        ("PutSecretValue", {"VersionStages": []}, "versionStages", "greater than or equal to 1"),
        ("PutSecretValue", {"VersionStages": ["a" * 257]}, "versionStages", "256"),
        ("TagResource", {"Tags": [{"Key": "", "Value": "v"}]}, "tags.1.member.key", "1"),
        ("TagResource", {"Tags": [{"Key": "k", "Value": "v" * 257}]}, "tags.1.member.value", "256"),
        ("UntagResource", {"TagKeys": ["k" * 129]}, "tagKeys", "128"),
        (
            "RotateSecret",
            {"RotationRules": {"AutomaticallyAfterDays": 1001}},
            "rotationRules.automaticallyAfterDays",
            "less than or equal to 1000",
        ),
        (
            "RotateSecret",
            {"RotationRules": {"Duration": "3d"}},
            "rotationRules.duration",
            "pattern",
        ),
    ],
)
def test_model_constraints_are_validation_errors_in_aws_words(wire, target, body, path, constraint):
    """botocore checks few of these before sending; AWS answers the rest itself with a
    ValidationException naming the member's path and the constraint it broke."""
    if target == "RotateSecret":
        body = {"SecretId": "s", "ClientRequestToken": "t" * 32, **body}
    if target in ("PutSecretValue", "TagResource", "UntagResource"):
        body = {"SecretId": "s", "SecretString": "v", "ClientRequestToken": "t" * 32, **body}
        if target != "PutSecretValue":
            del body["SecretString"], body["ClientRequestToken"]
    reply = wire(f"secretsmanager.{target}", json.dumps(body))
    assert_aws_error(reply, 400, "ValidationException")
    assert reply.error_message.startswith("1 validation error detected: "), reply.error_message
    assert f" at '{path}' failed to satisfy constraint: " in reply.error_message
    assert constraint in reply.error_message.split("constraint: ", 1)[1]


def test_a_secret_value_is_never_quoted_in_a_validation_error(wire):
    body = {
        "Name": unique_name("wire-long"),
        "SecretString": "s3cr3t" * 11000,
        "ClientRequestToken": "t" * 32,
    }
    reply = wire("secretsmanager.CreateSecret", json.dumps(body))
    assert_aws_error(reply, 400, "ValidationException")
    assert "s3cr3t" not in reply.error_message
    assert " at 'secretString' failed to satisfy constraint: " in reply.error_message
