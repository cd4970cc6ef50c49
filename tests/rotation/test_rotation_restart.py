"""A server killed (SIGKILL) in the middle of a rotation finishes it after restart, with the
same token, whether it died before a step ran or right after the step did its work."""

from __future__ import annotations

import json
import sys
import uuid

import pytest

from tests.rotation.functions.conftest import mysql_logs_in, mysql_secret, new_password
from tests.rotation.test_managed_rotation import history
from tests.support.server import start_server
from tests.support.wait import wait_for

# Runs a built-in function, but parks before or after one step until the server is killed.
WRAPPER = """
import importlib, json, os, sys, time
event = json.load(sys.stdin)
module, marker, park, when = sys.argv[1:5]
handler = importlib.import_module("secretsd.rotation.functions." + module).lambda_handler

def park_here():
    if event["Step"] == park and not os.path.exists(marker + ".resumed"):
        open(marker, "w").write(event["ClientRequestToken"])
        parent = os.getppid()
        while os.getppid() == parent:  # until the server is gone
            time.sleep(0.05)
        sys.exit(1)

if when == "before":
    park_here()
handler(event, None)
if when == "after":
    park_here()
"""
STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"]


def rotate_through_a_kill(tmp_path, module: str, step: str, when: str, value: dict):
    marker = tmp_path / "parked"
    script = tmp_path / "wrapper.py"
    script.write_text(WRAPPER)
    config = tmp_path / "rotation.toml"
    argv = [sys.executable, str(script), module, str(marker), step, when]
    config.write_text(f"[functions.parking]\ncommand = {json.dumps(argv)}\n")
    args = ("--rotation-config", str(config), "--scheduler-interval", "0.1")
    server = start_server(tmp_path / "data", *args)
    name = f"restart/{uuid.uuid4().hex[:8]}"
    try:
        sm = server.client()
        first = sm.create_secret(Name=name, SecretString=json.dumps(value))
        token = sm.rotate_secret(SecretId=name, RotationLambdaARN="parking")["VersionId"]
        # The wrapper creates the file, then writes the token: wait for the token.
        wait_for(lambda: marker.exists() and marker.read_text() != "")
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
        attempts = [e for e in history(server, name) if e["kind"] == "attempt"]
        assert {e["token"] for e in attempts} == {token}
        assert attempts[-1]["outcome"] == "succeeded"
        assert sum(1 for e in attempts if e["outcome"] == "started") == 2
        return json.loads(sm.get_secret_value(SecretId=name)["SecretString"])
    finally:
        server.stop()


@pytest.mark.parametrize("step", STEPS)
def test_generic_rotation_survives_kill_9_before_each_step(tmp_path, step):
    rotated = rotate_through_a_kill(tmp_path, "generic", step, "before", {"api_key": "k0"})
    assert rotated["api_key"] != "k0"


@pytest.mark.mariadb
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("step", STEPS)
def test_mysql_rotation_survives_kill_9_at_each_step(tmp_path, mysql_users, step, when):
    old = new_password()
    user = mysql_users.create(old)
    rotated = rotate_through_a_kill(
        tmp_path, "mysql_single_user", step, when, mysql_secret(user, old)
    )
    # AWSCURRENT logs in; the old password does not.
    assert mysql_logs_in(user, rotated["password"])
    assert not mysql_logs_in(user, old)
