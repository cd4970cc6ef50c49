"""The README's and the docs' shell examples, run as written against a live `secretsd up`.

Only the addresses change: the examples name the default ports (8787, 2773), the test runs
on free ones. The commands run in a directory where `./data` is the data directory and
`.venv` is this project's virtual environment, as after `make up`, with the AWS CLI on PATH.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pymysql
import pytest

from tests.support.examples import run_shell, shell_blocks, user_environment
from tests.support.up import Up
from tests.support.wait import wait_for

# (file, section heading): every shell block there that talks to the server or the agent.
EXAMPLES = (
    ("README.md", "## The server alone"),
    ("README.md", "## Rotation"),
    ("README.md", "## The agent"),
    ("docs/rotation.md", "## History"),
    ("docs/rotation.md", "## Turning it on"),
)


def aws_settings(server_url: str) -> dict[str, str]:
    """What the README's first example exports, for commands run after it."""
    return {
        "AWS_SHARED_CREDENTIALS_FILE": "./data/credentials",
        "AWS_PROFILE": "secretsd",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": server_url,
    }


def current_password(cwd: Path, env: dict[str, str], server_url: str) -> str:
    get = run_shell(
        "aws secretsmanager get-secret-value --secret-id db/app",
        cwd,
        dict(env, **aws_settings(server_url)),
        check=True,
        timeout=60,
    )
    return json.loads(json.loads(get.stdout)["SecretString"])["password"]


def drop_app_user() -> None:
    with pymysql.connect(host="127.0.0.1", user="root", password="") as conn:
        conn.cursor().execute("DROP USER IF EXISTS 'app'@'%'")


def test_the_examples_run_as_written(tmp_path, mariadb_available):
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    up = Up("./data", cwd=tmp_path)
    drop_app_user()
    try:
        assert up.ready.wait(60), "".join(up.lines)
        urls = up.urls()
        script = "\n".join(
            block.replace("http://127.0.0.1:8787", urls["server"]).replace(
                "http://127.0.0.1:2773", urls["agent"]
            )
            for path, heading in EXAMPLES[:3]
            for block in shell_blocks(path, heading)
        )
        env = user_environment()
        run = run_shell(script, tmp_path, env)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Traceback" not in run.stderr
        # The agent's answer to the curl example is the secret, JSON as the AWS agent gives it.
        answer = json.loads(run.stdout[run.stdout.rindex('{"ARN"') :])
        assert answer["Name"] == "db/app"

        def history() -> str:
            script = "\n".join(shell_blocks(*EXAMPLES[3]))
            return run_shell(script, tmp_path, env, check=True, timeout=60).stdout

        def rotated(times: int) -> list[dict] | None:
            """The history's JSON records once ``times`` rotations have succeeded."""
            text = history()
            records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
            done = [
                r for r in records if (r.get("kind"), r.get("outcome")) == ("attempt", "succeeded")
            ]
            return records if len(done) >= times else None

        # The rotation the example started ends, and its history says so.
        records = wait_for(
            lambda: rotated(1), timeout=90, interval=0.5, message="the rotation did not succeed"
        )
        assert not [r for r in records if r.get("outcome") == "failed"], records
        password = current_password(tmp_path, env, urls["server"])
        assert password != "first-Passw0rd"
        # And the database took the new password: the application can log in with it.
        pymysql.connect(host="127.0.0.1", user="app", password=password).close()
        with pytest.raises(pymysql.err.OperationalError):
            pymysql.connect(host="127.0.0.1", user="app", password="first-Passw0rd")

        # docs/rotation.md turns rotation on with a window: it rotates again at once.
        signed = dict(env, **aws_settings(urls["server"]))
        turned_on = run_shell("\n".join(shell_blocks(*EXAMPLES[4])), tmp_path, signed)
        assert turned_on.returncode == 0, turned_on.stdout + turned_on.stderr
        wait_for(lambda: rotated(2), timeout=90, interval=0.5, message="the second rotation failed")
        newest = current_password(tmp_path, env, urls["server"])
        assert newest != password
        pymysql.connect(host="127.0.0.1", user="app", password=newest).close()
    finally:
        code = up.stop()
        drop_app_user()
    assert code == 0, "".join(up.stderr)
