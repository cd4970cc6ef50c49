"""Pure pieces of the functions: SHOW GRANTS rewriting in every dialect, secret validation,
password settings. The live MariaDB covers MariaDB's output end to end; the MySQL 8 and
5.7 lines here are the formats those servers print."""

from __future__ import annotations

import psycopg
import pymysql
import pytest

from secretsd.rotation.functions.common import RotationError, password_request, redact
from secretsd.rotation.functions.database import (
    DbSecret,
    LoginRefused,
    Unreachable,
    other_username,
    parse_secret,
)
from secretsd.rotation.functions.mysql_engine import _MARK, MySQLEngine, describe, mark
from secretsd.rotation.functions.postgresql_engine import PostgreSQLEngine, classify

TARGET = "'app_clone'@'%'"


def rewrite(statement: str, user: str = "app", host: str = "%") -> str | None:
    marked = mark(statement, user, host)
    return None if marked is None else marked.replace(_MARK, TARGET)


@pytest.mark.parametrize(
    ("shown", "replayed"),
    [
        # MariaDB: the password hash or plugin clause is dropped.
        (
            "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*2B602296A79E0A8784AC'",
            f"GRANT USAGE ON *.* TO {TARGET}",
        ),
        (
            "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED VIA ed25519 USING 'abc' WITH "
            "MAX_QUERIES_PER_HOUR 10",
            f"GRANT USAGE ON *.* TO {TARGET} WITH MAX_QUERIES_PER_HOUR 10",
        ),
        ("GRANT `reader` TO `app`@`%`", f"GRANT `reader` TO {TARGET}"),
        ("SET DEFAULT ROLE `reader` FOR `app`@`%`", f"SET DEFAULT ROLE `reader` FOR {TARGET}"),
        # MySQL 8: backticks, roles with hosts, dynamic privileges, partial revokes.
        (
            "GRANT SELECT, INSERT ON `app`.* TO `app`@`%` WITH GRANT OPTION",
            f"GRANT SELECT, INSERT ON `app`.* TO {TARGET} WITH GRANT OPTION",
        ),
        ("GRANT `r1`@`%` TO `app`@`%`", f"GRANT `r1`@`%` TO {TARGET}"),
        ("GRANT BACKUP_ADMIN ON *.* TO `app`@`%`", f"GRANT BACKUP_ADMIN ON *.* TO {TARGET}"),
        ("REVOKE INSERT ON `mysql`.* FROM `app`@`%`", f"REVOKE INSERT ON `mysql`.* FROM {TARGET}"),
        # MySQL 5.7: single quotes around the account.
        (
            "GRANT SELECT (`id`) ON `test`.`t` TO 'app'@'%' REQUIRE SSL",
            f"GRANT SELECT (`id`) ON `test`.`t` TO {TARGET} REQUIRE SSL",
        ),
    ],
)
def test_show_grants_lines_are_rewritten_for_the_other_user(shown, replayed):
    assert rewrite(shown) == replayed


def test_lines_about_other_accounts_are_skipped():
    assert rewrite("GRANT USAGE ON *.* TO `reader`") is None
    assert rewrite("GRANT SELECT ON *.* TO `app`@`localhost`") is None
    assert rewrite("GRANT SELECT ON *.* TO `application`@`%`") is None


def test_odd_account_names_are_matched_exactly():
    assert rewrite("GRANT USAGE ON *.* TO `we``ird`@`%`", user="we`ird") == (
        f"GRANT USAGE ON *.* TO {TARGET}"
    )
    assert rewrite("GRANT USAGE ON *.* TO 'o\\'k'@'%'", user="o'k") == (
        f"GRANT USAGE ON *.* TO {TARGET}"
    )


def test_the_alternate_username_toggles_the_suffix():
    assert other_username("app") == "app_clone"
    assert other_username("app_clone") == "app"
    assert other_username("_clone") == "_clone_clone"


def secret(**overrides):
    value = {"engine": "mysql", "host": "db", "username": "app", "password": "pw"}
    value.update(overrides)
    return {k: v for k, v in value.items() if v is not None}


def test_secret_validation_names_what_is_wrong():
    engine = MySQLEngine()
    with pytest.raises(RotationError, match=r"missing the required key.*'host'"):
        parse_secret(secret(host=None), "AWSCURRENT value", engine)
    with pytest.raises(RotationError, match="'masterarn'"):
        parse_secret(secret(), "AWSCURRENT value", engine, need_master=True)
    with pytest.raises(RotationError, match="engine 'postgres'"):
        parse_secret(secret(engine="postgres"), "AWSCURRENT value", engine)
    with pytest.raises(RotationError, match="invalid 'port'"):
        parse_secret(secret(port="x"), "AWSCURRENT value", engine)
    with pytest.raises(RotationError, match="'ssl'"):
        parse_secret(secret(ssl="maybe"), "AWSCURRENT value", engine)
    parsed = parse_secret(secret(port="3307", ssl="TRUE"), "v", engine)
    assert (parsed.port, parsed.ssl) == (3307, True)
    assert parse_secret(secret(engine="postgres"), "v", PostgreSQLEngine()).port == 5432


def test_a_db_secret_repr_hides_the_password():
    parsed = parse_secret(secret(password="s3cr3t-value"), "v", MySQLEngine())
    assert "s3cr3t-value" not in repr(parsed)
    assert isinstance(parsed, DbSecret)


def test_password_settings_come_from_the_environment():
    assert password_request("/@") == {
        "PasswordLength": 32,
        "ExcludeCharacters": "/@",
        "ExcludeNumbers": False,
        "ExcludePunctuation": False,
        "ExcludeUppercase": False,
        "ExcludeLowercase": False,
        "IncludeSpace": False,
        "RequireEachIncludedType": True,
    }
    env = {"PASSWORD_LENGTH": "12", "EXCLUDE_NUMBERS": "TRUE", "EXCLUDE_CHARACTERS": ""}
    request = password_request("/@", env)
    assert request["PasswordLength"] == 12
    assert request["ExcludeNumbers"] is True
    assert "ExcludeCharacters" not in request
    with pytest.raises(RotationError, match="PASSWORD_LENGTH"):
        password_request("", {"PASSWORD_LENGTH": "5000"})
    with pytest.raises(RotationError, match="REQUIRE_EACH_INCLUDED_TYPE"):
        password_request("", {"REQUIRE_EACH_INCLUDED_TYPE": "sometimes"})


def test_redact_removes_every_known_value():
    assert redact("a pw1 b pw2", ["pw1", None, "", "pw2"]) == "a [redacted] b [redacted]"


def test_mysql_error_texts_lose_passwords_even_escaped():
    parsed = parse_secret(secret(password="it's-s3cret"), "v", MySQLEngine())
    exc = pymysql.err.ProgrammingError(
        1064, "You have an error in your SQL syntax near 'it\\'s-s3cret' and 'n3w'"
    )
    text = describe(exc, parsed, "n3w")
    assert "s3cret" not in text
    assert "n3w" not in text
    assert text.startswith("(1064) You have an error")


@pytest.mark.parametrize(
    ("text", "kind", "tls"),
    [
        ('FATAL:  password authentication failed for user "app"', LoginRefused, False),
        ('FATAL:  role "app" does not exist', LoginRefused, False),
        ('FATAL:  no pg_hba.conf entry for host "10.0.0.1", user "app"', LoginRefused, False),
        ('FATAL:  database "roles" does not exist', RotationError, False),
        ("Connection refused\n\tIs the server running on that host?", Unreachable, False),
        ("server does not support SSL, but SSL was required", Unreachable, True),
    ],
)
def test_postgresql_login_failures_are_told_apart(text, kind, tls):
    parsed = parse_secret(secret(engine="postgres"), "v", PostgreSQLEngine())
    exc = psycopg.OperationalError(
        f'connection failed: connection to server at "db", port 5432 failed: {text}'
    )
    failure = classify(exc, parsed)
    assert type(failure) is kind
    assert getattr(failure, "tls", False) is tls
    assert "PostgreSQL at db:5432 as 'app'" in str(failure)
