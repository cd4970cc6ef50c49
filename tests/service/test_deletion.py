"""The recovery window of DeleteSecret, walked through with a clock the test moves."""

from __future__ import annotations

import pytest

from secretsd.model import errors
from tests.service.conftest import DAY

WINDOW = 7 * DAY


def listed_names(service, *, include_planned_deletion: bool) -> set[str]:
    response = service.call("ListSecrets", {"IncludePlannedDeletion": include_planned_deletion})
    return {entry["Name"] for entry in response["SecretList"]}


@pytest.fixture
def deleted(service, clock):
    """A secret with a value, scheduled for deletion with a seven-day window at T0."""
    created = service.call("CreateSecret", {"Name": "db/app", "SecretString": "v1"})
    response = service.call("DeleteSecret", {"SecretId": "db/app", "RecoveryWindowInDays": 7})
    assert response["ARN"] == created["ARN"]
    assert response["DeletionDate"] == clock() + WINDOW
    return created


def test_a_secret_in_its_recovery_window_is_listed_only_on_request(service, clock, deleted):
    assert "db/app" not in listed_names(service, include_planned_deletion=False)
    assert "db/app" in listed_names(service, include_planned_deletion=True)
    (entry,) = service.call("ListSecrets", {"IncludePlannedDeletion": True})["SecretList"]
    assert entry["DeletedDate"] == clock()


def test_a_secret_in_its_recovery_window_cannot_be_read_or_changed(service, clock, deleted):
    with pytest.raises(errors.InvalidRequest) as caught:
        service.call("GetSecretValue", {"SecretId": "db/app"})
    assert caught.value.message == errors.MARKED_FOR_DELETION
    with pytest.raises(errors.InvalidRequest):
        service.call(
            "PutSecretValue",
            {"SecretId": "db/app", "SecretString": "v2", "ClientRequestToken": "t" * 32},
        )
    with pytest.raises(errors.InvalidRequest):
        service.call("DeleteSecret", {"SecretId": "db/app"})
    # Its metadata stays visible, with the date it was deleted.
    assert service.call("DescribeSecret", {"SecretId": "db/app"})["DeletedDate"] == clock()


def test_the_name_of_a_secret_in_its_recovery_window_is_taken(service, deleted):
    with pytest.raises(errors.InvalidRequest) as caught:
        service.call("CreateSecret", {"Name": "db/app", "SecretString": "other"})
    assert caught.value.message == errors.NAME_SCHEDULED_FOR_DELETION


def test_restore_within_the_window_gives_the_secret_back_unchanged(service, clock, deleted):
    clock.advance(WINDOW - 1)
    assert service.call("RestoreSecret", {"SecretId": "db/app"})["ARN"] == deleted["ARN"]
    value = service.call("GetSecretValue", {"SecretId": "db/app"})
    assert value["SecretString"] == "v1"
    assert value["VersionId"] == deleted["VersionId"]
    assert "DeletedDate" not in service.call("DescribeSecret", {"SecretId": "db/app"})
    assert "db/app" in listed_names(service, include_planned_deletion=False)
    # Restored for good: the old deletion date no longer applies.
    clock.advance(30 * DAY)
    assert service.call("GetSecretValue", {"SecretId": "db/app"})["SecretString"] == "v1"


def test_the_secret_stays_until_the_last_moment_of_its_window(service, clock, deleted):
    clock.advance(WINDOW - 1)
    assert service.call("DescribeSecret", {"SecretId": "db/app"})["ARN"] == deleted["ARN"]
    assert "db/app" in listed_names(service, include_planned_deletion=True)


@pytest.mark.parametrize("operation", ["DescribeSecret", "GetSecretValue", "RestoreSecret"])
def test_after_the_window_the_secret_is_gone(service, clock, deleted, operation):
    clock.advance(WINDOW + 1)
    with pytest.raises(errors.ResourceNotFound) as caught:
        service.call(operation, {"SecretId": "db/app"})
    assert caught.value.message == errors.SECRET_NOT_FOUND
    with pytest.raises(errors.ResourceNotFound):
        service.call(operation, {"SecretId": deleted["ARN"]})
    assert "db/app" not in listed_names(service, include_planned_deletion=True)


def test_after_the_window_the_name_is_free_again(service, clock, deleted):
    clock.advance(WINDOW + 1)
    # Nothing read the secret since its window ended: CreateSecret alone must see it gone.
    created = service.call("CreateSecret", {"Name": "db/app", "SecretString": "fresh"})
    assert created["ARN"] != deleted["ARN"]
    value = service.call("GetSecretValue", {"SecretId": "db/app"})
    assert value["SecretString"] == "fresh"
    versions = service.call(
        "ListSecretVersionIds", {"SecretId": "db/app", "IncludeDeprecated": True}
    )
    assert [v["VersionId"] for v in versions["Versions"]] == [created["VersionId"]]
    with pytest.raises(errors.ResourceNotFound):
        service.call("GetSecretValue", {"SecretId": deleted["ARN"]})


def test_after_the_window_the_name_is_free_once_a_read_found_it_gone(service, clock, deleted):
    clock.advance(WINDOW + 1)
    with pytest.raises(errors.ResourceNotFound):
        service.call("DescribeSecret", {"SecretId": "db/app"})
    created = service.call("CreateSecret", {"Name": "db/app", "SecretString": "fresh"})
    assert created["ARN"] != deleted["ARN"]


def test_the_default_window_is_thirty_days(service, clock):
    service.call("CreateSecret", {"Name": "s", "SecretString": "v"})
    response = service.call("DeleteSecret", {"SecretId": "s"})
    assert response["DeletionDate"] == clock() + 30 * DAY
    clock.advance(30 * DAY - 1)
    assert "DeletedDate" in service.call("DescribeSecret", {"SecretId": "s"})
    clock.advance(2)
    with pytest.raises(errors.ResourceNotFound):
        service.call("DescribeSecret", {"SecretId": "s"})


@pytest.mark.parametrize("days", [6, 31])
def test_a_window_outside_seven_to_thirty_days_is_refused(service, days):
    service.call("CreateSecret", {"Name": "s", "SecretString": "v"})
    with pytest.raises(errors.InvalidParameter):
        service.call("DeleteSecret", {"SecretId": "s", "RecoveryWindowInDays": days})
    assert service.call("GetSecretValue", {"SecretId": "s"})["SecretString"] == "v"


def test_force_delete_frees_the_name_at_once_and_forgives_a_missing_secret(service):
    first = service.call("CreateSecret", {"Name": "s", "SecretString": "v"})
    service.call("DeleteSecret", {"SecretId": "s", "ForceDeleteWithoutRecovery": True})
    with pytest.raises(errors.ResourceNotFound):
        service.call("DescribeSecret", {"SecretId": "s"})
    again = service.call("DeleteSecret", {"SecretId": "s", "ForceDeleteWithoutRecovery": True})
    assert again["Name"] == "s"
    assert service.call("CreateSecret", {"Name": "s", "SecretString": "w"})["ARN"] != first["ARN"]


def test_force_delete_ends_a_recovery_window_early(service, deleted):
    service.call("DeleteSecret", {"SecretId": "db/app", "ForceDeleteWithoutRecovery": True})
    with pytest.raises(errors.ResourceNotFound):
        service.call("RestoreSecret", {"SecretId": "db/app"})
