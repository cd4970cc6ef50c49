"""Applications that connect the way the client library will see no failed login while
rotations run back to back (MariaDB, single user and alternating users)."""

from __future__ import annotations

import pymysql
import pytest

from secretsd.rotation.functions import mysql_multi_user, mysql_single_user
from tests.rotation.functions.app_loop import (
    AppLoop,
    LoginRefused,
    connect_fresh,
    secret_fetchers,
)
from tests.rotation.functions.conftest import MYSQL_REFUSED, mysql_secret, new_password

pytestmark = [pytest.mark.mariadb, pytest.mark.slow]
ROTATIONS = 10


def mysql_connect(credentials: dict) -> pymysql.connections.Connection:
    try:
        return pymysql.connect(
            host=credentials["host"],
            port=int(credentials["port"]),
            user=credentials["username"],
            password=credentials["password"],
            database=credentials.get("dbname"),
            connect_timeout=5,
        )
    except pymysql.err.OperationalError as exc:
        if exc.args[0] in MYSQL_REFUSED:
            raise LoginRefused(f"login refused for {credentials['username']}") from None
        raise


def select_one(conn) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)


def test_the_refused_login_window_is_bridged_by_the_pending_secret(rotations, mysql_users):
    old = new_password()
    user = mysql_users.create(old)
    arn = rotations.create("zd-window", mysql_secret(user, old))
    current, pending = secret_fetchers(rotations.sm, arn)
    handler = mysql_single_user.lambda_handler
    token = rotations.begin(arn)
    rotations.run_steps(handler, arn, token, ("createSecret", "setSecret"))

    # Between setSecret and finishSecret the AWSCURRENT password no longer logs in...
    with pytest.raises(LoginRefused):
        mysql_connect(current())
    # ...and the helper still connects, through AWSPENDING.
    retried: list[str] = []
    conn = connect_fresh(current, pending, mysql_connect, retried.append)
    select_one(conn)
    conn.close()
    assert retried == ["AWSCURRENT"]

    rotations.run_steps(handler, arn, token, ("testSecret", "finishSecret"))
    rotations.finish(arn, token)
    retried.clear()
    connect_fresh(current, pending, mysql_connect, retried.append).close()
    assert retried == []


@pytest.mark.parametrize(
    ("handler", "alternating"),
    [(mysql_single_user.lambda_handler, False), (mysql_multi_user.lambda_handler, True)],
    ids=["single-user", "alternating-users"],
)
def test_back_to_back_rotations_fail_no_login(rotations, mysql_users, handler, alternating):
    old = new_password()
    user = mysql_users.create(old)
    extra = {}
    if alternating:
        extra["masterarn"] = rotations.create("zd-master", mysql_secret("root", ""))
    arn = rotations.create("zd-loop", mysql_secret(user, old, **extra))
    current, pending = secret_fetchers(rotations.sm, arn)
    app = AppLoop(current, pending, mysql_connect, select_one)

    with app:
        app.wait_for_successes(1)  # the rotations run under load, from the first one
        for _ in range(ROTATIONS):
            rotations.rotate(handler, arn)
        # Two more: the second began after the last rotation ended, with its credentials.
        app.wait_for_successes(2)

    assert app.failures == []
    assert app.successes >= ROTATIONS
    final = rotations.value(arn)
    assert final["username"] == (user if ROTATIONS % 2 == 0 or not alternating else user + "_clone")
    if alternating:
        # Each user keeps working while it is AWSPREVIOUS: no application ever needs a retry.
        assert app.retries == {}
