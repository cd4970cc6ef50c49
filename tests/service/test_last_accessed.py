"""LastAccessedDate: day resolution, at most one write per secret per day.

The date may be written off the request path (a read must not wait on a write), so every
check of a new date waits for it with a bounded poll instead of assuming it is there when
GetSecretValue returns.
"""

from __future__ import annotations

from tests.service.conftest import DAY, HOUR, T0
from tests.support.wait import wait_for

MIDNIGHT = T0 // DAY * DAY  # T0 is 09:00 UTC on 2024-02-20


def last_accessed(service, name: str = "s") -> float | None:
    return service.call("DescribeSecret", {"SecretId": name}).get("LastAccessedDate")


def version_last_accessed(service, version_id: str, name: str = "s") -> float | None:
    listed = service.call("ListSecretVersionIds", {"SecretId": name, "IncludeDeprecated": True})
    (version,) = [v for v in listed["Versions"] if v["VersionId"] == version_id]
    return version.get("LastAccessedDate")


def revision(storage, name: str = "s") -> int:
    return storage.load_by_name(name).revision


def wait_for_date(service, expected: float, name: str = "s") -> None:
    wait_for(
        lambda: last_accessed(service, name) == expected,
        timeout=5,
        message=f"LastAccessedDate never became {expected} (is {last_accessed(service, name)})",
    )


def test_absent_until_the_first_read_then_the_day_of_it(service):
    created = service.call("CreateSecret", {"Name": "s", "SecretString": "v"})
    assert last_accessed(service) is None
    service.call("GetSecretValue", {"SecretId": "s"})
    wait_for_date(service, MIDNIGHT)
    assert version_last_accessed(service, created["VersionId"]) == MIDNIGHT


def test_reads_on_the_same_day_write_nothing_and_the_next_day_writes_once(service, storage, clock):
    service.call("CreateSecret", {"Name": "s", "SecretString": "v"})
    service.call("GetSecretValue", {"SecretId": "s"})
    wait_for_date(service, MIDNIGHT)
    first_day = revision(storage)

    # Late the same day, many reads: the date is already today's, nothing to store.
    clock.advance(14 * HOUR + 59 * 60)  # 23:59 UTC
    for _ in range(20):
        service.call("GetSecretValue", {"SecretId": "s"})
    clock.advance(60)  # midnight: the next day
    service.call("GetSecretValue", {"SecretId": "s"})
    wait_for_date(service, MIDNIGHT + DAY)
    # The first day's reads made no write of their own; the next day's made exactly one.
    assert revision(storage) == first_day + 1


def test_each_version_keeps_the_day_it_was_last_read(service, clock):
    old = service.call("CreateSecret", {"Name": "s", "SecretString": "v1"})["VersionId"]
    new = service.call(
        "PutSecretValue", {"SecretId": "s", "SecretString": "v2", "ClientRequestToken": "n" * 32}
    )["VersionId"]
    service.call("GetSecretValue", {"SecretId": "s", "VersionStage": "AWSPREVIOUS"})
    wait_for(lambda: version_last_accessed(service, old) == MIDNIGHT, timeout=5)
    assert version_last_accessed(service, new) is None

    clock.advance(3 * DAY)
    service.call("GetSecretValue", {"SecretId": "s"})
    wait_for(lambda: version_last_accessed(service, new) == MIDNIGHT + 3 * DAY, timeout=5)
    assert version_last_accessed(service, old) == MIDNIGHT
    assert last_accessed(service) == MIDNIGHT + 3 * DAY


def test_describe_and_list_are_not_reads_of_the_value(service, storage, clock):
    service.call("CreateSecret", {"Name": "s", "SecretString": "v"})
    before = revision(storage)
    service.call("DescribeSecret", {"SecretId": "s"})
    service.call("ListSecrets", {})
    service.call("ListSecretVersionIds", {"SecretId": "s"})
    # A read of the value afterwards is the one that sets the date, with one write: had
    # the others written, the revision would have moved more than once.
    service.call("GetSecretValue", {"SecretId": "s"})
    wait_for_date(service, MIDNIGHT)
    assert revision(storage) == before + 1


def test_a_batch_read_counts_as_a_read(service):
    service.call("CreateSecret", {"Name": "a", "SecretString": "1"})
    service.call("CreateSecret", {"Name": "b", "SecretString": "2"})
    response = service.call("BatchGetSecretValue", {"SecretIdList": ["a", "b"]})
    assert [v["SecretString"] for v in response["SecretValues"]] == ["1", "2"]
    wait_for_date(service, MIDNIGHT, "a")
    wait_for_date(service, MIDNIGHT, "b")


def test_a_date_write_never_undoes_a_concurrent_change(service, storage, clock):
    """The date is bookkeeping: a value put between the read and its date write survives."""
    service.call("CreateSecret", {"Name": "s", "SecretString": "v1"})
    service.call("GetSecretValue", {"SecretId": "s"})
    service.call(
        "PutSecretValue", {"SecretId": "s", "SecretString": "v2", "ClientRequestToken": "n" * 32}
    )
    wait_for_date(service, MIDNIGHT)
    assert service.call("GetSecretValue", {"SecretId": "s"})["SecretString"] == "v2"
