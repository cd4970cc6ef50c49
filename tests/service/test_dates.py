"""Dates the service records have milliseconds, as AWS's do, and read back unchanged."""

from __future__ import annotations

from tests.service.conftest import DAY, T0

# A clock reading with digits below the millisecond, as time.time() gives.
FINE = T0 + 0.6363366
MS = round(FINE, 3)


def test_created_and_changed_dates_have_milliseconds(service, clock):
    clock.now = FINE
    service.call("CreateSecret", {"Name": "s", "SecretString": "v1"})
    described = service.call("DescribeSecret", {"SecretId": "s"})
    assert described["CreatedDate"] == MS == T0 + 0.636
    assert described["LastChangedDate"] == MS
    (version,) = service.call("ListSecretVersionIds", {"SecretId": "s"})["Versions"]
    assert version["CreatedDate"] == MS
    assert service.call("GetSecretValue", {"SecretId": "s"})["CreatedDate"] == MS


def test_versions_put_later_keep_their_order(service, clock):
    clock.now = FINE
    service.call("CreateSecret", {"Name": "s", "SecretString": "v1"})
    clock.advance(0.0015)
    body = {"SecretId": "s", "SecretString": "v2", "ClientRequestToken": "2" * 32}
    service.call("PutSecretValue", body)
    listed = service.call("ListSecretVersionIds", {"SecretId": "s"})["Versions"]
    assert [v["CreatedDate"] for v in listed] == [round(FINE + 0.0015, 3), MS]
    assert listed[0]["VersionId"] == "2" * 32


def test_deletion_dates_have_milliseconds(service, clock):
    clock.now = FINE
    service.call("CreateSecret", {"Name": "s", "SecretString": "v1"})
    deleted = service.call("DeleteSecret", {"SecretId": "s", "RecoveryWindowInDays": 7})
    assert deleted["DeletionDate"] == round(MS + 7 * DAY, 3)
    assert repr(deleted["DeletionDate"]).split(".")[1] == "636"
    assert service.call("DescribeSecret", {"SecretId": "s"})["DeletedDate"] == MS
