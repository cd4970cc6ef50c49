"""``secretsd status`` against a live server and agent: one rotation failing, one overdue."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from tests.ops.conftest import Estate, describe
from tests.support.server import start_server

STATUS = [sys.executable, "-m", "secretsd.cli", "status"]


def status(server, *args: str, agent: str | None = None) -> subprocess.CompletedProcess:
    """Run the command as a cron job would: only the flags, no AWS variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SECRETSD_"))}
    agent_args = ["--agent-url", agent] if agent is not None else ["--no-agent"]
    return subprocess.run(
        [*STATUS, "--endpoint-url", server.endpoint_url, "--data-dir", str(server.data_dir)]
        + agent_args
        + list(args),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_failing_rotation_is_critical_and_an_overdue_one_is_named(estate: Estate) -> None:
    done = status(estate.server, agent=estate.agent.url)
    assert done.returncode == 2, done.stdout + done.stderr
    first, *rest = done.stdout.splitlines()
    assert first.startswith("CRITICAL: ")
    assert f"rotation of {estate.failing} failing since 20" in first
    assert f"rotation of {estate.overdue} overdue (due by 20" in first
    text = "\n".join(rest)
    rows = {line.split()[0]: line.split()[1] for line in rest if line.startswith("ops/")}
    assert rows == {estate.failing: "failing", estate.overdue: "overdue", estate.in_order: "ok"}
    # The failure says which step and why, scrubbed as the history keeps it.
    assert "createSecret: FunctionError: command" in text and "database refused: boom" in text
    assert "server " in text and "agent " in text and "FAILED" not in text


def test_json_gives_each_rotation_and_each_probe(estate: Estate) -> None:
    done = status(estate.server, "--json", agent=estate.agent.url)
    assert done.returncode == 2, done.stderr
    report = json.loads(done.stdout)
    assert (report["status"], report["exit_code"]) == ("critical", 2)
    assert {p["name"]: p["ok"] for p in report["probes"]} == {
        "server": True,
        "api": True,
        "agent": True,
    }
    assert all(p["milliseconds"] > 0 for p in report["probes"])
    by_name = {r["name"]: r for r in report["rotations"]}
    assert estate.plain not in by_name  # no rotation, no row
    failing, overdue, in_order = (
        by_name[estate.failing],
        by_name[estate.overdue],
        by_name[estate.in_order],
    )
    now = datetime.now(UTC)
    since = datetime.fromisoformat(failing["failing_since"])
    started = datetime.fromisoformat(failing["rotating_since"])
    assert started <= since <= now
    assert (failing["state"], failing["failed_step"]) == ("failing", "createSecret")
    assert overdue["state"] == "overdue" and overdue["failing_since"] is None
    assert datetime.fromisoformat(overdue["next_rotation_by"]) < now
    assert in_order["state"] == "ok" and in_order["last_rotated"] is not None
    assert datetime.fromisoformat(in_order["next_rotation_by"]) > now
    levels = sorted(p["level"] for p in report["problems"])
    assert levels == ["critical", "warning"]


def test_describe_rotation_is_a_boto3_call_with_the_extras(estate: Estate) -> None:
    rotations = describe(estate.server)
    failing = rotations.describe_rotation(SecretId=estate.failing)
    assert failing["InProgress"] is True and failing["FailedStep"] == "createSecret"
    assert failing["FailingSinceDate"] <= failing["LastFailureDate"]
    assert rotations.describe_rotation(SecretId=estate.plain)["Condition"] == "disabled"
    with pytest.raises(ClientError) as exc:
        rotations.describe_rotation(SecretId="ops/no-such-secret")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_only_an_overdue_rotation_is_a_warning_and_none_is_ok(tmp_path) -> None:
    from tests.ops.conftest import make_overdue

    make_overdue(tmp_path / "data", "late")
    server = start_server(tmp_path / "data")
    try:
        done = status(server)
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stdout.startswith("WARNING: rotation of late overdue")
        server.client().cancel_rotate_secret(SecretId="late")
        done = status(server)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith("OK: server answers; 0 rotating secrets, none failing")
    finally:
        server.stop()


def test_a_server_or_agent_that_does_not_answer_is_critical(estate: Estate, tmp_path) -> None:
    agent_down = status(estate.server, agent=closed_port_url())
    assert agent_down.returncode == 2
    assert "agent http://127.0.0.1:" in agent_down.stdout.splitlines()[0]
    assert "unreachable" in agent_down.stdout.splitlines()[0]

    class Gone:
        endpoint_url = closed_port_url()
        data_dir = estate.server.data_dir

    server_down = status(Gone, "--json", "--timeout", "2")
    assert server_down.returncode == 2
    report = json.loads(server_down.stdout)
    assert {p["name"]: p["ok"] for p in report["probes"]} == {"server": False, "api": False}


def test_a_key_the_server_refuses_is_critical(estate: Estate, tmp_path) -> None:
    wrong = tmp_path / "credentials"
    wrong.write_text(
        "[secretsd]\naws_access_key_id = AKIAWRONGWRONGWRONG0\n"
        "aws_secret_access_key = wrongwrongwrongwrongwrongwrongwrongwrong\n"
    )
    done = status(estate.server, "--credentials-file", str(wrong), "--json")
    assert done.returncode == 2
    api = next(p for p in json.loads(done.stdout)["probes"] if p["name"] == "api")
    assert api["ok"] is False and "UnrecognizedClientException" in api["detail"]


def test_a_bad_command_line_is_unknown(estate: Estate) -> None:
    done = subprocess.run([*STATUS, "--timeout", "soon"], capture_output=True, text=True)
    assert done.returncode == 3
    assert done.stderr.startswith("secretsd status: argument --timeout")


def test_describe_rotation_needs_the_rights_of_describe_secret(estate: Estate, tmp_path) -> None:
    iam = estate.server.client("iam")

    def user_with(actions: list[str]) -> str:
        name = f"monitor-{uuid.uuid4().hex[:6]}"
        iam.create_user(UserName=name)
        document = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}],
        }
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(document))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        path = tmp_path / f"{name}.credentials"
        path.write_text(
            f"[secretsd]\naws_access_key_id = {key['AccessKeyId']}\n"
            f"aws_secret_access_key = {key['SecretAccessKey']}\n"
        )
        return str(path)

    monitor = user_with(["secretsmanager:ListSecrets", "secretsmanager:DescribeSecret"])
    done = status(estate.server, "--credentials-file", monitor, "--json")
    by_name = {r["name"]: r for r in json.loads(done.stdout)["rotations"]}
    assert by_name[estate.failing]["failed_step"] == "createSecret", done.stdout
    lister = user_with(["secretsmanager:ListSecrets"])
    done = status(estate.server, "--credentials-file", lister, "--json")
    assert done.returncode == 2
    api = next(p for p in json.loads(done.stdout)["probes"] if p["name"] == "api")
    assert "AccessDeniedException" in api["detail"]
    assert "secretsmanager:DescribeSecret" in api["detail"]
