"""Managed rotation through the API of a live server: RotateSecret, the scheduler, history."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid

import pytest
from botocore.exceptions import ClientError

from secretsd.model import errors
from tests.support.rotating import start_rotating_server
from tests.support.server import start_server
from tests.support.wait import wait_for

HISTORY = [sys.executable, "-m", "secretsd.cli", "rotation", "history"]


def history(server, secret: str) -> list[dict]:
    out = subprocess.run(
        [*HISTORY, secret, "--json", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def rotating_server(tmp_path):
    server = start_rotating_server(tmp_path)
    yield server
    server.gate.touch()
    server.stop()


def make_secret(sm, value: dict | None = None) -> str:
    name = f"rot/{uuid.uuid4().hex[:10]}"
    sm.create_secret(Name=name, SecretString=json.dumps(value or {"api_key": "initial-key"}))
    return name


def test_rotate_secret_without_a_function_is_refused(server):
    sm = server.client()
    name = make_secret(sm)
    with pytest.raises(ClientError) as exc:
        sm.rotate_secret(SecretId=name)
    assert exc.value.response["Error"]["Code"] == "InvalidRequestException"
    assert exc.value.response["Error"]["Message"] == errors.NO_ROTATION_FUNCTION
    assert "RotationEnabled" not in sm.describe_secret(SecretId=name)


def test_generic_rotation_runs_all_four_steps_and_finishes(server):
    sm = server.client()
    name = make_secret(sm)
    first = sm.get_secret_value(SecretId=name)
    response = sm.rotate_secret(
        SecretId=name,
        RotationLambdaARN="arn:aws:lambda:us-east-1:123456789012:function:secretsd-generic",
        RotationRules={"AutomaticallyAfterDays": 30},
    )
    token = response["VersionId"]

    def rotated():
        meta = sm.describe_secret(SecretId=name)
        return meta if meta["VersionIdsToStages"].get(token) == ["AWSCURRENT"] else None

    meta = wait_for(rotated)
    # AWSPENDING is gone after success; the old version is AWSPREVIOUS.
    assert meta["VersionIdsToStages"] == {
        token: ["AWSCURRENT"],
        first["VersionId"]: ["AWSPREVIOUS"],
    }
    assert meta["RotationEnabled"] is True
    assert meta["RotationRules"]["AutomaticallyAfterDays"] == 30
    assert "LastRotatedDate" in meta
    days_ahead = (meta["NextRotationDate"] - meta["LastRotatedDate"]).total_seconds() / 86400
    assert 29 <= days_ahead <= 31
    new = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])
    assert new["api_key"] != "initial-key" and len(new["api_key"]) == 32
    steps = [e.get("step") for e in history(server, name) if e["kind"] == "step"]
    assert steps == ["createSecret", "setSecret", "testSecret", "finishSecret"]


HANDS_BACK_THE_ROTATION_TOKEN = """
import json, sys
from secretsd.rotation.functions.common import secrets_manager_client

event = json.load(sys.stdin)
with open(sys.argv[1], "a") as log:
    log.write(json.dumps(event) + "\\n")
sm = secrets_manager_client()
arn, token = event["SecretId"], event["ClientRequestToken"]
if event["Step"] == "createSecret":
    sm.put_secret_value(
        SecretId=arn,
        ClientRequestToken=token,
        SecretString="rotated",
        VersionStages=["AWSPENDING"],
        RotationToken=event["RotationToken"],
    )
elif event["Step"] == "finishSecret":
    stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    current = next(v for v, labels in stages.items() if "AWSCURRENT" in labels)
    sm.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=current
    )
"""


def test_the_rotation_event_carries_a_rotation_token_put_secret_value_accepts(tmp_path):
    """AWS's event is Step, SecretId, ClientRequestToken and RotationToken, the last the
    same for the four steps of one rotation; a function may pass it to PutSecretValue."""
    script, events = tmp_path / "function.py", tmp_path / "events.jsonl"
    script.write_text(HANDS_BACK_THE_ROTATION_TOKEN)
    config = tmp_path / "rotation.toml"
    argv = [sys.executable, str(script), str(events)]
    config.write_text(f"[functions.hands-back]\ncommand = {json.dumps(argv)}\n")
    server = start_server(tmp_path / "data", "--rotation-config", str(config))
    try:
        sm = server.client()
        name = make_secret(sm)
        token = sm.rotate_secret(SecretId=name, RotationLambdaARN="hands-back")["VersionId"]
        wait_for(lambda: sm.get_secret_value(SecretId=name)["VersionId"] == token)
    finally:
        server.stop()
    seen = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["Step"] for e in seen] == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    assert all(set(e) == {"Step", "SecretId", "ClientRequestToken", "RotationToken"} for e in seen)
    assert len({e["RotationToken"] for e in seen}) == 1
    assert re.fullmatch(r"[a-zA-Z0-9-]{36,256}", seen[0]["RotationToken"])
    assert {e["ClientRequestToken"] for e in seen} == {token}


def test_pending_placeholder_has_no_value_and_blocks_a_second_rotation(rotating_server):
    sm = rotating_server.client()
    name = make_secret(sm)
    token = sm.rotate_secret(SecretId=name, RotationLambdaARN="waits-for-gate")["VersionId"]
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages[token] == ["AWSPENDING"]
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert exc.value.response["Error"]["Message"] == errors.value_not_found_for_stage("AWSPENDING")
    with pytest.raises(ClientError) as exc:
        sm.rotate_secret(SecretId=name)
    assert exc.value.response["Error"]["Message"] == errors.ROTATION_IN_PROGRESS
    # CancelRotateSecret clears the way.
    cancelled = sm.cancel_rotate_secret(SecretId=name)
    assert cancelled["VersionId"] == token
    meta = sm.describe_secret(SecretId=name)
    assert meta["RotationEnabled"] is False
    assert token not in meta["VersionIdsToStages"]


def test_failed_rotation_is_retried_with_backoff_and_recorded(rotating_server):
    sm = rotating_server.client()
    name = make_secret(sm, {"api_key": "initial-key", "password": "do-not-log-me"})
    before = sm.get_secret_value(SecretId=name)
    token = sm.rotate_secret(SecretId=name, RotationLambdaARN="always-fails")["VersionId"]

    def failures():
        events = history(rotating_server, name)
        failed = [e for e in events if e.get("outcome") == "failed"]
        return failed if len(failed) >= 3 else None

    failed = wait_for(failures, timeout=30)
    assert {e["token"] for e in failed} == {token}  # retried with the same token
    assert all(e["step"] == "createSecret" for e in failed)
    assert "database refused: boom" in failed[0]["error"]
    # AWSCURRENT is untouched and readable.
    after = sm.get_secret_value(SecretId=name)
    assert after["VersionId"] == before["VersionId"]
    assert after["SecretString"] == before["SecretString"]
    text = subprocess.run(
        [*HISTORY, name, "--data-dir", str(rotating_server.data_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "createSecret  failed" in text and "do-not-log-me" not in text


def test_unknown_function_name_is_refused_as_aws_refuses_a_function_it_cannot_invoke(server):
    sm = server.client()
    name = make_secret(sm)
    with pytest.raises(ClientError) as exc:
        sm.rotate_secret(SecretId=name, RotationLambdaARN="no-such-function")
    assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
    assert exc.value.response["Error"]["Message"] == (
        "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function "
        "policy grants access to the principal secretsmanager.amazonaws.com."
    )
    assert "RotationEnabled" not in sm.describe_secret(SecretId=name)


def test_rotation_rules_are_shown_in_the_services_wire_form(server):
    sm = server.client()
    name = make_secret(sm)
    sm.rotate_secret(
        SecretId=name,
        RotationLambdaARN="secretsd-generic",
        RotationRules={"ScheduleExpression": "rate(10 days)", "Duration": "3h"},
        RotateImmediately=False,
    )
    meta = sm.describe_secret(SecretId=name)
    assert meta["RotationRules"] == {
        "AutomaticallyAfterDays": 10,
        "ScheduleExpression": "rate(10 days)",
        "Duration": "3h",
    }
    assert meta["RotationEnabled"] is True and "NextRotationDate" in meta


def test_rotate_immediately_false_only_tests_on_a_temporary_pending_version(server):
    sm = server.client()
    name = make_secret(sm)
    before = sm.get_secret_value(SecretId=name)
    response = sm.rotate_secret(
        SecretId=name,
        RotationLambdaARN="secretsd-generic",
        RotationRules={"AutomaticallyAfterDays": 7},
        RotateImmediately=False,
    )
    assert "VersionId" not in response

    def tested():
        return [e for e in history(server, name) if e["kind"] == "test"]

    (event,) = wait_for(tested)
    assert event["outcome"] == "ok" and event["step"] == "testSecret"
    meta = sm.describe_secret(SecretId=name)
    assert meta["VersionIdsToStages"] == {before["VersionId"]: ["AWSCURRENT"]}
    assert "LastRotatedDate" not in meta
    listed = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    temporary = [v for v in listed if v["VersionId"] == event["token"]]
    assert temporary and "VersionStages" not in temporary[0]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == before["SecretString"]
