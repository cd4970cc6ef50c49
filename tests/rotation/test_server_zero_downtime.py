"""Zero downtime with the server doing the rotating: 50 back-to-back RotateSecret calls on
MariaDB (and PostgreSQL), the scheduler running the built-in functions, an application
connecting every few milliseconds the way the client library will. No login may fail."""

from __future__ import annotations

import json
import time
import uuid

import psycopg
import pytest

from tests.rotation.functions.app_loop import AppLoop, LoginRefused, secret_fetchers
from tests.rotation.functions.conftest import (
    mysql_secret,
    new_password,
    pg_logs_in,
    pg_secret,
)
from tests.rotation.functions.test_zero_downtime import mysql_connect, select_one
from tests.rotation.test_managed_rotation import wait_for
from tests.support.server import start_server

pytestmark = pytest.mark.slow
ROTATIONS = 50


def rotate_and_wait(sm, arn: str, function: str) -> str:
    token = sm.rotate_secret(SecretId=arn, RotationLambdaARN=function)["VersionId"]

    def done():
        stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
        return stages.get(token) == ["AWSCURRENT"]

    wait_for(done, timeout=30, interval=0.01)
    return token


@pytest.mark.mariadb
@pytest.mark.parametrize(
    ("function", "alternating"),
    [("secretsd-mysql-single-user", False), ("secretsd-mysql-multi-user", True)],
    ids=["single-user", "alternating-users"],
)
def test_fifty_server_rotations_fail_no_login(tmp_path, mysql_users, function, alternating):
    server = start_server(tmp_path / "data", "--scheduler-interval", "0.05")
    try:
        sm = server.client()
        old = new_password()
        user = mysql_users.create(old)
        extra = {}
        if alternating:
            master = sm.create_secret(
                Name=f"zd-master-{uuid.uuid4().hex[:8]}",
                SecretString=json.dumps(mysql_secret("root", "")),
            )
            extra["masterarn"] = master["ARN"]
        arn = sm.create_secret(
            Name=f"zd-app-{uuid.uuid4().hex[:8]}",
            SecretString=json.dumps(mysql_secret(user, old, **extra)),
        )["ARN"]
        current, pending = secret_fetchers(server.client(), arn)
        app = AppLoop(current, pending, mysql_connect, select_one)
        tokens = []
        with app:
            time.sleep(0.1)
            for _ in range(ROTATIONS):
                tokens.append(rotate_and_wait(sm, arn, function))
            time.sleep(0.1)

        assert app.failures == []
        assert app.successes >= ROTATIONS
        assert len(set(tokens)) == ROTATIONS
        final = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
        assert final["password"] != old
        assert final["username"] == user  # 50 is even: back to the original user
        if alternating:
            assert app.retries == {}
        meta = sm.describe_secret(SecretId=arn)
        assert "AWSPENDING" not in json.dumps(meta["VersionIdsToStages"])
    finally:
        server.stop()


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
@pytest.mark.parametrize(
    ("function", "alternating"),
    [("secretsd-postgresql-single-user", False), ("secretsd-postgresql-multi-user", True)],
    ids=["single-user", "alternating-users"],
)
def test_fifty_server_rotations_fail_no_postgres_login(tmp_path, pg_roles, function, alternating):
    if not pg_roles.passwords_checked:
        pytest.fail("PostgreSQL does not check passwords for the test roles (see pg_auth)")
    server = start_server(tmp_path / "data", "--scheduler-interval", "0.05")
    try:
        sm = server.client()
        old = new_password()
        user = pg_roles.create(old)
        extra = {}
        if alternating:
            master_password = new_password()
            master = pg_roles.create(master_password, createrole=True)
            extra["masterarn"] = sm.create_secret(
                Name=f"zd-pg-master-{uuid.uuid4().hex[:8]}",
                SecretString=json.dumps(pg_secret(master, master_password)),
            )["ARN"]
        arn = sm.create_secret(
            Name=f"zd-pg-{uuid.uuid4().hex[:8]}",
            SecretString=json.dumps(pg_secret(user, old, **extra)),
        )["ARN"]
        current, pending = secret_fetchers(server.client(), arn)
        app = AppLoop(current, pending, pg_connect, pg_select_one)
        with app:
            time.sleep(0.1)
            for _ in range(ROTATIONS):
                rotate_and_wait(sm, arn, function)
            time.sleep(0.1)
        assert app.failures == []
        assert app.successes >= ROTATIONS
        final = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
        assert final["username"] == user
        assert pg_logs_in(user, final["password"]) and not pg_logs_in(user, old)
    finally:
        server.stop()
