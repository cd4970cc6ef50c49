"""secretsd-postgresql-single-user and -multi-user against the real PostgreSQL.

The roles made here are members of ``pg_auth.GROUP``, for which the test server checks
passwords (scram-sha-256) although it trusts every other login from 127.0.0.1.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from secretsd.rotation.functions import postgresql_multi_user, postgresql_single_user
from secretsd.rotation.functions.common import RotationError
from tests.conftest import REQUIRE_DATABASES
from tests.rotation.functions import pg_auth
from tests.rotation.functions.conftest import new_password, pg_logs_in, pg_secret

single = postgresql_single_user.lambda_handler
multi = postgresql_multi_user.lambda_handler
pytestmark = pytest.mark.postgres


def require_password_checks(pg_roles) -> None:
    """Tests that tell an old password from a new one need a server that checks them."""
    if pg_roles.passwords_checked:
        return
    reason = (
        "PostgreSQL does not check passwords for the test roles: run "
        "`python -m tests.rotation.functions.pg_auth` as a user that may edit pg_hba.conf"
    )
    if REQUIRE_DATABASES:
        pytest.fail(reason)
    pytest.skip(reason)


def current_version(rotations, arn) -> str:
    return next(v for v, s in rotations.stages(arn).items() if "AWSCURRENT" in s)


def query_as(user: str, password: str, statement: str):
    with psycopg.connect(
        host="127.0.0.1", port=5432, user=user, password=password, dbname="test"
    ) as conn:
        return conn.execute(statement).fetchall()


# -- single user ---------------------------------------------------------------------------


def test_single_user_rotation(rotations, pg_roles):
    require_password_checks(pg_roles)
    old = new_password()
    role = pg_roles.create(old)
    arn = rotations.create("pg-single", pg_secret(role, old))

    rotations.rotate(single, arn)

    current = rotations.value(arn)
    assert current["username"] == role
    assert len(current["password"]) == 32
    assert not set(current["password"]) & set(":/@\"'\\")
    assert pg_logs_in(role, current["password"])
    assert not pg_logs_in(role, old)
    assert rotations.value(arn, "AWSPREVIOUS")["password"] == old


def test_single_user_steps_are_idempotent(rotations, pg_roles):
    require_password_checks(pg_roles)
    old = new_password()
    role = pg_roles.create(old)
    arn = rotations.create("pg-idem", pg_secret(role, old))
    token = rotations.begin(arn)
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        single(rotations.event(arn, token, step), None)
        once = (rotations.stages(arn), rotations.value(arn, "AWSPENDING"))
        single(rotations.event(arn, token, step), None)
        assert (rotations.stages(arn), rotations.value(arn, "AWSPENDING")) == once

    rotations.run_steps(single, arn, token)

    assert current_version(rotations, arn) == token
    assert pg_logs_in(role, rotations.value(arn)["password"])
    assert not pg_logs_in(role, old)


def test_a_refused_login_fails_and_keeps_current(rotations, pg_roles):
    require_password_checks(pg_roles)
    real = new_password()
    role = pg_roles.create(real)
    stale = new_password()
    arn = rotations.create("pg-refused", pg_secret(role, stale))
    token = rotations.begin(arn)
    before = current_version(rotations, arn)

    with pytest.raises(RotationError) as info:
        rotations.run_steps(single, arn, token)

    message = str(info.value)
    assert "Cannot log in" in message
    assert "password authentication failed" in message
    for secret in (real, stale, rotations.value(arn, "AWSPENDING")["password"]):
        assert secret not in message
    assert current_version(rotations, arn) == before
    assert pg_logs_in(role, real)


def test_a_new_password_the_database_refuses_fails_naming_the_cause(rotations, pg_roles):
    require_password_checks(pg_roles)
    old = new_password()
    role = pg_roles.create(old)
    # A read-only session may not run ALTER ROLE: the database refuses the password change.
    with pg_auth.superuser_connection() as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(
                sql.Identifier(role)
            )
        )
    arn = rotations.create("pg-readonly", pg_secret(role, old))
    token = rotations.begin(arn)

    with pytest.raises(RotationError) as info:
        rotations.run_steps(single, arn, token)

    message = str(info.value)
    assert "refused the new password" in message
    assert "read-only transaction" in message
    assert rotations.value(arn, "AWSPENDING")["password"] not in message
    assert old not in message
    assert rotations.value(arn)["password"] == old
    assert pg_logs_in(role, old)


def test_an_unreachable_database_fails_naming_the_address(rotations, pg_roles):
    old = new_password()
    role = pg_roles.create(old)
    arn = rotations.create("pg-down", pg_secret(role, old, port=9))
    token = rotations.begin(arn)

    with pytest.raises(RotationError, match=r"Cannot reach PostgreSQL at 127\.0\.0\.1:9"):
        rotations.run_steps(single, arn, token)
    assert rotations.value(arn)["password"] == old


@pytest.mark.parametrize("engine", ["mysql", "oracle"])
def test_a_secret_for_another_engine_is_refused(rotations, pg_roles, engine):
    old = new_password()
    role = pg_roles.create(old)
    arn = rotations.create("pg-engine", pg_secret(role, old, engine=engine))
    token = rotations.begin(arn)

    with pytest.raises(RotationError, match=f"engine '{engine}'.*PostgreSQL"):
        rotations.run_steps(single, arn, token)


def test_ssl_true_demands_tls(rotations, pg_roles):
    old = new_password()
    role = pg_roles.create(old)
    arn = rotations.create("pg-tls", pg_secret(role, old, ssl=True))
    token = rotations.begin(arn)

    with pytest.raises(RotationError, match="SSL"):
        rotations.run_steps(single, arn, token)
    assert rotations.value(arn)["password"] == old


# -- alternating users ---------------------------------------------------------------------


@pytest.fixture
def pg_master(rotations, pg_roles) -> str:
    """A master secret for a role that may create roles, with a checked password."""
    password = new_password()
    role = pg_roles.create(password, createrole=True)
    return rotations.create("pg-master", pg_secret(role, password))


@pytest.fixture
def owned_table(pg_roles):
    """A table and a group role: the base user reads the table through the group."""
    group = pg_roles.group()
    name = f"sd_items_{group}"
    with pg_auth.superuser_connection() as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("INSERT INTO {} VALUES (7)").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(name), sql.Identifier(group))
        )
    yield group, name
    with pg_auth.superuser_connection() as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def test_alternating_users_keep_access(rotations, pg_roles, pg_master, owned_table):
    require_password_checks(pg_roles)
    group, table = owned_table
    first = new_password()
    user = pg_roles.create(first, member_of=(group,))
    arn = rotations.create("pg-multi", pg_secret(user, first, masterarn=pg_master))

    rotations.rotate(multi, arn)
    current = rotations.value(arn)
    assert current["username"] == user + "_clone"
    assert query_as(current["username"], current["password"], f"SELECT id FROM {table}") == [(7,)]
    assert {user, group, pg_auth.GROUP} <= pg_roles.memberships(user + "_clone")
    assert pg_logs_in(user, first)

    clone_password = current["password"]
    rotations.rotate(multi, arn)
    back = rotations.value(arn)
    assert back["username"] == user
    assert query_as(user, back["password"], f"SELECT id FROM {table}") == [(7,)]
    assert not pg_logs_in(user, first)
    assert pg_logs_in(user + "_clone", clone_password)


def test_a_role_name_that_needs_quoting_rotates(rotations, pg_roles, pg_master):
    require_password_checks(pg_roles)
    first = new_password()
    user = pg_roles.create(first, suffix='-Q"{x}')
    arn = rotations.create("pg-odd-name", pg_secret(user, first, masterarn=pg_master))

    rotations.rotate(multi, arn)
    rotations.rotate(multi, arn)

    back = rotations.value(arn)
    assert back["username"] == user
    assert pg_logs_in(user, back["password"])
    assert not pg_logs_in(user, first)
    assert user in pg_roles.memberships(user + "_clone")


def test_memberships_are_copied_on_every_rotation(rotations, pg_roles, pg_master, owned_table):
    require_password_checks(pg_roles)
    group, table = owned_table
    first = new_password()
    user = pg_roles.create(first)
    arn = rotations.create("pg-regrant", pg_secret(user, first, masterarn=pg_master))
    rotations.rotate(multi, arn)
    # Access given to the current user (the clone now) reaches the base user next time.
    with pg_auth.superuser_connection() as conn:
        conn.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), sql.Identifier(user + "_clone"))
        )

    rotations.rotate(multi, arn)

    back = rotations.value(arn)
    assert group in pg_roles.memberships(user)
    assert user + "_clone" not in pg_roles.memberships(user)
    assert query_as(user, back["password"], f"SELECT id FROM {table}") == [(7,)]


def test_privileges_granted_to_the_clone_reach_the_base_user(rotations, pg_roles, pg_master):
    require_password_checks(pg_roles)
    first = new_password()
    user = pg_roles.create(first)
    schema, table = f"sd_s_{user}", "odd {name}"
    owner = rotations.value(pg_master)["username"]
    with pg_auth.superuser_connection() as conn:
        # Owned by the master, which may therefore grant on them.
        conn.execute(
            sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                sql.Identifier(schema), sql.Identifier(owner)
            )
        )
        conn.execute(
            sql.SQL("CREATE TABLE {}.{} (id int, hidden int)").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
        )
        conn.execute(
            sql.SQL("INSERT INTO {}.{} VALUES (3, 4)").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
        )
        conn.execute(
            sql.SQL("ALTER TABLE {}.{} OWNER TO {}").format(
                sql.Identifier(schema), sql.Identifier(table), sql.Identifier(owner)
            )
        )
    try:
        arn = rotations.create("pg-privs", pg_secret(user, first, masterarn=pg_master))
        rotations.rotate(multi, arn)
        clone = user + "_clone"
        with pg_auth.superuser_connection() as conn:
            for grant in (
                "GRANT USAGE ON SCHEMA {s} TO {r}",
                "GRANT SELECT (id) ON {s}.{t} TO {r}",
                "GRANT INSERT ON {s}.{t} TO {r} WITH GRANT OPTION",
            ):
                conn.execute(
                    sql.SQL(grant).format(
                        s=sql.Identifier(schema), t=sql.Identifier(table), r=sql.Identifier(clone)
                    )
                )

        rotations.rotate(multi, arn)

        back = rotations.value(arn)
        assert back["username"] == user
        target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        with psycopg.connect(
            host="127.0.0.1", port=5432, user=user, password=back["password"], dbname="test"
        ) as conn:
            assert conn.execute(sql.SQL("SELECT id FROM {}").format(target)).fetchall() == [(3,)]
            conn.execute(sql.SQL("INSERT INTO {} (id) VALUES (5)").format(target))
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql.SQL("SELECT hidden FROM {}").format(target))
        # The next rotation, to the clone again, finds nothing more to copy.
        rotations.rotate(multi, arn)
        assert rotations.value(arn)["username"] == clone
    finally:
        with pg_auth.superuser_connection() as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def test_a_master_that_may_not_grant_the_clones_access_fails_the_rotation(
    rotations, pg_roles, pg_master
):
    require_password_checks(pg_roles)
    first = new_password()
    user = pg_roles.create(first)
    table = f"sd_t_{user}"
    arn = rotations.create("pg-nogrant", pg_secret(user, first, masterarn=pg_master))
    rotations.rotate(multi, arn)
    clone = rotations.value(arn)
    with pg_auth.superuser_connection() as conn:
        # Owned by the superuser: the master (CREATEROLE only) may not pass it on.
        conn.execute(sql.SQL("CREATE TABLE {} (id int)").format(sql.Identifier(table)))
        conn.execute(
            sql.SQL("GRANT SELECT ON {} TO {}").format(
                sql.Identifier(table), sql.Identifier(clone["username"])
            )
        )
    try:
        token = rotations.begin(arn)
        with pytest.raises(RotationError) as info:
            rotations.run_steps(multi, arn, token)
        message = str(info.value)
        assert f"may not grant SELECT on table public.{table}" in message
        assert f"to {user!r}" in message
        assert rotations.value(arn) == clone
        assert pg_logs_in(clone["username"], clone["password"])
    finally:
        with pg_auth.superuser_connection() as conn:
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))


def test_alternating_steps_are_idempotent(rotations, pg_roles, pg_master):
    require_password_checks(pg_roles)
    first = new_password()
    user = pg_roles.create(first)
    arn = rotations.create("pg-multi-idem", pg_secret(user, first, masterarn=pg_master))
    token = rotations.begin(arn)

    def state():
        pending = rotations.value(arn, "AWSPENDING")
        return (
            rotations.stages(arn),
            pending,
            pg_roles.memberships(user + "_clone"),
            pg_logs_in(pending["username"], pending["password"]),
        )

    rotations.assert_each_step_idempotent(multi, arn, token, state)
    rotations.run_steps(multi, arn, token)
    assert current_version(rotations, arn) == token


def test_a_master_that_cannot_log_in_fails_naming_the_master(rotations, pg_roles):
    require_password_checks(pg_roles)
    master_password = new_password()
    master_role = pg_roles.create(master_password, createrole=True)
    wrong = new_password()
    master = rotations.create("pg-bad-master", pg_secret(master_role, wrong))
    first = new_password()
    user = pg_roles.create(first)
    arn = rotations.create("pg-multi-bad", pg_secret(user, first, masterarn=master))
    token = rotations.begin(arn)
    before = current_version(rotations, arn)

    with pytest.raises(RotationError) as info:
        rotations.run_steps(multi, arn, token)

    message = str(info.value)
    assert f"master secret {master}" in message
    assert "password authentication failed" in message
    assert wrong not in message
    assert master_password not in message
    assert current_version(rotations, arn) == before
    assert pg_logs_in(user, first)
