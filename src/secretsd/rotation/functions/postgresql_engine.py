"""PostgreSQL through psycopg 3: logging in, changing passwords, alternating roles.

Theory of operation. Role names are always ``psycopg.sql.Identifier``; passwords are bound
parameters. ``ALTER ROLE ... PASSWORD`` is a utility statement that takes no server-side
parameters, so those statements run on a ``ClientCursor``, which binds on the client with
the server's quoting rules.

Alternating users get equal access through role membership: the clone is a member of the
base user (so it holds everything granted to the base user and may act as the owner of the
base user's objects), and each user also receives every role the other is a direct member
of. Membership never goes the other way (base in clone), which would be a cycle, so when
the base user is the pending one it also receives the privileges granted to the clone
directly (tables, views, sequences, columns, schemas, the database, functions) in the
secret's database. Objects the clone owns stay its own: create objects as the base user
(the clone may ``SET ROLE`` to it). Copying is additive: a repeated run changes nothing,
and revoking access means revoking it from both users.

libpq reports connection failures without a SQLSTATE, so a refused login is told from an
unreachable server by the server's FATAL message.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
from psycopg import sql

from .common import RotationError, redact
from .database import CLONE_SUFFIX, DbSecret, LoginRefused, Unreachable

CONNECT_TIMEOUT = 5
DEFAULT_DBNAME = "postgres"
_REFUSED = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "is not permitted to log in",
    "permission denied for database",
    "pam authentication failed",
)
# Object names come back already quoted (quote_ident, regprocedure), ready for a GRANT.
# Privilege names come from aclexplode and are plain keywords.
_PRIVILEGES = """
WITH me AS (SELECT oid FROM pg_roles WHERE rolname = %(role)s)
SELECT CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
       quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.privilege_type, a.is_grantable
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
     aclexplode(c.relacl) a, me
WHERE a.grantee = me.oid
UNION ALL
SELECT 'COLUMN',
       '(' || quote_ident(t.attname) || ') ON TABLE '
           || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
       a.privilege_type, a.is_grantable
FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid
     JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(t.attacl) a, me
WHERE a.grantee = me.oid
UNION ALL
SELECT 'SCHEMA', quote_ident(n.nspname), a.privilege_type, a.is_grantable
FROM pg_namespace n, aclexplode(n.nspacl) a, me
WHERE a.grantee = me.oid
UNION ALL
SELECT 'DATABASE', quote_ident(d.datname), a.privilege_type, a.is_grantable
FROM pg_database d, aclexplode(d.datacl) a, me
WHERE d.datname = current_database() AND a.grantee = me.oid
UNION ALL
SELECT CASE WHEN p.prokind = 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
       p.oid::regprocedure::text, a.privilege_type, a.is_grantable
FROM pg_proc p, aclexplode(p.proacl) a, me
WHERE a.grantee = me.oid
"""
_MEMBERSHIPS = (
    "SELECT r.rolname FROM pg_auth_members m"
    " JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member"
    " WHERE u.rolname = %s"
)


class PostgreSQLEngine:
    label = "PostgreSQL"
    engines = frozenset({"postgres", "postgresql", "aurora-postgresql"})
    default_port = 5432
    default_exclude = ":/@\"'\\"
    # Privileges live per database: the master works in the secret's database.
    master_in_secret_database = True

    def connect(self, secret: DbSecret) -> Any:
        """Log in. ``ssl`` absent: TLS when it works (libpq's prefer); true/false: exactly."""
        options: dict[str, Any] = {}
        if secret.ssl is None:
            options["sslmode"] = "prefer"
        elif not secret.ssl:
            options["sslmode"] = "disable"
        elif os.environ.get("DB_CA_BUNDLE"):
            options.update(sslmode="verify-full", sslrootcert=os.environ["DB_CA_BUNDLE"])
        else:
            options["sslmode"] = "require"
        try:
            return psycopg.connect(
                host=secret.host,
                port=secret.port,
                dbname=secret.dbname or DEFAULT_DBNAME,
                user=secret.username,
                password=secret.password,
                connect_timeout=CONNECT_TIMEOUT,
                autocommit=True,
                **options,
            )
        except psycopg.Error as exc:
            raise classify(exc, secret) from None

    def ping(self, conn: Any, secret: DbSecret) -> None:
        try:
            conn.execute("SELECT NOW()").fetchall()
        except psycopg.Error as exc:
            raise RotationError(f"Test query failed: {describe(exc, secret)}") from None

    def set_own_password(self, conn: Any, secret: DbSecret, password: str) -> None:
        statement = sql.SQL("ALTER USER {} WITH PASSWORD %s").format(
            sql.Identifier(secret.username)
        )
        try:
            with psycopg.ClientCursor(conn) as cur:
                cur.execute(statement, (password,))
        except psycopg.Error as exc:
            raise RotationError(
                f"PostgreSQL refused the new password for the user of the secret: "
                f"{describe(exc, secret, password)}"
            ) from None

    def sync_user(
        self, master: Any, current_conn: Any, current: DbSecret, pending: DbSecret, logs_in: bool
    ) -> None:
        role = sql.Identifier(pending.username)
        try:
            with psycopg.ClientCursor(master) as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (pending.username,))
                exists = cur.fetchone() is not None
                if not exists:
                    cur.execute(
                        sql.SQL("CREATE ROLE {} WITH LOGIN PASSWORD %s").format(role),
                        (pending.password,),
                    )
                wanted = memberships(cur, current.username) - {pending.username}
                if pending.username == current.username + CLONE_SUFFIX:
                    wanted.add(current.username)
                for granted in sorted(wanted - memberships(cur, pending.username)):
                    cur.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(granted), role))
                if pending.username != current.username + CLONE_SUFFIX:
                    # The base role does not inherit from the clone: give it the privileges
                    # granted to the clone directly, in this database.
                    copy_privileges(cur, current.username, pending.username)
                if exists and not logs_in:
                    cur.execute(
                        sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD %s").format(role),
                        (pending.password,),
                    )
        except psycopg.Error as exc:
            raise RotationError(
                f"Preparing the alternate role {pending.username!r} as the master user "
                f"failed: {describe(exc, pending, current.password)}"
            ) from None


def direct_privileges(cur: Any, username: str) -> set[tuple[str, str, str, bool]]:
    """(object kind, object as SQL, privilege, grantable) granted to ``username`` itself on
    the objects of the connected database."""
    cur.execute(_PRIVILEGES, {"role": username})
    return {(kind, target, privilege, grantable) for kind, target, privilege, grantable in cur}


def copy_privileges(cur: Any, source: str, target: str) -> None:
    have = direct_privileges(cur, target)
    for kind, on, privilege, grantable in sorted(direct_privileges(cur, source) - have):
        if (kind, on, privilege, True) in have:
            continue
        # ``on`` is catalog text quoted by the server; it may hold braces, so no format().
        where = f"{on} TO " if kind == "COLUMN" else f"ON {kind} {on} TO "
        option = " WITH GRANT OPTION" if grantable else ""
        statement = sql.Composed(
            [sql.SQL(f"GRANT {privilege} {where}"), sql.Identifier(target), sql.SQL(option)]
        )
        try:
            cur.execute(statement)
        except psycopg.errors.InsufficientPrivilege as exc:
            # Switching to a user without the clone's access would break the application.
            raise RotationError(
                f"The master user may not grant {privilege} on {kind.lower()} {on} to "
                f"{target!r}, which the current user {source!r} holds: {describe_text(exc)}"
            ) from None


def memberships(cur: Any, username: str) -> set[str]:
    cur.execute(_MEMBERSHIPS, (username,))
    return {row[0] for row in cur.fetchall()}


def classify(exc: psycopg.Error, secret: DbSecret) -> RotationError:
    where = f"PostgreSQL at {secret.address} as {secret.username!r}"
    text = describe(exc, secret)
    lowered = text.lower()
    if "fatal:" in lowered:
        if any(reason in lowered for reason in _REFUSED) or (
            'role "' in lowered and "does not exist" in lowered
        ):
            return LoginRefused(f"{where} refused the login: {text}")
        return RotationError(f"Logging in to {where} failed: {text}")
    failure = Unreachable(f"Cannot reach {where}: {text}")
    failure.tls = "ssl" in lowered
    return failure


def describe_text(exc: psycopg.Error) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def describe(exc: psycopg.Error, secret: DbSecret, *passwords: str) -> str:
    """The driver's error text on one line, with every password we hold taken out."""
    return redact(describe_text(exc), (secret.password, *passwords))
