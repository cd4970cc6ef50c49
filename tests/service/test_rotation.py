"""RotateSecret as the service keeps it: dates from the clock, and requests to the scheduler.

No scheduler runs here: a rotation function's steps are played through the service's own
operations, and the end of a rotation through ``service.edit``, as the orchestrator does.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from secretsd.model import errors
from secretsd.model.rotation import complete_rotation
from secretsd.model.rotation_dates import refresh_next_rotation
from secretsd.service import RotationRequests
from secretsd.store import DATABASE_FILE_NAME
from secretsd.store.sqlite import SQLiteStorage
from tests.service.conftest import DAY, FUNCTION, T0, SdkService

TOKEN = "r" * 32


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def describe(service, name: str = "s") -> dict:
    return service.call("DescribeSecret", {"SecretId": name})


def rotate(service, name: str = "s", **members) -> dict:
    body = {"SecretId": name, "RotationLambdaARN": FUNCTION, **members}
    return service.call("RotateSecret", body)


def play_the_function(service, token: str, value: str, name: str = "s") -> None:
    """createSecret and finishSecret as a rotation function does them, through the API."""
    service.call(
        "PutSecretValue",
        {
            "SecretId": name,
            "ClientRequestToken": token,
            "SecretString": value,
            "VersionStages": ["AWSPENDING"],
        },
    )
    current = service.call("GetSecretValue", {"SecretId": name})["VersionId"]
    service.call(
        "UpdateSecretVersionStage",
        {
            "SecretId": name,
            "VersionStage": "AWSCURRENT",
            "MoveToVersionId": token,
            "RemoveFromVersionId": current,
        },
    )


def finish(service, token: str, name: str = "s") -> None:
    """What the orchestrator does once finishSecret returned."""

    def change(secret, now):
        complete_rotation(secret, token, now)
        refresh_next_rotation(secret, now)

    service.edit(name, change)


@pytest.fixture
def secret(service) -> dict:
    return service.call("CreateSecret", {"Name": "s", "SecretString": "v0"})


# -- dates ---------------------------------------------------------------------------


def test_rules_without_rotating_now_set_the_next_date_from_the_clock(service, secret):
    response = rotate(
        service, RotationRules={"AutomaticallyAfterDays": 10}, RotateImmediately=False
    )
    assert "VersionId" not in response
    meta = describe(service)
    assert meta["RotationEnabled"] is True
    assert meta["RotationLambdaARN"] == FUNCTION
    assert meta["RotationRules"] == {"AutomaticallyAfterDays": 10}
    # Ten days on, across Feb 29; the date is the last second of that day's window.
    assert meta["NextRotationDate"] == at("2024-03-01T23:59:59")
    assert "LastRotatedDate" not in meta
    assert set(meta["VersionIdsToStages"]) == {secret["VersionId"]}


def test_a_cron_schedule_with_a_window(service, secret):
    # T0 is Tuesday 09:00: today's 16:00 window is still ahead, and lasts three hours.
    rotate(
        service,
        RotationRules={"ScheduleExpression": "cron(0 16 ? * TUE *)", "Duration": "3h"},
        RotateImmediately=False,
    )
    meta = describe(service)
    assert meta["NextRotationDate"] == at("2024-02-20T18:59:59")
    assert meta["RotationRules"]["ScheduleExpression"] == "cron(0 16 ? * TUE *)"
    assert meta["RotationRules"]["Duration"] == "3h"


def test_a_rotation_that_succeeds_sets_the_dates_from_when_it_finished(service, clock, secret):
    response = rotate(
        service, RotationRules={"AutomaticallyAfterDays": 10}, ClientRequestToken=TOKEN
    )
    assert response["VersionId"] == TOKEN
    clock.advance(2 * DAY)
    play_the_function(service, TOKEN, "v1")
    finish(service, TOKEN)
    meta = describe(service)
    assert meta["LastRotatedDate"] == T0 + 2 * DAY
    assert meta["NextRotationDate"] == at("2024-03-03T23:59:59")
    # The service removes AWSPENDING itself once the rotation is over.
    assert meta["VersionIdsToStages"] == {
        TOKEN: ["AWSCURRENT"],
        secret["VersionId"]: ["AWSPREVIOUS"],
    }
    assert service.call("GetSecretValue", {"SecretId": "s"})["SecretString"] == "v1"


def test_a_manual_put_counts_as_a_rotation_for_the_schedule(service, clock, secret):
    rotate(service, RotationRules={"AutomaticallyAfterDays": 10}, RotateImmediately=False)
    clock.advance(5 * DAY)
    service.call(
        "PutSecretValue",
        {"SecretId": "s", "SecretString": "by hand", "ClientRequestToken": "m" * 32},
    )
    assert describe(service)["NextRotationDate"] == at("2024-03-06T23:59:59")
    clock.advance(DAY)
    service.call("UpdateSecret", {"SecretId": "s", "SecretString": "by hand again"})
    assert describe(service)["NextRotationDate"] == at("2024-03-07T23:59:59")


def test_a_put_that_does_not_become_current_leaves_the_schedule(service, clock, secret):
    rotate(service, RotationRules={"AutomaticallyAfterDays": 10}, RotateImmediately=False)
    clock.advance(5 * DAY)
    service.call(
        "PutSecretValue",
        {
            "SecretId": "s",
            "SecretString": "staged",
            "ClientRequestToken": "p" * 32,
            "VersionStages": ["blue"],
        },
    )
    assert describe(service)["NextRotationDate"] == at("2024-03-01T23:59:59")


def test_cancel_turns_rotation_off_and_drops_the_pending_version(service, secret):
    rotate(service, RotationRules={"AutomaticallyAfterDays": 10}, ClientRequestToken=TOKEN)
    response = service.call("CancelRotateSecret", {"SecretId": "s"})
    assert response["VersionId"] == TOKEN
    meta = describe(service)
    assert meta["RotationEnabled"] is False
    assert "NextRotationDate" not in meta
    assert meta["VersionIdsToStages"] == {secret["VersionId"]: ["AWSCURRENT"]}


# -- the pending version -------------------------------------------------------------


def test_the_pending_placeholder_has_no_value(service, secret):
    rotate(service, ClientRequestToken=TOKEN, RotationRules={"AutomaticallyAfterDays": 1})
    assert describe(service)["VersionIdsToStages"][TOKEN] == ["AWSPENDING"]
    with pytest.raises(errors.ResourceNotFound) as caught:
        service.call("GetSecretValue", {"SecretId": "s", "VersionStage": "AWSPENDING"})
    assert caught.value.message == errors.value_not_found_for_stage("AWSPENDING")
    with pytest.raises(errors.ResourceNotFound):
        service.call("GetSecretValue", {"SecretId": "s", "VersionId": TOKEN})
    assert service.call("GetSecretValue", {"SecretId": "s"})["SecretString"] == "v0"


def test_an_unfinished_rotation_blocks_the_next_one(service, secret):
    rotate(service, ClientRequestToken=TOKEN, RotationRules={"AutomaticallyAfterDays": 1})
    service.rotation_requests.take()
    with pytest.raises(errors.InvalidRequest) as caught:
        rotate(service, ClientRequestToken="x" * 32)
    assert caught.value.message == errors.ROTATION_IN_PROGRESS
    assert service.rotation_requests.take().rotate == frozenset()


def test_no_function_no_rotation(service, secret):
    with pytest.raises(errors.InvalidRequest) as caught:
        service.call("RotateSecret", {"SecretId": "s"})
    assert caught.value.message == errors.NO_ROTATION_FUNCTION
    assert service.rotation_requests.take().rotate == frozenset()
    assert "RotationEnabled" not in describe(service)


# -- requests to the scheduler -------------------------------------------------------


def test_rotate_now_asks_for_a_rotation_and_later_asks_for_a_test(service, secret):
    rotate(service, RotationRules={"AutomaticallyAfterDays": 10})
    requested = service.rotation_requests.take()
    assert requested.rotate == {secret["ARN"]}
    assert requested.test == frozenset()
    assert service.rotation_requests.take().rotate == frozenset()  # taken once

    service.call("CreateSecret", {"Name": "t", "SecretString": "v"})
    later = rotate(
        service, "t", RotationRules={"AutomaticallyAfterDays": 10}, RotateImmediately=False
    )
    requested = service.rotation_requests.take()
    assert requested.test == {later["ARN"]}
    assert requested.rotate == frozenset()


class SeenFromAnotherConnection(RotationRequests):
    """Records, when a rotation is requested, what a second connection to the store sees:
    the scheduler may run on another thread, or another node, and must find the change."""

    def __init__(self, database) -> None:
        super().__init__()
        self.observer = SQLiteStorage(database)
        self.seen: list[bytes | None] = []

    def rotate(self, arn: str) -> None:
        stored = self.observer.load_by_arn(arn)
        self.seen.append(stored.document if stored else None)
        super().rotate(arn)


@pytest.fixture
def watched(storage, clock, tmp_path):
    requests = SeenFromAnotherConnection(tmp_path / "data" / DATABASE_FILE_NAME)
    service = SdkService(
        storage, clock=clock, rotation_requests=requests, knows_function=lambda n: n == FUNCTION
    )
    yield service, requests
    requests.observer.close()


def test_a_rotation_is_requested_only_once_its_change_is_committed(watched):
    service, requests = watched
    service.call("CreateSecret", {"Name": "s", "SecretString": "v0"})
    rotate(service, ClientRequestToken=TOKEN)
    (document,) = requests.seen
    assert document is not None and TOKEN.encode() in document


def test_inside_a_group_commit_the_request_waits_for_the_end_of_the_block(watched):
    service, requests = watched
    created = service.call("CreateSecret", {"Name": "s", "SecretString": "v0"})
    with service.group_commit():
        rotate(service, ClientRequestToken=TOKEN)
        assert requests.take().rotate == frozenset()
        assert requests.seen == []
        assert TOKEN.encode() not in requests.observer.load_by_arn(created["ARN"]).document
    assert requests.take().rotate == {created["ARN"]}
    (document,) = requests.seen
    assert TOKEN.encode() in document


def test_a_group_that_fails_requests_nothing_and_keeps_nothing(watched):
    service, requests = watched
    service.call("CreateSecret", {"Name": "s", "SecretString": "v0"})
    with pytest.raises(RuntimeError), service.group_commit():
        rotate(service, ClientRequestToken=TOKEN)
        raise RuntimeError("a later write in the group failed")
    assert requests.take().rotate == frozenset()
    assert requests.seen == []
    meta = describe(service)
    assert "RotationEnabled" not in meta
    assert TOKEN not in meta["VersionIdsToStages"]
