"""The AWS CLI, unchanged, against the live server: a real second client besides boto3."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from secretsd.model import errors


@pytest.fixture
def aws(shared_server):
    """Run ``aws secretsmanager <args>`` with JSON output and return the parsed result."""

    def run(*args: str, expect_failure: bool = False) -> dict:
        cmd = [sys.executable, "-m", "awscli", "secretsmanager", *args]
        cmd += ["--endpoint-url", shared_server.endpoint_url, "--output", "json"]
        done = subprocess.run(
            cmd, env=shared_server.env, capture_output=True, text=True, timeout=60
        )
        if expect_failure:
            assert done.returncode != 0, done.stdout
            return {"stderr": done.stderr}
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    return run


@pytest.mark.slow
def test_cli_round_trip(aws, sm):
    name = f"cli/{uuid.uuid4().hex[:12]}"
    created = aws("create-secret", "--name", name, "--secret-string", '{"password":"p@ss w0rd"}')
    assert created["Name"] == name
    assert created["ARN"].split(":secret:")[1].startswith(name + "-")

    value = aws("get-secret-value", "--secret-id", name)
    assert json.loads(value["SecretString"]) == {"password": "p@ss w0rd"}
    assert value["VersionStages"] == ["AWSCURRENT"]
    assert value["VersionId"] == created["VersionId"]

    put = aws("put-secret-value", "--secret-id", created["ARN"], "--secret-string", "second")
    assert put["VersionStages"] == ["AWSCURRENT"]
    assert aws("get-secret-value", "--secret-id", name)["SecretString"] == "second"
    previous = aws("get-secret-value", "--secret-id", name, "--version-stage", "AWSPREVIOUS")
    assert previous["VersionId"] == created["VersionId"]

    described = aws("describe-secret", "--secret-id", name)
    assert described["VersionIdsToStages"] == {
        created["VersionId"]: ["AWSPREVIOUS"],
        put["VersionId"]: ["AWSCURRENT"],
    }
    # The CLI prints dates as it parsed them off the wire; it must have parsed them.
    assert "CreatedDate" in described

    listed = aws("list-secrets", "--filters", f"Key=name,Values={name}")
    assert [entry["Name"] for entry in listed["SecretList"]] == [name]

    deleted = aws("delete-secret", "--secret-id", name, "--recovery-window-in-days", "7")
    assert deleted["Name"] == name
    assert "DeletionDate" in deleted
    assert "DeletedDate" in sm.describe_secret(SecretId=name)


def test_cli_binary_secret(aws, sm, tmp_path):
    name = f"cli-bin/{uuid.uuid4().hex[:12]}"
    blob = bytes(range(256))
    path = tmp_path / "blob.bin"
    path.write_bytes(blob)
    aws("create-secret", "--name", name, "--secret-binary", f"fileb://{path}")
    assert sm.get_secret_value(SecretId=name)["SecretBinary"] == blob


def test_cli_reports_errors(aws):
    missing = f"cli-missing/{uuid.uuid4().hex[:12]}"
    failed = aws("get-secret-value", "--secret-id", missing, expect_failure=True)
    assert "ResourceNotFoundException" in failed["stderr"]
    assert errors.SECRET_NOT_FOUND in failed["stderr"]


def test_cli_force_delete_and_list_planned_deletion(aws):
    name = f"cli-del/{uuid.uuid4().hex[:12]}"
    aws("create-secret", "--name", name, "--secret-string", "v")
    aws("delete-secret", "--secret-id", name)
    listed = aws(
        "list-secrets", "--include-planned-deletion", "--filters", f"Key=name,Values={name}"
    )
    assert [entry["Name"] for entry in listed["SecretList"]] == [name]
    aws("delete-secret", "--secret-id", name, "--force-delete-without-recovery")
    gone = aws("list-secrets", "--include-planned-deletion", "--filters", f"Key=name,Values={name}")
    assert gone["SecretList"] == []


def test_cli_reaches_the_server_through_the_environment_alone(shared_server):
    # AWS_ENDPOINT_URL_SECRETS_MANAGER in the environment, no --endpoint-url.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "awscli",
            "secretsmanager",
            "get-random-password",
            "--output",
            "json",
        ],
        env=shared_server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["RandomPassword"]) == 32


def test_cli_paginates_with_its_own_tokens(aws, sm):
    prefix = f"cli-page/{uuid.uuid4().hex[:10]}"
    expected = {f"{prefix}/{i}" for i in range(5)}
    for name in expected:
        sm.create_secret(Name=name, SecretString="v")
    seen: list[str] = []
    args = ["list-secrets", "--filters", f"Key=name,Values={prefix}", "--page-size", "2"]
    page = aws(*args, "--max-items", "3")
    seen += [entry["Name"] for entry in page["SecretList"]]
    assert len(seen) == 3 and page["NextToken"]
    rest = aws(*args, "--starting-token", page["NextToken"])
    seen += [entry["Name"] for entry in rest["SecretList"]]
    assert sorted(seen) == sorted(expected)
