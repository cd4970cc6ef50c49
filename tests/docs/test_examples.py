"""The README's and the docs' shell examples, run as written against a live `secretsd up`.

Only the addresses change: the examples name the default ports (8787, 2773), the test runs
on free ones. The commands run in a directory where `./data` is the data directory and
`.venv` is this project's virtual environment, as after `make up`, with the AWS CLI on PATH.
"""

from __future__ import annotations

import json
import subprocess
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
)


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

        # The rotation the example started ends, and its history says so in both forms.
        def succeeded() -> str | None:
            text = history()
            return text if "succeeded" in text else None

        finished = wait_for(
            succeeded,
            timeout=90,
            interval=0.5,
            message="the example's rotation did not succeed",
        )
        records = [json.loads(line) for line in finished.splitlines() if line.startswith("{")]
        assert records, finished
        assert "failed" not in finished.lower(), finished

        # And the database took the new password: the application can log in with it.
        get = subprocess.run(
            ["aws", "secretsmanager", "get-secret-value", "--secret-id", "db/app"],
            cwd=tmp_path,
            env=dict(
                env,
                AWS_SHARED_CREDENTIALS_FILE="./data/credentials",
                AWS_PROFILE="secretsd",
                AWS_DEFAULT_REGION="us-east-1",
                AWS_ENDPOINT_URL_SECRETS_MANAGER=urls["server"],
            ),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        current = json.loads(json.loads(get.stdout)["SecretString"])
        assert current["password"] != "first-Passw0rd"
        pymysql.connect(host="127.0.0.1", user="app", password=current["password"]).close()
        with pytest.raises(pymysql.err.OperationalError):
            pymysql.connect(host="127.0.0.1", user="app", password="first-Passw0rd")
    finally:
        code = up.stop()
        drop_app_user()
    assert code == 0, "".join(up.stderr)
