"""The audit trail of a live server, read back the way an operator would: every call with
its caller and outcome, no secret value anywhere, and ``secretsd audit verify`` catching a
log edited, cut or reordered by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.server import start_server
from tests.support.wait import wait_for

MARKER = f"MARKER-{uuid.uuid4().hex}"


def audit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "secretsd.cli", "audit", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def records(data_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (data_dir / "audit.log").read_text().splitlines()]


@pytest.fixture
def audited_run(server):
    """A run of boto3 calls with marker values; the server's data directory afterwards."""
    sm = server.client()
    name = f"audit/{uuid.uuid4().hex[:8]}"
    created = sm.create_secret(Name=name, SecretString=f'{{"password": "{MARKER}-1"}}')
    sm.get_secret_value(SecretId=name)
    sm.put_secret_value(SecretId=name, SecretBinary=f"{MARKER}-2".encode())
    sm.update_secret(SecretId=name, SecretString=f"{MARKER}-3", Description="d")
    sm.batch_get_secret_value(SecretIdList=[name])
    sm.get_random_password(PasswordLength=40)
    sm.describe_secret(SecretId=name)
    sm.list_secrets()
    with pytest.raises(ClientError):
        sm.get_secret_value(SecretId=f"{name}-missing")
    sm.tag_resource(SecretId=name, Tags=[{"Key": "team", "Value": "a"}])
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    # A caller whose signature does not verify is recorded too, as nobody.
    stranger = server.session().client(
        "secretsmanager",
        endpoint_url=server.endpoint_url,
        aws_access_key_id="AKIAUNKNOWNKEY000000",
        aws_secret_access_key=MARKER,
        region_name="us-east-1",
    )
    with pytest.raises(ClientError):
        stranger.get_secret_value(SecretId=name)
    return server, name, created["ARN"]


def test_every_call_is_recorded_with_its_caller_and_outcome(audited_run):
    server, _, arn = audited_run
    logged = records(server.data_dir)
    assert [r["eventName"] for r in logged] == [
        "CreateSecret",
        "GetSecretValue",
        "PutSecretValue",
        "UpdateSecret",
        "BatchGetSecretValue",
        "GetRandomPassword",
        "DescribeSecret",
        "ListSecrets",
        "GetSecretValue",
        "TagResource",
        "DeleteSecret",
        "GetSecretValue",
    ]
    key = server.session().get_credentials().access_key
    for record in logged[:-1]:
        assert record["userIdentity"] == {
            "type": "Root",
            "principalId": "123456789012",
            "arn": "arn:aws:iam::123456789012:root",
            "accountId": "123456789012",
            "accessKeyId": key,
        }
        assert record["eventSource"] == "secretsmanager.amazonaws.com"
        assert record["sourceIPAddress"] == "127.0.0.1"
        assert record["userAgent"].startswith("Boto3/")
        assert record["awsRegion"] == "us-east-1"
    assert [r.get("errorCode") for r in logged] == [None] * 8 + [
        "ResourceNotFoundException",
        None,
        None,
        "UnrecognizedClientException",
    ]
    assert logged[-1]["userIdentity"] == {"type": "Unknown"}
    assert logged[1]["resources"] == [
        {"ARN": arn, "type": "AWS::SecretsManager::Secret", "accountId": "123456789012"}
    ]
    assert logged[1]["responseElements"] is None and logged[1]["readOnly"] is True
    assert logged[0]["responseElements"]["arn"] == arn and logged[0]["readOnly"] is False
    assert len({r["eventID"] for r in logged}) == len(logged)
    assert all(r["requestID"] for r in logged)


def test_no_value_password_or_key_is_anywhere_in_the_log(audited_run):
    server, _, _ = audited_run
    text = (server.data_dir / "audit.log").read_bytes()
    assert MARKER.encode() not in text
    assert MARKER.encode().hex().encode() not in text
    secret_key = server.session().get_credentials().secret_key
    assert secret_key.encode() not in text


def test_verify_passes_an_intact_log_and_names_each_kind_of_tampering(audited_run):
    server, _, _ = audited_run
    server.stop()
    data_dir = server.data_dir
    intact = audit("verify", "--data-dir", str(data_dir))
    assert intact.returncode == 0, intact.stderr
    assert "12 records" in intact.stdout
    path = data_dir / "audit.log"
    original = path.read_text().splitlines(keepends=True)

    def tampered(lines: list[str]) -> subprocess.CompletedProcess:
        path.write_text("".join(lines))
        return audit("verify", "--data-dir", str(data_dir))

    edited = list(original)
    edited[3] = edited[3].replace('"UpdateSecret"', '"DescribeSecret"')
    result = tampered(edited)
    assert result.returncode == 1
    assert "audit.log:4: record 4" in result.stderr and "edited" in result.stderr

    removed = original[:5] + original[6:]
    result = tampered(removed)
    assert result.returncode == 1
    assert "record 6 was removed" in result.stderr and "audit.log:6" in result.stderr

    swapped = list(original)
    swapped[7], swapped[8] = swapped[8], swapped[7]
    result = tampered(swapped)
    assert result.returncode == 1
    assert "audit.log:8: record 9" in result.stderr and "record 8 was moved" in result.stderr


def test_tail_filters_by_user_secret_operation_and_refusals(audited_run):
    server, name, arn = audited_run
    data_dir = str(server.data_dir)

    def tail(*filters: str) -> list[dict]:
        result = audit("tail", "--data-dir", data_dir, "--json", "-n", "100", *filters)
        assert result.returncode == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    assert len(tail()) == 12
    assert [r["eventName"] for r in tail("--operation", "getsecretvalue")] == ["GetSecretValue"] * 3
    by_secret = tail("--secret", name)
    assert {r["eventName"] for r in by_secret} >= {"CreateSecret", "DeleteSecret", "TagResource"}
    assert tail("--secret", arn) == [r for r in by_secret if r.get("resources")]
    assert len(tail("--user", "root")) == 11
    key = server.session().get_credentials().access_key
    assert len(tail("--user", key)) == 11
    assert tail("--denied") == []
    assert len(tail("-n", "2")) == 2
    text = audit("tail", "--data-dir", data_dir, "--operation", "DeleteSecret")
    assert name in text.stdout and "DeleteSecret" in text.stdout and "root" in text.stdout


def test_tail_follow_prints_records_as_they_are_appended(server, tmp_path):
    sm = server.client()
    sm.list_secrets()
    out = tmp_path / "follow.out"
    with out.open("w") as sink:
        follower = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "secretsd.cli",
                "audit",
                "tail",
                "--follow",
                "--json",
                "--operation",
                "DescribeSecret",
                "--data-dir",
                str(server.data_dir),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            name = f"audit/{uuid.uuid4().hex[:8]}"
            sm.create_secret(Name=name, SecretString="v")

            def described() -> bool:
                sm.describe_secret(SecretId=name)
                return '"DescribeSecret"' in out.read_text()

            wait_for(described)
        finally:
            follower.terminate()
            follower.wait(10)
    assert all(
        json.loads(line)["eventName"] == "DescribeSecret"
        for line in out.read_text().split("\n")
        if line
    )


def test_a_call_is_refused_when_its_record_cannot_be_written(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    os.symlink("/dev/full", data_dir / "audit.log")
    server = start_server(data_dir)
    try:
        # Each call made once: botocore would retry a 500, and the retry could pass.
        sm = server.session().client(
            "secretsmanager",
            endpoint_url=server.endpoint_url,
            config=Config(retries={"total_max_attempts": 1}),
        )
        name = f"audit/{uuid.uuid4().hex[:8]}"
        with pytest.raises(ClientError) as refused:
            sm.create_secret(Name=name, SecretString="v")
        error = refused.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert error["Error"]["Code"] == "InternalServiceError"
        assert "audit log could not be written" in error["Error"]["Message"]
        wait_for(lambda: "audit record could not be written" in server.log_text())
        # From now on calls are refused before they run: this one changes nothing.
        with pytest.raises(ClientError):
            sm.put_secret_value(SecretId=name, SecretString="second")
        # The log is writable again: the first call after is refused (its refusal is
        # recorded), and the next ones run.
        (data_dir / "audit.log").unlink()
        with pytest.raises(ClientError):
            sm.describe_secret(SecretId=name)
        described = sm.describe_secret(SecretId=name)
        # The create that failed to be recorded ran; the refused put did not.
        assert len(described["VersionIdsToStages"]) == 1
        logged = records(data_dir)
        assert [(r["eventName"], r.get("errorCode")) for r in logged] == [
            ("DescribeSecret", "InternalServiceError"),
            ("DescribeSecret", None),
        ]
    finally:
        server.stop()


def test_rotation_steps_are_on_the_trail(server):
    sm = server.client()
    name = f"audit/{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString=json.dumps({"api_key": "initial-key"}))
    sm.rotate_secret(SecretId=name, RotationLambdaARN="secretsd-generic")

    def rotation_events() -> list[dict]:
        found = [r for r in records(server.data_dir) if r["eventType"] == "AwsServiceEvent"]
        return found if found and found[-1]["eventName"] == "RotationSucceeded" else []

    events = wait_for(rotation_events)
    assert [e["eventName"] for e in events] == ["RotationStarted"] + [
        "RotationStepSucceeded"
    ] * 4 + ["RotationSucceeded"]
    assert [e["serviceEventDetails"].get("step") for e in events[1:5]] == [
        "createSecret",
        "setSecret",
        "testSecret",
        "finishSecret",
    ]
    assert all(e["userIdentity"]["invokedBy"] == "secretsmanager.amazonaws.com" for e in events)
    assert audit("verify", "--data-dir", str(server.data_dir)).returncode == 0
