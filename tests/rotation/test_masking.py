"""History masks what a secret's rotation function declares secret, on a live server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from secretsd.rotation.registry import ConfigError, FunctionRegistry
from tests.support.server import start_server
from tests.support.wait import wait_for

HISTORY = [sys.executable, "-m", "secretsd.cli", "rotation", "history"]
# A function that fails with the secret's whole value in its error, as careless code does.
LEAKY = """
import json, os, sys, boto3
event = json.load(sys.stdin)
sm = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"])
value = sm.get_secret_value(SecretId=event["SecretId"])["SecretString"]
sys.exit("cannot open the door at " + value)
"""


def test_history_masks_declared_fields_and_keeps_the_rest(tmp_path: Path) -> None:
    script = tmp_path / "leaky.py"
    script.write_text(LEAKY)
    config = tmp_path / "rotation.toml"
    config.write_text(
        f"[functions.door]\ncommand = {json.dumps([sys.executable, str(script)])}\n"
        'secret_fields = ["Sesame"]\n'
    )
    server = start_server(
        tmp_path / "data", "--rotation-config", str(config), "--scheduler-interval", "0.1"
    )
    try:
        sm = server.client()
        value = {"door": "front.example", "sesame": "open-sesame-42", "password": "hunter2-long"}
        sm.create_secret(Name="door/key", SecretString=json.dumps(value))
        sm.rotate_secret(SecretId="door/key", RotationLambdaARN="door")

        def failed_step() -> str | None:
            done = subprocess.run(
                [*HISTORY, "door/key", "--data-dir", str(server.data_dir), "--json"],
                capture_output=True,
                text=True,
                check=True,
            )
            errors = [json.loads(line).get("error") for line in done.stdout.splitlines()]
            return next((e for e in errors if e), None)

        error = wait_for(failed_step, timeout=60, message="no failed step in the history")
    finally:
        server.stop()
    assert "front.example" in error  # what the operator needs stays
    assert "open-sesame-42" not in error and "hunter2-long" not in error
    assert "open-sesame-42" not in server.log_text()


def test_secret_fields_must_be_a_list_of_names(tmp_path: Path) -> None:
    config = tmp_path / "rotation.toml"
    config.write_text('[functions.door]\ncommand = ["/bin/true"]\nsecret_fields = "sesame"\n')
    with pytest.raises(ConfigError, match="secret_fields must be a list of field names"):
        FunctionRegistry.from_config(config)
