"""Secret values never reach the disk in clear, the server's log, or an error message.

A fresh server at its most verbose writes random values through every operation that
carries one, the failing paths included (a rejected value is still a secret). Then every
file of its data directory, the database's write-ahead log among them, and everything it
printed are searched for each value in every form it travelled in.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from tests.support.server import ServerProcess, start_server
from tests.support.wait import wait_for


def marker() -> str:
    return f"leak{secrets.token_hex(16)}"


class Values:
    """Every secret the test sent or received, and the forms to look for."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []

    def string(self) -> str:
        value = json.dumps({"username": "app", "password": marker()})
        self.raw.append(value.encode())
        self.raw.append(json.loads(value)["password"].encode())
        return value

    def binary(self) -> bytes:
        value = secrets.token_bytes(8) + marker().encode() + bytes([0, 255, 10])
        self.raw.append(value)
        self.raw.append(value[8:-3])
        return value

    def received(self, value: str) -> None:
        self.raw.append(value.encode())

    def needles(self) -> list[bytes]:
        found: list[bytes] = []
        for value in self.raw:
            found += [value, base64.b64encode(value), value.hex().encode()]
            found.append(json.dumps(value.decode("latin-1")).encode()[1:-1])
        return found


def assert_absent(values: Values, haystack: bytes, where: str) -> None:
    for needle in values.needles():
        assert needle not in haystack, f"a secret value ({needle[:12]!r}...) is in {where}"


def files_of(data_dir: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file()}


def raw_call(proc: ServerProcess, target: str, body: bytes, secret_key: str | None = None) -> bytes:
    creds = proc.session().get_credentials().get_frozen_credentials()
    signer = SigV4Auth(
        Credentials(creds.access_key, secret_key or creds.secret_key), "secretsmanager", "us-east-1"
    )
    request = AWSRequest(
        method="POST",
        url=f"{proc.endpoint_url}/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"secretsmanager.{target}",
        },
    )
    signer.add_auth(request)
    url = urlsplit(proc.endpoint_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request("POST", "/", body=body, headers=dict(request.headers.items()))
        response = conn.getresponse()
        payload = response.read()
        assert response.status >= 400, payload
        return payload
    finally:
        conn.close()


def exercise(proc: ServerProcess, values: Values) -> tuple[str, list[bytes]]:
    """Send values through every path; return the main secret's name and the errors seen."""
    sm = proc.client()
    said: list[bytes] = []

    def refused(call, **kwargs) -> None:
        with pytest.raises(ClientError) as caught:
            call(**kwargs)
        said.append(json.dumps(caught.value.response["Error"]).encode())

    name = f"leaks/{uuid.uuid4().hex[:8]}"
    token = str(uuid.uuid4())
    sm.create_secret(Name=name, SecretString=values.string(), ClientRequestToken=token)
    binary_name = f"{name}-bin"
    sm.create_secret(Name=binary_name, SecretBinary=values.binary())
    sm.put_secret_value(SecretId=name, SecretString=values.string())
    sm.put_secret_value(SecretId=binary_name, SecretBinary=values.binary())
    sm.put_secret_value(SecretId=name, SecretString=values.string(), VersionStages=["AWSPENDING"])
    sm.update_secret(SecretId=name, SecretString=values.string())
    sm.update_secret(SecretId=binary_name, SecretBinary=values.binary())

    sm.get_secret_value(SecretId=name)
    sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")
    sm.get_secret_value(SecretId=binary_name)
    sm.batch_get_secret_value(SecretIdList=[name, binary_name])
    values.received(sm.get_random_password(PasswordLength=40)["RandomPassword"])

    # Failing paths that carry a value.
    refused(
        sm.put_secret_value, SecretId=name, SecretString=values.string(), ClientRequestToken=token
    )
    refused(sm.create_secret, Name=name, SecretString=values.string())
    refused(
        sm.create_secret,
        Name=f"{name}-both",
        SecretString=values.string(),
        SecretBinary=values.binary(),
    )
    refused(sm.put_secret_value, SecretId=f"{name}-missing", SecretString=values.string())
    refused(
        sm.put_secret_value,
        SecretId=name,
        SecretString=values.string(),
        VersionStages=[f"l{i}" for i in range(21)],
    )
    doomed = f"{name}-doomed"
    sm.create_secret(Name=doomed, SecretString=values.string())
    sm.delete_secret(SecretId=doomed)
    refused(sm.put_secret_value, SecretId=doomed, SecretString=values.string())
    refused(sm.get_secret_value, SecretId=doomed)

    # Malformed requests with a value inside.
    truncated = json.dumps({"SecretId": name, "SecretString": values.string()})[:-3]
    said.append(raw_call(proc, "PutSecretValue", truncated.encode()))
    wrong_type = {"SecretId": name, "SecretString": [values.string()], "ClientRequestToken": token}
    said.append(raw_call(proc, "PutSecretValue", json.dumps(wrong_type).encode()))
    unknown_op = {"SecretId": name, "SecretString": values.string()}
    said.append(raw_call(proc, "PutSecretValueNow", json.dumps(unknown_op).encode()))
    bad_signature = {"SecretId": name, "SecretString": values.string()}
    said.append(
        raw_call(proc, "PutSecretValue", json.dumps(bad_signature).encode(), secret_key="x" * 40)
    )
    return name, said


def rotate(proc: ServerProcess, values: Values) -> None:
    """Rotations that succeed and fail: the functions' logs must not show values either."""
    sm = proc.client()
    name = f"leaks-rotation/{uuid.uuid4().hex[:8]}"
    generic = f"{name}-generic"
    sm.create_secret(Name=generic, SecretString=json.dumps({"api_key": marker_of(values)}))
    rules = {"AutomaticallyAfterDays": 30}
    sm.rotate_secret(SecretId=generic, RotationLambdaARN="secretsd-generic", RotationRules=rules)
    values.received(wait_for_new_current(sm, generic))
    failing_names = []
    for broken in (
        "not json " + marker_of(values),
        json.dumps({"password": marker_of(values)}),
        json.dumps(
            {
                "engine": "mysql",
                "host": "127.0.0.1",
                "port": 1,
                "username": "u",
                "password": marker_of(values),
            }
        ),
    ):
        failing = f"{name}-failing-{uuid.uuid4().hex[:6]}"
        failing_names.append(failing)
        sm.create_secret(Name=failing, SecretString=broken)
        sm.rotate_secret(
            SecretId=failing, RotationLambdaARN="secretsd-mysql-single-user", RotationRules=rules
        )

    # The log is searched only once every failing rotation has logged its error.
    def every_failure_logged() -> bool:
        failures = [line for line in proc.log_text().splitlines() if "rotation step failed" in line]
        return all(any(f in line for line in failures) for f in failing_names)

    wait_for(every_failure_logged, timeout=30, message="the failing rotations logged no error")


def marker_of(values: Values) -> str:
    value = marker()
    values.raw.append(value.encode())
    return value


def wait_for_new_current(sm, name: str) -> str:
    """The AWSCURRENT value once rotation has moved it (the value the function generated)."""
    first = sm.get_secret_value(SecretId=name)["VersionId"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        current = sm.get_secret_value(SecretId=name)
        if current["VersionId"] != first:
            return json.loads(current["SecretString"])["api_key"]
        time.sleep(0.1)
    raise AssertionError("the rotation did not finish within 20 seconds")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_values_stay_out_of_files_logs_and_errors(tmp_path, log_format):
    proc = start_server(tmp_path / "data", "--log-format", log_format, "--log-level", "debug")
    try:
        values = Values()
        name, said = exercise(proc, values)
        for i, body in enumerate(said):
            assert_absent(values, body, f"error response #{i}")
        running = files_of(proc.data_dir)
        # Metadata is stored in clear: finding the name proves the search reads the store.
        assert any(name.encode() in content for content in running.values())
        for path, content in running.items():
            assert_absent(values, content, f"{path} (server running)")
    finally:
        proc.stop()
    for path, content in files_of(proc.data_dir).items():
        assert_absent(values, content, f"{path} (server stopped)")
    log = proc.log_text().encode()
    # The log is worth searching only if it records the requests that carried the values.
    assert b"PutSecretValue" in log and b"CreateSecret" in log, log[-2000:]
    assert_absent(values, log, f"the server's {log_format} log")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("log_format", "level"),
    [("text", "info"), ("json", "info"), ("text", "debug")],
)
def test_rotation_keeps_values_out_of_logs_and_files(tmp_path, log_format, level):
    proc = start_server(tmp_path / "data", "--log-format", log_format, "--log-level", level)
    try:
        values = Values()
        rotate(proc, values)
        for path, content in files_of(proc.data_dir).items():
            assert_absent(values, content, f"{path} (server running)")
    finally:
        proc.stop()
    log = proc.log_text().encode()
    assert b"createSecret" in log, log[-2000:]
    assert_absent(values, log, f"the server's {log_format} log at {level}")
