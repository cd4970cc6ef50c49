"""MySQL and MariaDB through PyMySQL: logging in, changing passwords, copying grants.

Theory of operation. Passwords always travel as bound parameters; account names are bound
as string literals (``%s@%s`` renders ``'user'@'host'``), which both servers accept wherever
an account is named. Grants are copied by reading ``SHOW GRANTS`` as the current user and
replaying each statement for the other account as the master user. Both dialects are read:
MariaDB and MySQL 8 quote the grantee with backticks, MySQL 5.7 with single quotes, and
MariaDB appends the password hash (``IDENTIFIED BY PASSWORD '*...'``), which is dropped.
Copying is additive and skips grants the other account already has, so a repeated run
changes nothing; revoking access means revoking it from both users.
"""

from __future__ import annotations

import os
import re
import ssl
from typing import Any

import pymysql
from pymysql.converters import escape_string

from .common import RotationError, redact
from .database import DbSecret, LoginRefused, Unreachable

CONNECT_TIMEOUT = 5
# PyMySQL waits for the handshake and every answer with the read timeout, unbounded by
# default: a server that accepts and then stalls must not hang a rotation.
IO_TIMEOUT = 30
ACCESS_DENIED = (1044, 1045, 1698)  # database access denied, bad password, socket auth
UNREACHABLE = (2002, 2003, 2005, 2006, 2013)  # no socket, no host, server gone
TLS_FAILURE = 2026
_IDENTIFIED = re.compile(
    r"\s+IDENTIFIED\s+(?:BY\s+PASSWORD\s+'[^']*'|VIA\s.*?)(?=\s+(?:WITH|REQUIRE)\s|$)",
    re.IGNORECASE | re.DOTALL,
)
_MARK = "\x00GRANTEE\x00"


class MySQLEngine:
    label = "MySQL/MariaDB"
    engines = frozenset({"mysql", "mariadb", "aurora", "aurora-mysql"})
    default_port = 3306
    default_exclude = "/@\"'\\"
    master_in_secret_database = False

    def connect(self, secret: DbSecret) -> Any:
        """Log in. ``ssl`` absent: TLS when it works, plain otherwise; true/false: exactly."""
        if secret.ssl is None:
            try:
                return self._connect(secret, opportunistic_tls())
            except Unreachable as exc:
                if not exc.tls:
                    raise
            return self._connect(secret, None)
        if not secret.ssl:
            return self._connect(secret, None)
        try:
            conn = self._connect(secret, verified_tls())
        except Unreachable as exc:
            if exc.tls:
                raise Unreachable(f"TLS failed, and the secret says 'ssl': true. {exc}") from None
            raise
        # Older PyMySQL silently goes plain when the server offers no TLS: check the session.
        with conn.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            row = cur.fetchone()
        if not row or not row[1]:
            conn.close()
            raise Unreachable(
                f"{self.label} at {secret.address} does not offer TLS, and the secret says "
                "'ssl': true."
            )
        return conn

    def _connect(self, secret: DbSecret, context: ssl.SSLContext | None) -> Any:
        options: dict[str, Any] = {"ssl": context} if context else {"ssl_disabled": True}
        try:
            return pymysql.connect(
                host=secret.host,
                port=secret.port,
                user=secret.username,
                password=secret.password,
                database=secret.dbname,
                connect_timeout=CONNECT_TIMEOUT,
                read_timeout=IO_TIMEOUT,
                write_timeout=IO_TIMEOUT,
                autocommit=True,
                **options,
            )
        except pymysql.MySQLError as exc:
            raise classify(exc, secret) from None

    def ping(self, conn: Any, secret: DbSecret) -> None:
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT NOW()")
                cur.fetchall()
        except pymysql.MySQLError as exc:
            raise RotationError(f"Test query failed: {describe(exc, secret)}") from None

    def set_own_password(self, conn: Any, secret: DbSecret, password: str) -> None:
        """Change the logged-in user's password; needs no privilege on either server."""
        statement = "SET PASSWORD = PASSWORD(%s)" if is_mariadb(conn) else "SET PASSWORD = %s"
        try:
            with conn.cursor() as cur:
                cur.execute(statement, (password,))
        except pymysql.MySQLError as exc:
            raise RotationError(
                f"{self.label} refused the new password for the user of the secret: "
                f"{describe(exc, secret, password)}"
            ) from None

    def sync_user(
        self, master: Any, current_conn: Any, current: DbSecret, pending: DbSecret, logs_in: bool
    ) -> None:
        secrets = (current.password, pending.password)
        try:
            user, host = current_account(current_conn)
            shown = show_grants(current_conn, None)
        except pymysql.MySQLError as exc:
            raise RotationError(
                f"Reading the grants of the AWSCURRENT user {current.username!r} failed: "
                f"{describe(exc, current, *secrets)}"
            ) from None
        own = [line for line in (mark(g, user, host) for g in shown) if line is not None]
        target = master.escape(pending.username) + "@" + master.escape(host)
        try:
            with master.cursor() as cur:
                if not logs_in:
                    cur.execute(
                        "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s",
                        (pending.username, host, pending.password),
                    )
                try:
                    have = {
                        line
                        for line in (
                            mark(g, pending.username, host)
                            for g in show_grants(master, (pending.username, host))
                        )
                        if line is not None
                    }
                except pymysql.MySQLError:
                    have = set()  # the master cannot read others' grants: replay them all
                for line in own:
                    if line not in have:
                        cur.execute(line.replace(_MARK, target))
                if not logs_in:
                    cur.execute(
                        "ALTER USER %s@%s IDENTIFIED BY %s",
                        (pending.username, host, pending.password),
                    )
        except pymysql.MySQLError as exc:
            raise RotationError(
                f"Preparing the alternate user {pending.username!r} as the master user failed: "
                f"{describe(exc, pending, *secrets)}"
            ) from None


def verified_tls() -> ssl.SSLContext:
    """TLS that checks the server: the system's trust store, or the bundle in DB_CA_BUNDLE."""
    return ssl.create_default_context(cafile=os.environ.get("DB_CA_BUNDLE") or None)


def opportunistic_tls() -> ssl.SSLContext:
    """Encryption without authentication, for secrets that do not ask for TLS."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def is_mariadb(conn: Any) -> bool:
    return "mariadb" in conn.get_server_info().lower()


def current_account(conn: Any) -> tuple[str, str]:
    with conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        (account,) = cur.fetchone()
    user, _, host = account.rpartition("@")
    return user, host


def show_grants(conn: Any, account: tuple[str, str] | None) -> list[str]:
    with conn.cursor() as cur:
        if account is None:
            cur.execute("SHOW GRANTS FOR CURRENT_USER()")
        else:
            cur.execute("SHOW GRANTS FOR %s@%s", account)
        return [row[0] for row in cur.fetchall()]


def renderings(user: str, host: str) -> list[str]:
    """The ways SHOW GRANTS spells an account: backticks (MariaDB, MySQL 8), quotes (5.7)."""

    def backtick(s: str) -> str:
        return "`" + s.replace("`", "``") + "`"

    def quote(s: str) -> str:
        return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return [backtick(user) + "@" + backtick(host), quote(user) + "@" + quote(host)]


def mark(statement: str, user: str, host: str) -> str | None:
    """``statement`` with its grantee replaced by a marker and no password hash, or None
    when the statement is about another account (a role's own grants, say)."""
    found: tuple[int, int] | None = None  # (start of the grantee, its end)
    for spelled in renderings(user, host):
        for keyword in (" TO ", " FOR ", " FROM "):
            at = statement.rfind(keyword + spelled)
            if at < 0:
                continue
            start = at + len(keyword)
            end = start + len(spelled)
            closes = end == len(statement) or statement[end].isspace()
            if closes and (found is None or start > found[0]):
                found = (start, end)
    if found is None:
        return None
    return statement[: found[0]] + _MARK + _IDENTIFIED.sub("", statement[found[1] :])


def classify(exc: pymysql.MySQLError, secret: DbSecret) -> RotationError:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    where = f"MySQL/MariaDB at {secret.address} as {secret.username!r}"
    text = describe(exc, secret)
    if code in ACCESS_DENIED:
        return LoginRefused(f"{where} refused the login: {text}")
    if code in (*UNREACHABLE, TLS_FAILURE) or _tls_cause(exc) is not None:
        failure = Unreachable(f"Cannot reach {where}: {text}")
        failure.tls = code == TLS_FAILURE or _tls_cause(exc) is not None
        return failure
    return RotationError(f"Logging in to {where} failed: {text}")


def _tls_cause(exc: BaseException) -> BaseException | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def describe(exc: pymysql.MySQLError, secret: DbSecret, *passwords: str) -> str:
    """The driver's error text, with every password we hold taken out."""
    if len(exc.args) >= 2:
        text = f"({exc.args[0]}) {exc.args[1]}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    values = (secret.password, *passwords)
    # A syntax error quotes the statement near the fault, where a value appears escaped.
    return redact(text, (*values, *(escape_string(v) for v in values)))
