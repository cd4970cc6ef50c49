"""Database connections through the client against live MariaDB/PostgreSQL and a live
server: credentials read fresh, a refused login retried with AWSPENDING and a fresh
AWSCURRENT, and a run of back-to-back rotations that costs an application no login."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pymysql
import pytest

from secretsd.client import SecretsClient, connect_mysql, connect_postgres
from tests.agent.support import TOKEN, start_agent, write_config
from tests.rotation.functions.conftest import (
    mysql_logs_in,
    mysql_secret,
    new_password,
    pg_logs_in,
    pg_secret,
)
from tests.rotation.test_server_zero_downtime import rotate_and_wait
from tests.support.server import start_server
from tests.support.wait import wait_for

ROTATIONS = 10


@pytest.fixture
def api_client(shared_server, closed_url, closing) -> SecretsClient:
    """A client that reads from the shared server's API (no agent)."""
    client = SecretsClient(
        agent_url=closed_url,
        endpoint_url=shared_server.endpoint_url,
        session=shared_server.session(),
        region_name="us-east-1",
        env={},
    )
    return closing(client)


def select_one(conn) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)


def pg_select_one(conn) -> None:
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_connect_mysql_with_awscurrent(mariadb_available, mysql_users, sm, api_client, name):
    password = new_password()
    user = mysql_users.create(password)
    sm.create_secret(Name=name, SecretString=json.dumps(mysql_secret(user, password)))
    sleeps: list[float] = []
    conn = connect_mysql(api_client, name, sleep=sleeps.append, connect_timeout=5)
    try:
        select_one(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER(), DATABASE()")
            assert cur.fetchone() == (f"{user}@%", "test")
    finally:
        conn.close()
    assert sleeps == []
    with pytest.raises(TypeError):
        connect_mysql(api_client, name, password="x")


def test_refused_awscurrent_falls_to_awspending(
    mariadb_available, mysql_users, sm, api_client, name
):
    pending = new_password()
    user = mysql_users.create(pending)
    sm.create_secret(Name=name, SecretString=json.dumps(mysql_secret(user, new_password())))
    sm.put_secret_value(
        SecretId=name,
        SecretString=json.dumps(mysql_secret(user, pending)),
        VersionStages=["AWSPENDING"],
    )
    sleeps: list[float] = []
    conn = connect_mysql(api_client, name, sleep=sleeps.append)
    select_one(conn)
    conn.close()
    assert sleeps == []


def test_every_login_refused_raises_the_drivers_error(
    mariadb_available, mysql_users, sm, api_client, name
):
    user = mysql_users.create(new_password())
    wrong = new_password()
    sm.create_secret(Name=name, SecretString=json.dumps(mysql_secret(user, wrong)))
    sleeps: list[float] = []
    with pytest.raises(pymysql.err.OperationalError) as caught:
        connect_mysql(api_client, name, sleep=sleeps.append, rounds=3, backoff=0.01)
    assert caught.value.args[0] == 1045
    assert wrong not in str(caught.value)
    assert sleeps == [0.01, 0.02]  # three rounds, a longer pause before each next one


def test_an_unreachable_database_is_not_retried(
    mariadb_available, mysql_users, sm, api_client, closed_url, name
):
    password = new_password()
    user = mysql_users.create(password)
    sm.create_secret(Name=name, SecretString=json.dumps(mysql_secret(user, password)))
    sleeps: list[float] = []
    port = int(closed_url.rsplit(":", 1)[1])
    with pytest.raises(pymysql.err.OperationalError) as caught:
        connect_mysql(api_client, name, sleep=sleeps.append, port=port, connect_timeout=2)
    assert caught.value.args[0] == 2003  # can't connect
    assert sleeps == []


def test_connect_postgres_falls_to_awspending(postgres_available, pg_roles, sm, api_client, name):
    if not pg_roles.passwords_checked:
        pytest.fail("PostgreSQL does not check passwords for the test roles (see pg_auth)")
    pending = new_password()
    role = pg_roles.create(pending)
    sm.create_secret(Name=name, SecretString=json.dumps(pg_secret(role, new_password())))
    sm.put_secret_value(
        SecretId=name,
        SecretString=json.dumps(pg_secret(role, pending)),
        VersionStages=["AWSPENDING"],
    )
    sleeps: list[float] = []
    with connect_postgres(api_client, name, sleep=sleeps.append, connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role,)
    assert sleeps == []


def rotations_under_load(tmp_path, closed_url, secret: dict, function: str, connect, query):
    """Rotate ``secret`` ROTATIONS times back to back through a live server, with its
    built-in ``function``, while an application opens a connection with ``connect`` through
    a live agent every few milliseconds. Returns the failures and the final secret."""
    server = start_server(tmp_path / "data", "--scheduler-interval", "0.05")
    agent = None
    try:
        sm = server.client()
        arn = sm.create_secret(
            Name=f"client-zd-{uuid.uuid4().hex[:8]}", SecretString=json.dumps(secret)
        )["ARN"]
        agent = start_agent(write_config(tmp_path / "agent"), server.env)
        # The API is a closed port and the environment empty: only the agent can answer.
        client = SecretsClient(agent_url=agent.url, token=TOKEN, endpoint_url=closed_url, env={})
        successes, failures = 0, []
        stop = threading.Event()

        def application() -> None:
            nonlocal successes
            while not stop.is_set():
                try:
                    conn = connect(client, arn, connect_timeout=5)
                    try:
                        query(conn)
                    finally:
                        conn.close()
                    successes += 1
                except Exception as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.002)
            client.close()

        thread = threading.Thread(target=application, daemon=True)
        thread.start()

        def more_successes(count: int) -> None:
            # The application's pace depends on the machine's load: wait for it, bounded.
            target = successes + count
            wait_for(lambda: successes >= target or failures, timeout=30)

        more_successes(1)  # the rotations run under load, from the first one
        tokens = {rotate_and_wait(sm, arn, function) for _ in range(ROTATIONS)}
        # Two more: the second began after the last rotation ended, with its credentials.
        more_successes(2)
        stop.set()
        thread.join(30)
        assert len(tokens) == ROTATIONS
        assert successes >= ROTATIONS
        # Logins were refused along the way and retried through the agent's refreshNow,
        # while the other connections were served from its cache.
        assert agent.metric("secretsd_agent_cache_refresh_now_total") > 0
        assert agent.metric("secretsd_agent_cache_hits_total") > 0
        return failures, json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
    finally:
        if agent is not None:
            agent.stop()
        server.stop()


@pytest.mark.slow
def test_ten_back_to_back_mariadb_rotations_fail_no_login(
    mariadb_available, mysql_users, closed_url, tmp_path
):
    old = new_password()
    user = mysql_users.create(old)
    failures, final = rotations_under_load(
        tmp_path,
        closed_url,
        mysql_secret(user, old),
        "secretsd-mysql-single-user",
        connect_mysql,
        select_one,
    )
    assert failures == []
    assert mysql_logs_in(user, final["password"]) and not mysql_logs_in(user, old)


@pytest.mark.slow
def test_ten_back_to_back_postgres_rotations_fail_no_login(
    postgres_available, pg_roles, closed_url, tmp_path
):
    if not pg_roles.passwords_checked:
        pytest.fail("PostgreSQL does not check passwords for the test roles (see pg_auth)")
    old = new_password()
    role = pg_roles.create(old)
    failures, final = rotations_under_load(
        tmp_path,
        closed_url,
        pg_secret(role, old),
        "secretsd-postgresql-single-user",
        connect_postgres,
        pg_select_one,
    )
    assert failures == []
    assert pg_logs_in(role, final["password"]) and not pg_logs_in(role, old)
