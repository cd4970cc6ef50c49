"""Zero downtime with the server doing the rotating: 50 back-to-back RotateSecret calls on
MariaDB and PostgreSQL, the scheduler running the built-in functions, an application
connecting every few milliseconds the way the client library will. No login may fail."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from tests.rotation.functions.app_loop import AppLoop, LoginRefused, secret_fetchers
from tests.rotation.functions.conftest import (
    mysql_logs_in,
    mysql_secret,
    new_password,
    pg_logs_in,
    pg_secret,
)
from tests.rotation.functions.test_zero_downtime import mysql_connect, select_one
from tests.support.server import start_server
from tests.support.wait import wait_for

pytestmark = pytest.mark.slow
ROTATIONS = 50
ALTERNATING = ["single-user", "alternating-users"]


def rotate_and_wait(sm, arn: str, function: str) -> str:
    token = sm.rotate_secret(SecretId=arn, RotationLambdaARN=function)["VersionId"]

    def done():
        stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
        return stages.get(token) == ["AWSCURRENT"]

    wait_for(done, timeout=30, interval=0.01)
    return token


def fifty_rotations_under_load(
    tmp_path, function: str, secret: dict, master: dict | None, connect, query
) -> tuple[AppLoop, dict]:
    """Rotate ``secret`` 50 times through a live server while an application connects."""
    server = start_server(tmp_path / "data", "--scheduler-interval", "0.05")
    try:
        sm = server.client()
        if master is not None:
            secret = dict(secret)
            secret["masterarn"] = sm.create_secret(
                Name=f"zd-master-{uuid.uuid4().hex[:8]}", SecretString=json.dumps(master)
            )["ARN"]
        arn = sm.create_secret(
            Name=f"zd-app-{uuid.uuid4().hex[:8]}", SecretString=json.dumps(secret)
        )["ARN"]
        current, pending = secret_fetchers(server.client(), arn)
        app = AppLoop(current, pending, connect, query)
        with app:
            app.wait_for_successes(1)  # the rotations run under load, from the first one
            tokens = {rotate_and_wait(sm, arn, function) for _ in range(ROTATIONS)}
            # Two more: the second began after the last rotation ended, with its credentials.
            app.wait_for_successes(2)
        assert len(tokens) == ROTATIONS
        assert "AWSPENDING" not in json.dumps(
            sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
        )
        return app, json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
    finally:
        server.stop()


@pytest.mark.mariadb
@pytest.mark.parametrize("alternating", [False, True], ids=ALTERNATING)
def test_fifty_server_rotations_fail_no_mariadb_login(tmp_path, mysql_users, alternating):
    old = new_password()
    user = mysql_users.create(old)
    function = "secretsd-mysql-multi-user" if alternating else "secretsd-mysql-single-user"
    master = mysql_secret("root", "") if alternating else None
    app, final = fifty_rotations_under_load(
        tmp_path, function, mysql_secret(user, old), master, mysql_connect, select_one
    )
    assert app.failures == []
    assert app.successes >= ROTATIONS
    assert final["username"] == user  # 50 is even: back to the original user
    assert mysql_logs_in(user, final["password"]) and not mysql_logs_in(user, old)
    if alternating:
        assert app.retries == {}  # each user keeps working while it is AWSPREVIOUS


def pg_connect(credentials: dict):
    try:
        return psycopg.connect(
            host=credentials["host"],
            port=int(credentials["port"]),
            user=credentials["username"],
            password=credentials["password"],
            dbname=credentials["dbname"],
            connect_timeout=5,
        )
    except psycopg.OperationalError as exc:
        if "password authentication failed" in str(exc) or "does not exist" in str(exc):
            raise LoginRefused(f"login refused for {credentials['username']}") from None
        raise


def pg_select_one(conn) -> None:
    assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.postgres
@pytest.mark.parametrize("alternating", [False, True], ids=ALTERNATING)
def test_fifty_server_rotations_fail_no_postgres_login(tmp_path, pg_roles, alternating):
    if not pg_roles.passwords_checked:
        pytest.fail("PostgreSQL does not check passwords for the test roles (see pg_auth)")
    old = new_password()
    user = pg_roles.create(old)
    function = (
        "secretsd-postgresql-multi-user" if alternating else "secretsd-postgresql-single-user"
    )
    master = None
    if alternating:
        master_password = new_password()
        master = pg_secret(pg_roles.create(master_password, createrole=True), master_password)
    app, final = fifty_rotations_under_load(
        tmp_path, function, pg_secret(user, old), master, pg_connect, pg_select_one
    )
    assert app.failures == []
    assert app.successes >= ROTATIONS
    assert final["username"] == user
    assert pg_logs_in(user, final["password"]) and not pg_logs_in(user, old)
