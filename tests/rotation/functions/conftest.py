"""Fixtures for the rotation function tests: a live server, real database users."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterator

import psycopg
import pymysql
import pytest
from psycopg import sql

from tests.rotation.functions import pg_auth
from tests.rotation.functions.harness import Rotations, point_functions_at


@pytest.fixture
def rotations(shared_server, monkeypatch) -> Rotations:
    point_functions_at(shared_server, monkeypatch)
    return Rotations(shared_server, shared_server.client())


def unique_name(prefix: str = "sd") -> str:
    return f"{prefix}_{secrets.token_hex(5)}"


def new_password() -> str:
    # Punctuation that breaks naive quoting is exactly what must survive.
    return secrets.token_urlsafe(18) + "'\";%$"


# -- MariaDB ------------------------------------------------------------------------------


# Bad password; MariaDB answers 1698 instead for some logins of users that do not exist.
MYSQL_REFUSED = (1045, 1698)


def mysql_root() -> pymysql.connections.Connection:
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)


def mysql_logs_in(user: str, password: str) -> bool:
    try:
        pymysql.connect(
            host="127.0.0.1", port=3306, user=user, password=password, connect_timeout=5
        ).close()
        return True
    except pymysql.err.OperationalError as exc:
        if exc.args[0] in MYSQL_REFUSED:
            return False
        raise


class MySQLUsers:
    """Creates MariaDB users with unique names and drops them (and their clones) after."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def create(
        self, password: str, grants: tuple[str, ...] = ("SELECT ON test.*",), suffix: str = ""
    ) -> str:
        user = unique_name() + suffix
        self.created.append(user)
        with mysql_root() as conn, conn.cursor() as cur:
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
            for grant in grants:
                cur.execute(f"GRANT {grant} TO %s@'%%'", (user,))
        return user

    def grants(self, user: str) -> set[str]:
        """SHOW GRANTS for ``user`` with the grantee and the password hash taken out."""
        with mysql_root() as conn, conn.cursor() as cur:
            try:
                cur.execute("SHOW GRANTS FOR %s@'%%'", (user,))
            except pymysql.err.OperationalError as exc:
                if exc.args[0] == 1141:  # no such user
                    return set()
                raise
            rows = [r[0] for r in cur.fetchall()]
        grantee = f"`{user}`@`%`"
        return {row.split(" IDENTIFIED BY PASSWORD")[0].replace(grantee, "<u>") for row in rows}

    def cleanup(self) -> None:
        with mysql_root() as conn, conn.cursor() as cur:
            for user in self.created:
                for name in (user, user + "_clone"):
                    cur.execute("DROP USER IF EXISTS %s@'%%'", (name,))


@pytest.fixture
def mysql_users(mariadb_available) -> Iterator[MySQLUsers]:
    users = MySQLUsers()
    yield users
    users.cleanup()


def mysql_secret(user: str, password: str, **extra) -> dict:
    return {
        "engine": "mysql",
        "host": "127.0.0.1",
        "port": 3306,
        "username": user,
        "password": password,
        "dbname": "test",
        **extra,
    }


# -- PostgreSQL ---------------------------------------------------------------------------


def pg_logs_in(user: str, password: str) -> bool:
    try:
        psycopg.connect(
            host="127.0.0.1", port=5432, user=user, password=password, dbname="test"
        ).close()
        return True
    except psycopg.OperationalError as exc:
        text = str(exc)
        if "password authentication failed" in text or "does not exist" in text:
            return False
        raise


class PostgresRoles:
    """Creates login roles whose passwords are checked (see pg_auth) and drops them after."""

    def __init__(self, passwords_checked: bool) -> None:
        self.passwords_checked = passwords_checked
        self.created: list[str] = []

    def create(
        self, password: str, *, member_of: tuple[str, ...] = (), suffix: str = "", **flags
    ) -> str:
        role = unique_name() + suffix
        self.created.append(role)
        with pg_auth.superuser_connection() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                    sql.Identifier(role),
                    sql.Literal(password),
                    sql.SQL(", ").join(map(sql.Identifier, (pg_auth.GROUP, *member_of))),
                )
            )
            for flag in flags:
                conn.execute(
                    sql.SQL(f"ALTER ROLE {{}} {flag.upper()}").format(sql.Identifier(role))
                )
        return role

    def group(self) -> str:
        role = unique_name("sdg")
        self.created.append(role)
        with pg_auth.superuser_connection() as conn:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
        return role

    def memberships(self, role: str) -> set[str]:
        with pg_auth.superuser_connection() as conn:
            rows = conn.execute(
                "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
                " JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s",
                (role,),
            ).fetchall()
        return {r[0] for r in rows}

    def cleanup(self) -> None:
        with pg_auth.superuser_connection() as conn:
            for role in reversed(self.created):
                for name in (role + "_clone", role):
                    if conn.execute(
                        "SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)
                    ).fetchone():
                        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
                        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@functools.cache
def pg_passwords_checked() -> bool:
    return pg_auth.ensure_password_auth()


@pytest.fixture
def pg_roles(postgres_available) -> Iterator[PostgresRoles]:
    roles = PostgresRoles(pg_passwords_checked())
    yield roles
    roles.cleanup()


def pg_secret(user: str, password: str, **extra) -> dict:
    return {
        "engine": "postgres",
        "host": "127.0.0.1",
        "port": 5432,
        "username": user,
        "password": password,
        "dbname": "test",
        **extra,
    }
