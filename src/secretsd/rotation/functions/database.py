"""Database rotation: the steps shared by the MySQL and PostgreSQL functions.

Theory of operation. A database secret is a JSON object with ``engine``, ``host``,
``username`` and ``password`` (optional ``port``, ``dbname``, ``ssl``, and ``masterarn``
for alternating users). ``DatabaseRotation`` runs createSecret, setSecret and testSecret
against an ``Engine`` (mysql_engine, postgresql_engine), which knows how to log in, change
a password and bring a second user level with the first.

Single user: setSecret logs in as the user (pending, then current, then previous password)
and changes its own password. Alternating users: the pending version names the other user
(``_clone`` added or removed); setSecret logs in with the current secret (it must work) and
with the master secret, creates the other user when missing, copies the current user's
access to it on every rotation and sets its password. Logging in with the pending password
first makes a repeated setSecret a no-op for the password.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .common import (
    AWSCURRENT,
    AWSPENDING,
    AWSPREVIOUS,
    RotationError,
    get_value,
    parse_json_object,
    password_request,
    put_pending,
    random_password,
    require_value,
)

log = logging.getLogger("secretsd.rotation.functions")

CLONE_SUFFIX = "_clone"
REQUIRED_KEYS = ("engine", "host", "username", "password")


@dataclass(frozen=True)
class DbSecret:
    """The connection facts of one secret version. The password never shows in a repr."""

    engine: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    dbname: str | None
    ssl: bool | None
    masterarn: str | None
    document: dict[str, Any] = field(repr=False, compare=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class LoginRefused(RotationError):
    """The database answered and refused these credentials."""


class Unreachable(RotationError):
    """The database could not be reached (refused connection, timeout, TLS failure)."""

    tls = False  # whether TLS was the trouble, so that plain may be tried


class Engine(Protocol):
    label: str  # for messages: "MySQL", "PostgreSQL"
    engines: frozenset[str]
    default_port: int
    default_exclude: str
    master_in_secret_database: bool  # log the master in to the secret's dbname

    def connect(self, secret: DbSecret) -> Any:
        """An open connection; LoginRefused, Unreachable or RotationError otherwise."""

    def ping(self, conn: Any, secret: DbSecret) -> None: ...

    def set_own_password(self, conn: Any, secret: DbSecret, password: str) -> None: ...

    def sync_user(
        self, master: Any, current_conn: Any, current: DbSecret, pending: DbSecret, logs_in: bool
    ) -> None:
        """Create ``pending``'s user if missing, copy ``current``'s access, set its password
        unless ``logs_in`` says it already works."""


def parse_secret(
    document: dict[str, Any], what: str, engine: Engine, *, need_master: bool = False
) -> DbSecret:
    """Validate a secret's JSON; every error names the missing or wrong key."""
    missing = [k for k in REQUIRED_KEYS if k not in document]
    if need_master and "masterarn" not in document:
        missing.append("masterarn")
    if missing:
        keys = ", ".join(repr(k) for k in missing)
        raise RotationError(f"The {what} is missing the required key(s) {keys}.")
    for key in ("engine", "host", "username"):
        if not isinstance(document[key], str) or not document[key]:
            raise RotationError(f"The {what} has an empty or non-text {key!r}.")
    if not isinstance(document["password"], str):
        raise RotationError(f"The {what} has a non-text 'password'.")
    if document["engine"].lower() not in engine.engines:
        accepted = ", ".join(sorted(engine.engines))
        raise RotationError(
            f"The {what} has engine {document['engine']!r}; this function rotates "
            f"{engine.label} (engine one of {accepted})."
        )
    port = document.get("port", engine.default_port)
    try:
        port = int(port)
    except (TypeError, ValueError):
        port = 0
    if not 0 < port < 65536:
        raise RotationError(f"The {what} has an invalid 'port'.")
    dbname = document.get("dbname")
    if dbname is not None and not isinstance(dbname, str):
        raise RotationError(f"The {what} has a non-text 'dbname'.")
    master = document.get("masterarn")
    if need_master and (not isinstance(master, str) or not master):
        raise RotationError(f"The {what} has an empty or non-text 'masterarn'.")
    return DbSecret(
        engine=document["engine"],
        host=document["host"],
        port=port,
        username=document["username"],
        password=document["password"],
        dbname=dbname or None,
        ssl=_ssl_setting(document.get("ssl"), what),
        masterarn=master if isinstance(master, str) else None,
        document=document,
    )


def _ssl_setting(value: Any, what: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise RotationError(f"The {what} has 'ssl' that is neither true nor false.")


def other_username(username: str) -> str:
    """The alternating partner: ``_clone`` added, or removed when present."""
    if username.endswith(CLONE_SUFFIX) and len(username) > len(CLONE_SUFFIX):
        return username[: -len(CLONE_SUFFIX)]
    return username + CLONE_SUFFIX


class DatabaseRotation:
    """createSecret, setSecret and testSecret for one engine, single or alternating users."""

    def __init__(self, engine: Engine, *, alternating: bool) -> None:
        self.engine = engine
        self.alternating = alternating

    # -- reading versions --------------------------------------------------------------

    def _read(self, sm: Any, secret_id: str, stage: str, token: str | None = None) -> DbSecret:
        text = require_value(sm, secret_id, stage, token)
        what = f"{stage} value of secret {secret_id}"
        return parse_secret(
            parse_json_object(text, what), what, self.engine, need_master=self.alternating
        )

    def _read_optional(self, sm: Any, secret_id: str, stage: str) -> DbSecret | None:
        text = get_value(sm, secret_id, stage)
        if text is None:
            return None
        what = f"{stage} value of secret {secret_id}"
        try:
            return parse_secret(parse_json_object(text, what), what, self.engine)
        except RotationError as exc:
            log.warning("ignoring the %s version: %s", stage, exc)
            return None

    # -- steps ---------------------------------------------------------------------------

    def create_secret(self, sm: Any, secret_id: str, token: str) -> None:
        current = self._read(sm, secret_id, AWSCURRENT)
        if get_value(sm, secret_id, AWSPENDING, token) is not None:
            # A retried createSecret: the pending value must still be one we can rotate to.
            self._read(sm, secret_id, AWSPENDING, token)
            log.info("createSecret: %s already has a pending value", secret_id)
            return
        document = dict(current.document)
        if self.alternating:
            document["username"] = other_username(current.username)
        request = password_request(self.engine.default_exclude)
        document["password"] = random_password(sm, secret_id, request)
        put_pending(sm, secret_id, token, document)
        log.info("createSecret: put a new AWSPENDING version of %s", secret_id)

    def set_secret(self, sm: Any, secret_id: str, token: str) -> None:
        pending = self._read(sm, secret_id, AWSPENDING, token)
        current = self._read(sm, secret_id, AWSCURRENT)
        if pending.host.lower() != current.host.lower():
            raise RotationError(
                f"The AWSPENDING host of {secret_id} differs from the AWSCURRENT host; "
                "refusing to send credentials to a different database."
            )
        if self.alternating:
            self._set_alternating(sm, secret_id, current, pending)
        else:
            self._set_single(sm, secret_id, current, pending)

    def _set_single(self, sm: Any, secret_id: str, current: DbSecret, pending: DbSecret) -> None:
        if pending.username != current.username:
            raise RotationError(
                f"The AWSPENDING username of {secret_id} differs from the AWSCURRENT one; "
                "the single-user function only changes the current user's password."
            )
        if self._logs_in(pending):
            log.info("setSecret: the pending password of %s already works", secret_id)
            return
        previous = self._read_optional(sm, secret_id, AWSPREVIOUS)
        candidates = [current]
        if previous is not None and previous.username == current.username:
            candidates.append(previous)
        conn, used = self._first_login(candidates, secret_id)
        try:
            self.engine.set_own_password(conn, used, pending.password)
        finally:
            conn.close()
        log.info("setSecret: changed the password of the user of %s", secret_id)

    def _set_alternating(
        self, sm: Any, secret_id: str, current: DbSecret, pending: DbSecret
    ) -> None:
        if pending.username != other_username(current.username):
            raise RotationError(
                f"The AWSPENDING username of {secret_id} is not the alternate of the "
                f"AWSCURRENT user (the name with {CLONE_SUFFIX!r} added or removed)."
            )
        master = self._master(sm, current)
        logs_in = self._logs_in(pending)
        current_conn = self._login(current, f"the AWSCURRENT value of {secret_id}")
        try:
            master_conn = self._login(master, f"the master secret {current.masterarn}")
            try:
                self.engine.sync_user(master_conn, current_conn, current, pending, logs_in)
            finally:
                master_conn.close()
        finally:
            current_conn.close()
        log.info("setSecret: the alternate user of %s is ready", secret_id)

    def test_secret(self, sm: Any, secret_id: str, token: str) -> None:
        pending = self._read(sm, secret_id, AWSPENDING, token)
        conn = self._login(pending, f"the AWSPENDING value of {secret_id}")
        try:
            self.engine.ping(conn, pending)
        finally:
            conn.close()
        log.info("testSecret: the pending value of %s logs in", secret_id)

    # -- logging in ---------------------------------------------------------------------

    def _master(self, sm: Any, current: DbSecret) -> DbSecret:
        arn = current.masterarn or ""
        text = require_value(sm, arn, AWSCURRENT)
        what = f"master secret {arn}"
        master = parse_secret(parse_json_object(text, what), what, self.engine)
        if master.host.lower() != current.host.lower():
            raise RotationError(
                f"The master secret {arn} is for host {master.host}, not {current.host}; "
                "refusing to use it for this database."
            )
        if self.engine.master_in_secret_database and current.dbname:
            master = replace(master, dbname=current.dbname)
        return master

    def _logs_in(self, secret: DbSecret) -> bool:
        """Whether ``secret`` logs in; an unreachable database is an error, not a no."""
        try:
            conn = self.engine.connect(secret)
        except LoginRefused:
            return False
        conn.close()
        return True

    def _login(self, secret: DbSecret, what: str) -> Any:
        try:
            return self.engine.connect(secret)
        except LoginRefused as exc:
            raise LoginRefused(f"Cannot log in with {what}: {exc}") from None
        except RotationError as exc:
            raise type(exc)(f"Cannot log in with {what}: {exc}") from None

    def _first_login(self, candidates: list[DbSecret], secret_id: str) -> tuple[Any, DbSecret]:
        reasons = []
        for secret, stage in zip(candidates, (AWSCURRENT, AWSPREVIOUS), strict=False):
            try:
                return self.engine.connect(secret), secret
            except LoginRefused as exc:
                reasons.append(f"{stage}: {exc}")
        raise LoginRefused(
            f"Cannot log in to {self.engine.label} at {candidates[0].address} as the user of "
            f"{secret_id} with the AWSCURRENT or AWSPREVIOUS password ({'; '.join(reasons)})."
        )
