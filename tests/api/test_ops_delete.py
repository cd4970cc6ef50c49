"""DeleteSecret and RestoreSecret against the live server."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from secretsd.model import errors
from tests.api.test_ops_helpers import (
    expect_error,
    partial_arn,
    stages_by_version,
    token,
    unique_name,
)

DAY = 86400


@pytest.fixture
def secret(sm):
    name = unique_name("delete")
    v1, v2 = token(), token()
    arn = sm.create_secret(Name=name, SecretString="one", ClientRequestToken=v1)["ARN"]
    sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=v2)
    return name, arn, v1, v2


def test_default_recovery_window_is_30_days(sm, secret):
    name, arn, _, _ = secret
    before = time.time()
    deleted = sm.delete_secret(SecretId=name)
    assert (deleted["ARN"], deleted["Name"]) == (arn, name)
    assert (
        before + 30 * DAY - 60 <= deleted["DeletionDate"].timestamp() <= time.time() + 30 * DAY + 60
    )


@pytest.mark.parametrize("days", [7, 30])
def test_recovery_window_bounds_are_accepted(sm, secret, days):
    name, _, _, _ = secret
    before = time.time()
    deleted = sm.delete_secret(SecretId=name, RecoveryWindowInDays=days)
    when = deleted["DeletionDate"].timestamp()
    assert before + days * DAY - 60 <= when <= time.time() + days * DAY + 60


@pytest.mark.parametrize("days", [0, 6, 31])
def test_recovery_window_outside_7_to_30_is_refused(sm, secret, days):
    name, _, _, _ = secret
    with expect_error("InvalidParameterException"):
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=days)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"


def test_window_and_force_together_are_refused(sm, secret):
    name, _, _, _ = secret
    with expect_error("InvalidParameterException"):
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=True)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"


def test_reading_a_secret_scheduled_for_deletion_is_refused(sm, secret):
    name, arn, _, _ = secret
    sm.delete_secret(SecretId=partial_arn(arn))
    with expect_error("InvalidRequestException", errors.MARKED_FOR_DELETION):
        sm.get_secret_value(SecretId=name)
    with expect_error("InvalidRequestException", errors.MARKED_FOR_DELETION):
        sm.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")
    # Its metadata stays visible.
    assert "DeletedDate" in sm.describe_secret(SecretId=name)


def test_deleting_twice_is_refused(sm, secret):
    name, _, _, _ = secret
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    with expect_error("InvalidRequestException"):
        sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)


def test_deleting_unknown_secret_is_not_found(sm):
    with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
        sm.delete_secret(SecretId=unique_name("nope"))


def test_new_secret_with_a_scheduled_name_is_refused(sm, secret):
    name, _, _, _ = secret
    sm.delete_secret(SecretId=name)
    with expect_error("InvalidRequestException", errors.NAME_SCHEDULED_FOR_DELETION):
        sm.create_secret(Name=name, SecretString="again")


def test_force_delete_removes_the_secret_now(sm, secret):
    name, arn, _, _ = secret
    deleted = sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    assert deleted["ARN"] == arn
    with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
        sm.get_secret_value(SecretId=name)
    with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
        sm.describe_secret(SecretId=name)
    with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
        sm.restore_secret(SecretId=name)
    # The name is free again; AWS frees it asynchronously, so allow a short delay.
    deadline = time.monotonic() + 5
    while True:
        try:
            created = sm.create_secret(Name=name, SecretString="reborn")
            break
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "reborn"
    assert created["VersionId"] in stages_by_version(sm, name)


def test_force_delete_of_a_missing_secret_is_not_an_error(sm):
    response = sm.delete_secret(SecretId=unique_name("never"), ForceDeleteWithoutRecovery=True)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_force_delete_of_a_scheduled_secret(sm, secret):
    name, _, _, _ = secret
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
        sm.describe_secret(SecretId=name)


def test_restore_brings_back_every_version(sm, secret):
    name, arn, v1, v2 = secret
    sm.delete_secret(SecretId=name)
    restored = sm.restore_secret(SecretId=arn)
    assert (restored["ARN"], restored["Name"]) == (arn, name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"
    assert sm.get_secret_value(SecretId=name, VersionId=v1)["SecretString"] == "one"
    assert stages_by_version(sm, name) == {v1: {"AWSPREVIOUS"}, v2: {"AWSCURRENT"}}
    described = sm.describe_secret(SecretId=name)
    assert "DeletedDate" not in described
    # A restored secret can be written again.
    sm.put_secret_value(SecretId=name, SecretString="three")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "three"


def test_restore_unknown_secret(sm):
    with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
        sm.restore_secret(SecretId=unique_name("nope"))


def test_window_with_force_false_is_a_window(sm, secret):
    name, _, _, _ = secret
    before = time.time()
    deleted = sm.delete_secret(
        SecretId=name, RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=False
    )
    assert deleted["DeletionDate"].timestamp() >= before + 7 * DAY - 60
    assert "DeletedDate" in sm.describe_secret(SecretId=name)


def test_a_recreated_name_is_a_new_resource(sm, secret):
    name, old_arn, _, _ = secret
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    deadline = time.monotonic() + 5
    while True:
        try:
            new_arn = sm.create_secret(Name=name, SecretString="new")["ARN"]
            break
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert new_arn != old_arn
    with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
        sm.get_secret_value(SecretId=old_arn)
    assert sm.get_secret_value(SecretId=partial_arn(old_arn))["ARN"] == new_arn
