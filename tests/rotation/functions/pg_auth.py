"""Make PostgreSQL check passwords for the rotation tests' roles.

The test machine's PostgreSQL trusts every TCP login from 127.0.0.1, so a wrong password
would log in and a rotation test could not tell the old password from the new one. This
module puts one rule in front of the trust rules: members of the role ``secretsd_password_auth``
(directly or through another role) log in over 127.0.0.1 with scram-sha-256. Nothing else
changes: every other role keeps trust authentication. Idempotent; CI runs it too:

    python -m tests.rotation.functions.pg_auth
"""

from __future__ import annotations

import contextlib
import secrets
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql

GROUP = "secretsd_password_auth"
RULE = f"host all +{GROUP} 127.0.0.1/32 scram-sha-256"
SUPERUSERS = ("postgres", "root")


def superuser_connection() -> psycopg.Connection:
    failure: Exception | None = None
    for user in SUPERUSERS:
        try:
            return psycopg.connect(
                host="127.0.0.1", port=5432, user=user, dbname="test", autocommit=True
            )
        except psycopg.OperationalError as exc:
            failure = exc
    raise RuntimeError(f"no superuser login to PostgreSQL on 127.0.0.1: {failure}")


def _add_rule(hba_file: Path) -> bool:
    """Insert RULE before the first rule of ``hba_file``; False when it cannot be written."""
    lines = hba_file.read_text().splitlines(keepends=True)
    if any(line.split() == RULE.split() for line in lines):
        return True
    first = next(
        (i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")),
        len(lines),
    )
    lines.insert(first, f"# secretsd tests: password checks for {GROUP} members\n{RULE}\n")
    try:
        hba_file.write_text("".join(lines))
    except OSError:
        return False
    return True


def _password_checked(conn: psycopg.Connection) -> bool:
    """Whether a member of GROUP with a wrong password is refused."""
    probe = "secretsd_probe_" + secrets.token_hex(4)
    conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
            sql.Identifier(probe), sql.Literal(secrets.token_hex(16)), sql.Identifier(GROUP)
        )
    )
    try:
        psycopg.connect(
            host="127.0.0.1", port=5432, user=probe, password="wrong", dbname="test"
        ).close()
        return False
    except psycopg.OperationalError:
        return True
    finally:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(probe)))


def ensure_password_auth() -> bool:
    """Make passwords count for GROUP members; True when they do."""
    with superuser_connection() as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (GROUP,)).fetchone() is None:
            with contextlib.suppress(psycopg.errors.DuplicateObject):
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(GROUP)))
        if _password_checked(conn):
            return True
        (hba_file,) = conn.execute("SHOW hba_file").fetchone()
        if not _add_rule(Path(hba_file)):
            return False
        conn.execute("SELECT pg_reload_conf()")
        # The postmaster rereads the file asynchronously.
        for _ in range(50):
            if _password_checked(conn):
                return True
            time.sleep(0.1)
        return False


if __name__ == "__main__":
    ok = ensure_password_auth()
    print(f"PostgreSQL password checks for {GROUP} members: {'on' if ok else 'OFF'}")
    sys.exit(0 if ok else 1)
