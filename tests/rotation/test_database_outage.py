"""The database goes away before setSecret: the rotation fails cleanly, names the cause,
leaves AWSCURRENT working, and succeeds on a retry once the database is back."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.rotation.functions.conftest import mysql_logs_in, mysql_secret, new_password
from tests.rotation.test_managed_rotation import history
from tests.support.server import start_server
from tests.support.tcp_proxy import TcpProxy
from tests.support.wait import wait_for

pytestmark = pytest.mark.mariadb


def test_rotation_retries_after_the_database_comes_back(tmp_path, mysql_users):
    proxy = TcpProxy(("127.0.0.1", 3306))
    old = new_password()
    user = mysql_users.create(old)
    args = ("--scheduler-interval", "0.1", "--rotation-retry-base", "0.3")
    server = start_server(tmp_path / "data", *args)
    try:
        sm = server.client()
        value = mysql_secret(user, old, port=proxy.port)
        name = f"outage/{uuid.uuid4().hex[:8]}"
        first = sm.create_secret(Name=name, SecretString=json.dumps(value))
        # The proxy is not started: the database is unreachable.
        token = sm.rotate_secret(SecretId=name, RotationLambdaARN="secretsd-mysql-single-user")[
            "VersionId"
        ]

        def failed_at_set_secret():
            return [
                e
                for e in history(server, name)
                if e.get("step") == "setSecret" and e["outcome"] == "failed"
            ]

        failures = wait_for(failed_at_set_secret, timeout=60)
        assert str(proxy.port) in failures[0]["error"] or "connect" in failures[0]["error"]
        assert old not in failures[0]["error"]
        current = sm.get_secret_value(SecretId=name)
        assert current["VersionId"] == first["VersionId"]
        assert mysql_logs_in(user, old)

        proxy.start()

        def rotated():
            stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
            return stages.get(token) == ["AWSCURRENT"]

        wait_for(rotated, timeout=60)
        new = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])
        assert mysql_logs_in(user, new["password"])
        assert not mysql_logs_in(user, old)
        outcomes = [e["outcome"] for e in history(server, name) if e["kind"] == "attempt"]
        assert outcomes[-1] == "succeeded" and outcomes.count("started") >= 2
    finally:
        proxy.stop()
        server.stop()
