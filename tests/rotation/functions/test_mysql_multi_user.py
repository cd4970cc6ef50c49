"""secretsd-mysql-multi-user against the real MariaDB and a live secretsd server."""

from __future__ import annotations

import json

import pytest

from secretsd.rotation.functions import mysql_multi_user
from secretsd.rotation.functions.common import RotationError
from tests.rotation.functions.conftest import (
    mysql_logs_in,
    mysql_root,
    mysql_secret,
    new_password,
    unique_name,
)

handler = mysql_multi_user.lambda_handler
pytestmark = pytest.mark.mariadb
GRANTS = ("SELECT, INSERT ON test.*", "UPDATE ON test.sd_items")


@pytest.fixture
def table():
    with mysql_root() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS test.sd_items (id INT PRIMARY KEY)")


@pytest.fixture
def master(rotations) -> str:
    """The master secret: MariaDB's root on 127.0.0.1."""
    return rotations.create("mysql-master", mysql_secret("root", ""))


def test_alternating_users_keep_grants_and_the_previous_user_keeps_working(
    rotations, mysql_users, master, table
):
    first = new_password()
    user = mysql_users.create(first, GRANTS)
    arn = rotations.create("mysql-multi", mysql_secret(user, first, masterarn=master))

    rotations.rotate(handler, arn)
    current = rotations.value(arn)
    assert current["username"] == user + "_clone"
    assert current["masterarn"] == master
    assert mysql_logs_in(user + "_clone", current["password"])
    assert mysql_users.grants(user + "_clone") == mysql_users.grants(user)
    # The previous user is untouched: applications still holding it keep logging in.
    assert mysql_logs_in(user, first)

    clone_password = current["password"]
    rotations.rotate(handler, arn)
    back = rotations.value(arn)
    assert back["username"] == user
    assert mysql_logs_in(user, back["password"])
    assert not mysql_logs_in(user, first)
    assert mysql_logs_in(user + "_clone", clone_password)
    assert rotations.value(arn, "AWSPREVIOUS")["username"] == user + "_clone"


def test_a_username_with_quotes_and_percent_signs_rotates(rotations, mysql_users, master):
    first = new_password()
    user = mysql_users.create(first, ("SELECT ON test.*",), suffix="'q%s\\")
    arn = rotations.create("mysql-odd-name", mysql_secret(user, first, masterarn=master))

    rotations.rotate(handler, arn)

    current = rotations.value(arn)
    assert current["username"] == user + "_clone"
    assert mysql_logs_in(current["username"], current["password"])
    assert mysql_users.grants(user + "_clone") == mysql_users.grants(user)


def test_grants_are_copied_on_every_rotation(rotations, mysql_users, master, table):
    first = new_password()
    user = mysql_users.create(first, GRANTS)
    arn = rotations.create("mysql-regrant", mysql_secret(user, first, masterarn=master))
    rotations.rotate(handler, arn)
    # Access granted to the current user (the clone now) reaches the other one next time.
    with mysql_root() as conn, conn.cursor() as cur:
        cur.execute("GRANT DELETE ON test.* TO %s@'%%'", (user + "_clone",))

    rotations.rotate(handler, arn)

    grants = mysql_users.grants(user)
    assert "GRANT SELECT, INSERT, DELETE ON `test`.* TO <u>" in grants
    assert grants == mysql_users.grants(user + "_clone")


def test_roles_and_default_roles_are_copied(rotations, mysql_users, master):
    role = unique_name("sdr")
    first = new_password()
    user = mysql_users.create(first)
    with mysql_root() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE ROLE {role}")
        cur.execute(f"GRANT SELECT ON test.* TO {role}")
        cur.execute(f"GRANT {role} TO %s@'%%'", (user,))
        cur.execute(f"SET DEFAULT ROLE {role} FOR %s@'%%'", (user,))
    try:
        arn = rotations.create("mysql-role", mysql_secret(user, first, masterarn=master))
        rotations.rotate(handler, arn)
        clone = mysql_users.grants(user + "_clone")
        assert f"GRANT `{role}` TO <u>" in clone
        assert f"SET DEFAULT ROLE `{role}` FOR <u>" in clone
        assert clone == mysql_users.grants(user)
    finally:
        with mysql_root() as conn, conn.cursor() as cur:
            cur.execute(f"DROP ROLE IF EXISTS {role}")


def test_a_missing_alternate_user_is_created_again(rotations, mysql_users, master):
    first = new_password()
    user = mysql_users.create(first)
    arn = rotations.create("mysql-recreate", mysql_secret(user, first, masterarn=master))
    rotations.rotate(handler, arn)
    rotations.rotate(handler, arn)
    with mysql_root() as conn, conn.cursor() as cur:
        cur.execute("DROP USER %s@'%%'", (user + "_clone",))

    rotations.rotate(handler, arn)

    current = rotations.value(arn)
    assert current["username"] == user + "_clone"
    assert mysql_logs_in(current["username"], current["password"])
    assert mysql_users.grants(user + "_clone") == mysql_users.grants(user)


def test_every_step_is_idempotent(rotations, mysql_users, master, table):
    first = new_password()
    user = mysql_users.create(first, GRANTS)
    arn = rotations.create("mysql-multi-idem", mysql_secret(user, first, masterarn=master))
    token = rotations.begin(arn)

    def state():
        pending = rotations.value(arn, "AWSPENDING")
        return (
            rotations.stages(arn),
            pending,
            mysql_users.grants(user + "_clone"),
            mysql_logs_in(pending["username"], pending["password"]),
        )

    rotations.assert_each_step_idempotent(handler, arn, token, state)

    rotations.run_steps(handler, arn, token)

    current = rotations.value(arn)
    assert mysql_logs_in(current["username"], current["password"])
    assert mysql_users.grants(user + "_clone") == mysql_users.grants(user)


def test_a_master_that_cannot_log_in_fails_naming_the_master(rotations, mysql_users):
    first = new_password()
    user = mysql_users.create(first)
    wrong = new_password()
    master = rotations.create("mysql-bad-master", mysql_secret("root", wrong))
    arn = rotations.create("mysql-multi-bad", mysql_secret(user, first, masterarn=master))
    token = rotations.begin(arn)
    before = rotations.stages(arn)

    with pytest.raises(RotationError) as info:
        rotations.run_steps(handler, arn, token)

    message = str(info.value)
    assert "master secret" in message
    assert master in message
    assert wrong not in message
    assert first not in message
    assert {v: s for v, s in rotations.stages(arn).items() if "AWSCURRENT" in s} == {
        v: s for v, s in before.items() if "AWSCURRENT" in s
    }
    assert mysql_logs_in(user, first)
    assert not mysql_logs_in(user + "_clone", rotations.value(arn, "AWSPENDING")["password"])


def test_a_secret_without_masterarn_fails_naming_it(rotations, mysql_users):
    first = new_password()
    user = mysql_users.create(first)
    arn = rotations.create("mysql-no-master", mysql_secret(user, first))
    token = rotations.begin(arn)

    with pytest.raises(RotationError, match="'masterarn'"):
        rotations.run_steps(handler, arn, token)
    assert rotations.value(arn)["password"] == first


def test_a_master_secret_for_another_host_is_refused(rotations, mysql_users):
    first = new_password()
    user = mysql_users.create(first)
    elsewhere = mysql_secret("root", "", host="db.example.invalid")
    master = rotations.create("mysql-far-master", elsewhere)
    arn = rotations.create("mysql-multi-far", mysql_secret(user, first, masterarn=master))
    token = rotations.begin(arn)

    with pytest.raises(RotationError, match=r"master secret .* is for host db\.example\.invalid"):
        rotations.run_steps(handler, arn, token)
    assert json.loads(rotations.sm.get_secret_value(SecretId=arn)["SecretString"]) == mysql_secret(
        user, first, masterarn=master
    )
