"""Database connections that survive a rotation.

Theory of operation: every new connection reads AWSCURRENT. A refused login means a
rotation is under way or has just finished: between setSecret and finishSecret the database
already has the AWSPENDING password while AWSCURRENT is still the old one; just after
finishSecret a cache may still hold the old AWSCURRENT. So a refused login is retried with
AWSPENDING (when there is one) and then with a freshly fetched AWSCURRENT. When rotations
follow each other faster than one such sequence, the database can move on between two
attempts, so the sequence repeats, a few rounds at most, with a pause (0.5 s, then 1 s).
Each refresh reads what the service holds: the agent answers ``refreshNow`` from a backend
call that started after the request arrived. Any error other
than a refused login (the database is down, a wrong host) is raised at once: other
credentials would not fix it. Passwords go to the drivers as arguments, never into a
connection string, so any character in them is safe.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._client import SecretsClient
from ._errors import ClientError, SecretNotFound, SourceUnavailable

# The drivers are imported by the function that needs one: an application has at most one of
# them installed, and importing the client loads neither.
if TYPE_CHECKING:
    import psycopg
    import pymysql

Credentials = dict[str, Any]
# MySQL/MariaDB: access denied (1045); MariaDB answers 1698 for some logins of unknown users.
MYSQL_REFUSED = (1045, 1698)
# PostgreSQL: invalid_password, invalid_authorization_specification.
POSTGRES_REFUSED = ("28P01", "28000")
POSTGRES_REFUSED_TEXT = re.compile(r'password authentication failed|role ".*" does not exist')
# (stage, refresh) in the order a refused login tries them.
ATTEMPTS = (("AWSCURRENT", False), ("AWSPENDING", True), ("AWSCURRENT", True))


def connect_mysql(
    client: SecretsClient,
    secret_id: str,
    *,
    rounds: int = 3,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> pymysql.connections.Connection:
    """A new PyMySQL connection with the credentials of ``secret_id`` (the Secrets Manager
    JSON form: ``host``, ``port``, ``username``, ``password``, ``dbname``), retried across a
    rotation. ``kwargs`` go to ``pymysql.connect`` and override the secret's host, port and
    database; the user and password always come from the secret."""
    import pymysql

    _refuse_credentials(kwargs)

    def open_connection(credentials: Credentials) -> pymysql.connections.Connection:
        return pymysql.connect(**_driver_arguments(credentials, 3306, "database", kwargs))

    return connect_surviving_rotation(
        client, secret_id, open_connection, mysql_refused, rounds, backoff, sleep
    )


def connect_postgres(
    client: SecretsClient,
    secret_id: str,
    *,
    rounds: int = 3,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> psycopg.Connection:
    """A new psycopg 3 connection with the credentials of ``secret_id``, retried across a
    rotation, as ``connect_mysql``. ``kwargs`` go to ``psycopg.connect`` (e.g. ``dbname``,
    ``connect_timeout``, ``autocommit``) and override the secret's host, port and dbname."""
    import psycopg

    _refuse_credentials(kwargs)

    def open_connection(credentials: Credentials) -> psycopg.Connection:
        return psycopg.connect(**_driver_arguments(credentials, 5432, "dbname", kwargs))

    return connect_surviving_rotation(
        client, secret_id, open_connection, postgres_refused, rounds, backoff, sleep
    )


def _driver_arguments(
    credentials: Credentials, default_port: int, database_key: str, overrides: dict[str, Any]
) -> dict[str, Any]:
    """Connection arguments from the secret; the caller's win, except user and password.

    The password travels as an argument, never inside a connection string, so characters
    such as ``@``, ``:`` or quotes cannot break it."""
    arguments: dict[str, Any] = {
        "host": credentials.get("host", "localhost"),
        "port": int(credentials.get("port", default_port)),
    }
    if credentials.get("dbname"):
        arguments[database_key] = credentials["dbname"]
    arguments.update(overrides)
    arguments.update(user=credentials["username"], password=credentials["password"])
    return arguments


def mysql_refused(exc: BaseException) -> bool:
    """Whether ``exc`` is MySQL/MariaDB refusing the user or password."""
    import pymysql

    return (
        isinstance(exc, pymysql.err.OperationalError)
        and bool(exc.args)
        and exc.args[0] in MYSQL_REFUSED
    )


def postgres_refused(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL refusing the user or password."""
    import psycopg

    if not isinstance(exc, psycopg.OperationalError):
        return False
    if exc.sqlstate is not None:
        return exc.sqlstate in POSTGRES_REFUSED
    # A failed connection often carries no SQLSTATE, only the server's message.
    return POSTGRES_REFUSED_TEXT.search(str(exc)) is not None


def connect_surviving_rotation(
    client: SecretsClient,
    secret_id: str,
    open_connection: Callable[[Credentials], Any],
    refused: Callable[[BaseException], bool],
    rounds: int = 3,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """``open_connection`` with AWSCURRENT, else AWSPENDING, else a fresh AWSCURRENT, for at
    most ``rounds`` rounds; the last refusal is raised when every attempt was refused."""
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    last: BaseException | None = None
    for round_number in range(rounds):
        if round_number:
            sleep(backoff * round_number)
        for stage, refresh in ATTEMPTS:
            credentials = _credentials(client, secret_id, stage, refresh)
            if credentials is None:
                continue
            try:
                return open_connection(credentials)
            except Exception as exc:
                if not refused(exc):
                    raise
                last = exc
    assert last is not None  # AWSCURRENT is always tried: it answers or raises
    raise last


def _credentials(
    client: SecretsClient, secret_id: str, stage: str, refresh: bool
) -> Credentials | None:
    try:
        value = client.get(secret_id, stage, refresh=refresh)
    except (SecretNotFound, SourceUnavailable):
        if stage == "AWSPENDING":  # no rotation under way, or nothing to ask: not an error
            return None
        raise
    credentials = value.json()
    if not isinstance(credentials, dict) or not {"username", "password"} <= credentials.keys():
        raise ClientError(f"secret {secret_id!r} does not hold a username and a password")
    return credentials


def _refuse_credentials(kwargs: dict[str, Any]) -> None:
    given = {"user", "username", "password", "passwd"} & kwargs.keys()
    if given:
        raise TypeError(f"the credentials come from the secret; do not pass {sorted(given)}")
