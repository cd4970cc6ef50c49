"""secretsd-mysql-single-user against the real MariaDB and a live secretsd server."""

from __future__ import annotations

import json

import pytest

from secretsd.rotation.functions import mysql_single_user
from secretsd.rotation.functions.common import RotationError
from tests.rotation.functions.conftest import mysql_logs_in, mysql_secret, new_password

handler = mysql_single_user.lambda_handler
pytestmark = pytest.mark.mariadb


def test_rotation_changes_the_password_and_the_old_one_stops_working(rotations, mysql_users):
    old = new_password()
    user = mysql_users.create(old)
    arn = rotations.create("mysql-single", mysql_secret(user, old))

    token = rotations.rotate(handler, arn)

    current = rotations.value(arn)
    assert current["username"] == user
    assert current["password"] != old
    assert mysql_logs_in(user, current["password"])
    assert not mysql_logs_in(user, old)
    assert rotations.value(arn, "AWSPREVIOUS")["password"] == old
    assert rotations.stages(arn)[token] == ["AWSCURRENT"]
    # The other keys of the secret survive untouched.
    assert {k: v for k, v in current.items() if k != "password"} == {
        k: v for k, v in mysql_secret(user, old).items() if k != "password"
    }


def test_generated_password_follows_the_environment(rotations, mysql_users, monkeypatch):
    old = new_password()
    user = mysql_users.create(old)
    arn = rotations.create("mysql-pwgen", mysql_secret(user, old))

    rotations.rotate(handler, arn)
    default = rotations.value(arn)["password"]
    assert len(default) == 32
    assert not set(default) & set("/@\"'\\")

    monkeypatch.setenv("PASSWORD_LENGTH", "20")
    monkeypatch.setenv("EXCLUDE_PUNCTUATION", "true")
    monkeypatch.setenv("EXCLUDE_CHARACTERS", "abcdef")
    rotations.rotate(handler, arn)
    tuned = rotations.value(arn)["password"]
    assert len(tuned) == 20
    assert tuned.isalnum()
    assert not set(tuned) & set("abcdef")
    assert mysql_logs_in(user, tuned)


def test_every_step_is_idempotent(rotations, mysql_users):
    old = new_password()
    user = mysql_users.create(old)
    arn = rotations.create("mysql-idem", mysql_secret(user, old))
    token = rotations.begin(arn)

    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        handler(rotations.event(arn, token, step), None)
        before = (rotations.stages(arn), rotations.value(arn, "AWSPENDING"))
        handler(rotations.event(arn, token, step), None)
        assert (rotations.stages(arn), rotations.value(arn, "AWSPENDING")) == before

    new = rotations.value(arn)["password"]
    stages = rotations.stages(arn)
    # The whole rotation again with the same token: nothing more changes.
    rotations.run_steps(handler, arn, token)
    assert rotations.value(arn)["password"] == new
    assert rotations.stages(arn) == stages
    assert mysql_logs_in(user, new)
    assert not mysql_logs_in(user, old)


def test_set_secret_logs_in_with_the_previous_password_when_current_fails(rotations, mysql_users):
    real = new_password()
    user = mysql_users.create(real)
    arn = rotations.create("mysql-prev", mysql_secret(user, real))
    # Someone put a wrong password in AWSCURRENT; the real one is now AWSPREVIOUS.
    rotations.sm.put_secret_value(
        SecretId=arn, SecretString=json.dumps(mysql_secret(user, "not-the-password"))
    )

    rotations.rotate(handler, arn)

    assert mysql_logs_in(user, rotations.value(arn)["password"])
    assert not mysql_logs_in(user, real)


def test_a_pending_value_put_before_create_secret_is_kept(rotations, mysql_users):
    old = new_password()
    user = mysql_users.create(old)
    arn = rotations.create("mysql-prefilled", mysql_secret(user, old))
    chosen = new_password()
    token = rotations.begin(arn)
    rotations.sm.put_secret_value(
        SecretId=arn,
        ClientRequestToken=token,
        SecretString=json.dumps(mysql_secret(user, chosen)),
        VersionStages=["AWSPENDING"],
    )

    rotations.run_steps(handler, arn, token)

    assert rotations.value(arn)["password"] == chosen
    assert mysql_logs_in(user, chosen)


def _assert_failure_leaves_current(rotations, arn, token, step, expected, secrets):
    before_stages = rotations.stages(arn)
    before_value = rotations.value(arn)
    with pytest.raises(RotationError) as info:
        rotations.run_steps(handler, arn, token)
    message = str(info.value)
    assert expected in message
    for secret in secrets:
        assert secret not in message
    assert info.value.__cause__ is None
    stages = rotations.stages(arn)
    current = next(v for v, s in stages.items() if "AWSCURRENT" in s)
    assert current == next(v for v, s in before_stages.items() if "AWSCURRENT" in s)
    assert rotations.value(arn) == before_value
    return message


@pytest.mark.parametrize(
    ("drop", "named"), [("host", "'host'"), ("engine", "'engine'"), ("password", "'password'")]
)
def test_a_secret_missing_a_key_fails_naming_it(rotations, mysql_users, drop, named):
    old = new_password()
    user = mysql_users.create(old)
    value = mysql_secret(user, old)
    del value[drop]
    arn = rotations.create("mysql-missing", value)
    token = rotations.begin(arn)

    message = _assert_failure_leaves_current(rotations, arn, token, "createSecret", named, [old])
    assert "missing" in message
    assert mysql_logs_in(user, old)


def test_a_secret_for_another_engine_fails_naming_the_engine(rotations, mysql_users):
    old = new_password()
    user = mysql_users.create(old)
    arn = rotations.create("mysql-engine", mysql_secret(user, old, engine="postgres"))
    token = rotations.begin(arn)

    message = _assert_failure_leaves_current(
        rotations, arn, token, "createSecret", "'postgres'", []
    )
    assert "engine" in message
    assert mysql_logs_in(user, old)


def test_a_password_the_database_refuses_fails_and_keeps_current(rotations, mysql_users):
    real = new_password()
    user = mysql_users.create(real)
    stale = new_password()
    arn = rotations.create("mysql-refused", mysql_secret(user, stale))
    token = rotations.begin(arn)

    message = _assert_failure_leaves_current(
        rotations, arn, token, "setSecret", "Cannot log in", [stale, real]
    )
    assert "AWSCURRENT" in message
    assert "1045" in message
    pending = rotations.value(arn, "AWSPENDING")["password"]
    assert pending not in message
    assert mysql_logs_in(user, real)
    assert not mysql_logs_in(user, pending)


def test_an_unreachable_database_fails_naming_the_address(rotations, mysql_users):
    old = new_password()
    user = mysql_users.create(old)
    # Port 9 on loopback: nothing listens, the connection is refused at once.
    arn = rotations.create("mysql-down", mysql_secret(user, old, port=9))
    token = rotations.begin(arn)

    message = _assert_failure_leaves_current(
        rotations, arn, token, "setSecret", "Cannot reach", [old]
    )
    assert "127.0.0.1:9" in message


def test_ssl_true_demands_tls(rotations, mysql_users):
    old = new_password()
    user = mysql_users.create(old)
    arn = rotations.create("mysql-tls", mysql_secret(user, old, ssl=True))
    token = rotations.begin(arn)

    # The test server offers no TLS: a secret that demands it must not log in in plain text.
    message = _assert_failure_leaves_current(rotations, arn, token, "setSecret", "TLS", [old])
    assert "127.0.0.1:3306" in message
    assert mysql_logs_in(user, old)


def test_ssl_false_and_absent_log_in_without_tls(rotations, mysql_users):
    for ssl in (False, "false", None):
        old = new_password()
        user = mysql_users.create(old)
        extra = {} if ssl is None else {"ssl": ssl}
        arn = rotations.create("mysql-plain", mysql_secret(user, old, **extra))
        rotations.rotate(handler, arn)
        assert mysql_logs_in(user, rotations.value(arn)["password"])
