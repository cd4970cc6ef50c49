"""The seed's PHP SecretsManagerAgentClient, unchanged, against the agent (php-cli)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.rotation.functions.conftest import mysql_secret, new_password
from tests.rotation.test_server_zero_downtime import rotate_and_wait
from tests.support.server import start_server
from tests.support.wait import wait_for

from .support import TOKEN, start_agent, write_config

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


ROTATIONS = 5


@pytest.mark.slow
def test_php_application_across_rotations_reads_each_new_password(
    php, mariadb_available, mysql_users, tmp_path
):
    """The seed's application pattern through the agent while a live server rotates a
    MariaDB user: a login refused during a rotation is followed by refreshSecretForRotation
    and one retry. A refresh that starts after the rotation finished must get the new
    password, so only retries that started before the finish may still fail."""
    old = new_password()
    user = mysql_users.create(old)
    server = start_server(tmp_path / "data", "--scheduler-interval", "0.05")
    agent = None
    app = None
    try:
        sm = server.client()
        arn = sm.create_secret(
            Name=f"php-zd-{uuid.uuid4().hex[:8]}", SecretString=json.dumps(mysql_secret(user, old))
        )["ARN"]
        agent = start_agent(write_config(tmp_path / "agent"), server.env)
        stop = tmp_path / "stop"
        app = subprocess.Popen(
            [php, "-d", "variables_order=EGPCS", str(PHP_DIR / "rotation_app.php")]
            + [f"http://localhost:{agent.port}", arn, str(stop)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={"AWS_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"},
        )
        wait_for(lambda: agent.metric("secretsd_agent_cache_hits_total") > 5, timeout=30)
        windows = []
        for _ in range(ROTATIONS):
            started = time.time()
            rotate_and_wait(sm, arn, "secretsd-mysql-single-user")
            windows.append((started, time.time()))  # the finish was seen by now
        end_of_run = time.time()
        hits = agent.metric("secretsd_agent_cache_hits_total")
        wait_for(lambda: agent.metric("secretsd_agent_cache_hits_total") > hits + 5, timeout=30)
        stop.touch()
        out, _ = app.communicate(timeout=60)
        attempts = json.loads(out.strip().splitlines()[-1])["attempts"]
    finally:
        if app is not None and app.poll() is None:
            app.kill()
            app.wait()
        if agent is not None:
            agent.stop()
        server.stop()

    def during_a_rotation(when: float) -> bool:
        return any(start <= when <= end for start, end in windows)

    failed = [(when, retry) for when, ok, retry in attempts if not ok]
    for (start, end), (next_start, _) in zip(
        windows, [*windows[1:], (end_of_run, 0.0)], strict=True
    ):
        inside = [when for when, _ in failed if start <= when <= end]
        after = [when for when, _ in failed if end < when < next_start]
        print(  # the measurement, shown with -s
            f"rotation {end - start:.3f} s: {len(inside)} failed logins during it, "
            f"span {max(inside) - min(inside) if inside else 0:.3f} s; "
            f"{len(after)} after it, for {max(after) - end if after else 0:.3f} s"
        )
    # A refresh that started after a rotation finished got the new password: retries fail
    # only during a rotation (between its setSecret and finishSecret, where no stage holds
    # the database's password yet for a single user).
    assert [when for when, retry in failed if retry and not during_a_rotation(when)] == []
    # After a rotation, the one login with the cached old password fails, then no other.
    late = [when for when, retry in failed if not retry and not during_a_rotation(when)]
    assert len(late) <= ROTATIONS
    assert attempts[-1][1] is True
