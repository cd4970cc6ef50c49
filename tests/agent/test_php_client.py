"""The seed's PHP SecretsManagerAgentClient, unchanged, against the agent (php-cli)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .support import TOKEN

PHP_DIR = Path(__file__).parent / "php"


@pytest.fixture
def php() -> str:
    found = shutil.which("php")
    if found is None:
        if os.environ.get("SECRETSD_REQUIRE_PHP") == "1":
            pytest.fail("php-cli is required here (SECRETSD_REQUIRE_PHP=1)")
        pytest.skip("php-cli is not installed")
    return found


def run_php(php: str, agent, arn: str, env: dict[str, str]) -> dict:
    endpoint = f"http://localhost:{agent.port}"  # the client's default host is localhost
    result = subprocess.run(
        # variables_order with E: the client reads AWS_TOKEN from $_ENV.
        [php, "-d", "variables_order=EGPCS", str(PHP_DIR / "drive.php"), endpoint, arn],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_php_client_against_the_agent(php, agent, sm, name):
    credentials = {"username": "app", "password": "p@ss w0rd", "host": "db", "dbname": "users"}
    arn = sm.create_secret(Name=name, SecretString=json.dumps(credentials))["ARN"]
    out = run_php(php, agent, arn, {"AWS_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"})
    assert out["available"] is True
    assert out["secret"]["ARN"] == arn and out["secret"]["Name"] == name
    assert json.loads(out["secret"]["SecretString"]) == credentials
    assert out["credentials"] == {
        "username": "app",
        "password": "p@ss w0rd",
        "host": "db",
        "port": 3306,
        "dbname": "users",
    }
    assert out["refreshed"]["VersionId"] == out["secret"]["VersionId"]
    assert "Agent returned HTTP 400" in out["missing"]
    assert "ResourceNotFoundException" in out["missing"]


def test_php_client_with_token_file(php, agent, sm, name, tmp_path):
    token_file = tmp_path / "awssmatoken"
    token_file.write_text(TOKEN)  # the client does not trim file:// tokens
    arn = sm.create_secret(Name=name, SecretString='{"username":"u","password":"p"}')["ARN"]
    out = run_php(php, agent, arn, {"AWS_TOKEN": f"file://{token_file}", "PATH": "/usr/bin:/bin"})
    assert out["credentials"]["username"] == "u"
