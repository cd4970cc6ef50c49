"""The scheduler's decisions and the history scrubber, pure: no server, no clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from secretsd.model import versions
from secretsd.model.secret import AWSPENDING, Secret
from secretsd.rotation.redaction import REDACTED, is_secret_field, scrub
from secretsd.rotation.scheduler import Action, Backoff, backoff_after, plan

T0 = datetime(2024, 2, 27, 12, tzinfo=UTC).timestamp()
DAY = 86400.0
V = [f"{i:032d}" for i in range(5)]


def rotating_secret(rules: dict | None = None, base: float = T0) -> Secret:
    secret = Secret(arn="arn:x", name="s", created=T0 - DAY, last_changed=T0)
    versions.add_version(secret, V[0], T0 - DAY, None)
    secret.rotation_enabled = True
    secret.rotation_lambda_arn = "secretsd-generic"
    secret.rotation_rules = rules if rules is not None else {"AutomaticallyAfterDays": 2}
    secret.rotation_base = base
    return secret


def test_nothing_to_do_before_the_window_or_when_disabled():
    secret = rotating_secret()
    assert plan(secret, T0 + DAY, Backoff()) is None
    secret.rotation_enabled = False
    assert plan(secret, T0 + 2.5 * DAY, Backoff()) is None


def test_start_inside_the_window_across_a_leap_day():
    secret = rotating_secret()  # base Feb 27 noon, every 2 days -> window on Feb 29
    leap_day = datetime(2024, 2, 29, 0, 30, tzinfo=UTC).timestamp()
    assert plan(secret, leap_day, Backoff()) == Action("start")


def test_resume_in_progress_rotation_while_its_retry_window_is_open():
    secret = rotating_secret()
    versions.add_version(secret, V[1], T0, [AWSPENDING], has_value=False)
    secret.rotation_token = V[1]
    secret.rotation_retry_until = T0 + 3600
    assert plan(secret, T0 + 60, Backoff()) == Action("resume", V[1])
    # Backoff holds it back; it is not forgotten.
    assert plan(secret, T0 + 60, Backoff(2, T0 + 120)) is None
    assert plan(secret, T0 + 121, Backoff(2, T0 + 120)) == Action("resume", V[1])


def test_failed_rotation_waits_for_the_next_window_then_resumes_with_the_same_token():
    secret = rotating_secret({"ScheduleExpression": "rate(4 hours)"})
    versions.add_version(secret, V[1], T0, [AWSPENDING], has_value=False)
    secret.rotation_token = V[1]
    secret.rotation_retry_until = T0 + 1800  # the retry window has closed
    assert plan(secret, T0 + 2 * 3600, Backoff()) is None  # between windows
    next_window = (T0 // (4 * 3600) + 1) * 4 * 3600
    assert plan(secret, next_window + 60, Backoff()) == Action("resume", V[1])


def test_a_deleted_secret_is_left_alone():
    secret = rotating_secret()
    secret.deleted_date = T0
    assert plan(secret, T0 + 2.5 * DAY, Backoff()) is None


def test_backoff_doubles_up_to_a_ceiling():
    delays = [backoff_after(n, 0.0, 2.0, 30.0).not_before for n in range(1, 7)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_scrub_masks_credentials_and_plain_values_but_not_short_words():
    stored = [b'S{"username": "app", "password": "hunter2-long"}', b"Splain-token-value"]
    text = "login failed for app with hunter2-long; token plain-token-value"
    cleaned = scrub(text, stored)
    assert "hunter2-long" not in cleaned and "plain-token-value" not in cleaned
    assert cleaned.count(REDACTED) == 2
    assert "for app with" in cleaned  # three letters are too short to mask usefully


def test_scrub_keeps_what_an_operator_needs_to_find_the_fault():
    secret = {
        "engine": "mysql",
        "host": "db.internal.example",
        "username": "app_user",
        "password": "s3cret-pass",
        "masterarn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf",
        "ssl": {"client_key": "-----BEGIN KEY-----abc", "ca": "rds-ca-2019"},
        "api_tokens": ["tok-one-1111", "tok-two-2222"],
    }
    stored = [b"S" + json.dumps(secret).encode()]
    text = (
        "cannot log in to db.internal.example as app_user with s3cret-pass "
        f"(master {secret['masterarn']}, ca rds-ca-2019, key -----BEGIN KEY-----abc, "
        "tokens tok-one-1111 tok-two-2222)"
    )
    cleaned = scrub(text, stored)
    for kept in ("db.internal.example", "app_user", secret["masterarn"], "rds-ca-2019"):
        assert kept in cleaned
    for masked in ("s3cret-pass", "-----BEGIN KEY-----abc", "tok-one-1111", "tok-two-2222"):
        assert masked not in cleaned
    assert cleaned.count(REDACTED) == 4


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "Password",
        "passwd",
        "db_pwd",
        "client_secret",
        "token",
        "apiKey",
        "private_key",
        "credentials",
        "auth",
        "passphrase",
    ],
)
def test_credential_names_are_secret(name):
    assert is_secret_field(name)


@pytest.mark.parametrize(
    "name", ["host", "username", "engine", "port", "dbname", "masterarn", "ssl", "region"]
)
def test_connection_facts_are_not_secret(name):
    assert not is_secret_field(name)


def test_fields_a_function_declares_are_masked_too():
    stored = [b'S{"host": "db.example", "sesame": "open-sesame-42", "user": "app_user"}']
    text = "login to db.example as app_user with open-sesame-42 failed"
    assert scrub(text, stored) == text  # nothing here is named like a credential
    masked = scrub(text, stored, frozenset({"sesame"}))
    assert masked == f"login to db.example as app_user with {REDACTED} failed"
