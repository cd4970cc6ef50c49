"""A server killed (SIGKILL) in the middle of a rotation finishes it after restart, same token."""

from __future__ import annotations

import json
import sys
import uuid

import pytest

from tests.rotation.test_managed_rotation import history, wait_for
from tests.support.server import start_server

# Runs the built-in generic function, but parks at one step until the test kills the server.
WRAPPER = """
import json, os, sys, time
from secretsd.rotation.functions import generic
event = json.load(sys.stdin)
marker, park = sys.argv[1], sys.argv[2]
if event["Step"] == park and not os.path.exists(marker + ".resumed"):
    open(marker, "w").write(event["ClientRequestToken"])
    parent = os.getppid()
    while os.getppid() == parent:  # until the server is gone
        time.sleep(0.05)
    sys.exit(1)
generic.lambda_handler(event, None)
"""


@pytest.mark.parametrize("step", ["createSecret", "setSecret", "testSecret", "finishSecret"])
def test_rotation_survives_kill_9_at_each_step(tmp_path, step):
    marker = tmp_path / "parked"
    script = tmp_path / "wrapper.py"
    script.write_text(WRAPPER)
    config = tmp_path / "rotation.toml"
    argv = [sys.executable, str(script), str(marker), step]
    config.write_text(f"[functions.parking-generic]\ncommand = {json.dumps(argv)}\n")
    args = ("--rotation-config", str(config), "--scheduler-interval", "0.1")
    server = start_server(tmp_path / "data", *args)
    try:
        sm = server.client()
        name = f"restart/{uuid.uuid4().hex[:8]}"
        first = sm.create_secret(Name=name, SecretString=json.dumps({"api_key": "k0"}))
        token = sm.rotate_secret(SecretId=name, RotationLambdaARN="parking-generic")["VersionId"]
        wait_for(marker.exists)
        assert marker.read_text() == token
        server.kill()
    finally:
        server.stop()

    (tmp_path / "parked.resumed").touch()
    server = start_server(tmp_path / "data", *args)
    try:
        sm = server.client()

        def finished():
            stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
            return stages if stages.get(token) == ["AWSCURRENT"] else None

        stages = wait_for(finished, timeout=30)
        assert stages == {token: ["AWSCURRENT"], first["VersionId"]: ["AWSPREVIOUS"]}
        value = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])
        assert value["api_key"] != "k0"
        events = history(server, name)
        attempts = [e for e in events if e["kind"] == "attempt"]
        assert {e["token"] for e in attempts} == {token}
        assert attempts[-1]["outcome"] == "succeeded"
        assert sum(1 for e in attempts if e["outcome"] == "started") == 2
    finally:
        server.stop()
