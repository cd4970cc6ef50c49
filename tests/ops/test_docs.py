"""docs/operations.md's shell examples for health and status, run as written against a live
`secretsd up` (only the addresses change, as in tests/docs)."""

from __future__ import annotations

import configparser
import json
import sys
from pathlib import Path

import boto3

from tests.support.examples import run_shell, shell_blocks, user_environment
from tests.support.up import Up

ROOT = Path(__file__).resolve().parents[2]


def test_the_operations_examples_run_as_written(tmp_path) -> None:
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    up = Up("./data", cwd=tmp_path)
    try:
        assert up.ready.wait(60), "".join(up.lines)
        urls = up.urls()
        profile = configparser.ConfigParser()
        profile.read(tmp_path / "data" / "credentials")
        boto3.client(
            "secretsmanager",
            endpoint_url=urls["server"],
            region_name="us-east-1",
            aws_access_key_id=profile["secretsd"]["aws_access_key_id"],
            aws_secret_access_key=profile["secretsd"]["aws_secret_access_key"],
        ).create_secret(Name="db/app", SecretString="value")
        blocks = [
            block
            for heading in ("## Health", "## `secretsd status`")
            for block in shell_blocks("docs/operations.md", heading)
        ]
        script = "\n".join(blocks).replace("http://127.0.0.1:8787", urls["server"])
        # The examples check the agent at its default address; here it is elsewhere.
        run = run_shell(script, tmp_path, user_environment(SECRETSD_AGENT_URL=urls["agent"]))
        assert run.returncode == 0, run.stdout + run.stderr
        out = run.stdout
        assert out.startswith('{"status": "ok", "version": ')
        assert "OK: server and agent answer; 0 rotating secrets" in out
        described = json.loads(out[out.rindex('{\n    "ARN"') :])
        assert (described["Name"], described["Condition"]) == ("db/app", "disabled")
    finally:
        up.stop()
