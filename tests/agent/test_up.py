"""``secretsd up``: server + agent, a private token file, a printout that works as printed."""

from __future__ import annotations

import configparser
import json
import re
import stat
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.console import ConsoleClient, over_http
from tests.support.up import Up, client_of, exports_of


def agent_client(path, exports: dict[str, str]):
    parser = configparser.ConfigParser()
    parser.read(path)
    profile = parser["secretsd-agent"]
    return boto3.client(
        "secretsmanager",
        endpoint_url=exports["AWS_ENDPOINT_URL_SECRETS_MANAGER"],
        region_name=exports["AWS_DEFAULT_REGION"],
        aws_access_key_id=profile["aws_access_key_id"],
        aws_secret_access_key=profile["aws_secret_access_key"],
    )


def assert_console_link_signs_in_once(printed: str) -> None:
    link = urlsplit(re.search(r"^  (http://\S+/console/sign-in/link\?\S+)$", printed, re.M)[1])
    server = f"{link.scheme}://{link.netloc}"
    token = parse_qs(link.query)["token"][0]
    for status in (303, 401):
        client = ConsoleClient(over_http(server), server)
        page = client.get(f"{link.path}?{link.query}")
        reply = client.post("/console/sign-in/link", {"csrf": page.csrf, "token": token})
        assert reply.status == status


def test_up_runs_server_and_agent_and_stops_cleanly(tmp_path):
    data_dir = tmp_path / "data"
    up = Up(data_dir)
    lines, stderr, ready = up.lines, up.stderr, up.ready
    try:
        assert ready.wait(60), "".join(lines)
        text = "".join(lines)
        agent_url = re.search(r"agent listening on (http://\S+)", text).group(1)
        exports = exports_of(text)
        token_file = data_dir / "agent-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert exports["AWS_TOKEN"] == f"file://{token_file}"
        assert "aws_secret_access_key" not in text.lower()

        sm = client_of(exports)
        sm.create_secret(Name="db/app", SecretString='{"password":"up"}')

        # The curl command exactly as printed (two lines joined by a backslash).
        printed = text.splitlines()
        at = next(i for i, line in enumerate(printed) if "curl -H" in line)
        command = printed[at] + "\n" + printed[at + 1]
        assert agent_url in command
        result = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=30, check=True
        )
        assert json.loads(json.loads(result.stdout)["SecretString"]) == {"password": "up"}

        # The agent signs as a user that can read secrets and nothing more.
        agent_file = data_dir / "agent-credentials"
        assert stat.S_IMODE(agent_file.stat().st_mode) == 0o600
        agent_sm = agent_client(agent_file, exports)
        assert agent_sm.describe_secret(SecretId="db/app")["Name"] == "db/app"
        with pytest.raises(ClientError) as excinfo:
            agent_sm.put_secret_value(SecretId="db/app", SecretString="no")
        assert excinfo.value.response["Error"]["Code"] == "AccessDeniedException"
        with pytest.raises(ClientError) as excinfo:
            agent_sm.list_secrets()
        assert excinfo.value.response["Error"]["Code"] == "AccessDeniedException"
        assert_console_link_signs_in_once(text)
    finally:
        code = up.stop()
    assert code == 0, "".join(stderr)
    assert "Traceback" not in "".join(stderr)


def test_up_passes_the_server_options_on(tmp_path):
    # A function only the rotation config names, and the JSON log format: both reach the server.
    config = tmp_path / "rotation.toml"
    config.write_text('[functions.widget]\ncommand = ["/bin/true"]\n')
    up = Up(tmp_path / "data", "--rotation-config", str(config), "--log-format", "json")
    try:
        assert up.ready.wait(60), "".join(up.lines)
        sm = client_of(exports_of("".join(up.lines)))
        sm.create_secret(Name="widget/key", SecretString="v1")
        rotation = {"AutomaticallyAfterDays": 30}
        sm.rotate_secret(
            SecretId="widget/key",
            RotationLambdaARN="widget",
            RotationRules=rotation,
            RotateImmediately=False,
        )
        assert sm.describe_secret(SecretId="widget/key")["RotationEnabled"] is True
    finally:
        code = up.stop()
    assert code == 0, "".join(up.stderr)
    # The agent logs in text (it has no JSON format) to the same stderr; the rest is the
    # server's, and every line of it is JSON.
    server_lines = [line for line in up.stderr if line.strip() and " secretsd.agent " not in line]
    assert server_lines, "the server logged nothing"
    records = [json.loads(line) for line in server_lines]
    assert any(record["logger"].startswith("secretsd") for record in records)
    server_stdout = [line for line in up.lines if line.startswith("server | ")]
    for line in server_stdout:
        json.loads(line.removeprefix("server | "))


def test_up_refuses_a_bad_server_option_before_starting_anything(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "secretsd.cli", "up", "--data-dir", str(tmp_path / "data")]
        + ["--log-format", "yaml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--log-format" in result.stderr and "yaml" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()
