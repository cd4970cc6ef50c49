"""Rotation dates kept by the service, with a clock the test moves: no server, no sleeping."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from secretsd.service import SecretsService
from secretsd.store.sqlite import SQLiteStorage
from tests.service.conftest import SdkService

T0 = datetime(2024, 2, 20, 9, tzinfo=UTC).timestamp()
DAY = 86400.0


def service_at(tmp_path, now: list[float]) -> SecretsService:
    return SdkService(SQLiteStorage(tmp_path / "db"), clock=lambda: now[0])


def next_rotation_day(service: SecretsService, name: str) -> str:
    moment = service.describe_secret({"SecretId": name})["NextRotationDate"]
    return datetime.fromtimestamp(moment, UTC).date().isoformat()


def test_a_manual_change_of_the_current_value_restarts_the_schedule(tmp_path):
    now = [T0]
    service = service_at(tmp_path, now)
    service.call("CreateSecret", {"Name": "s", "SecretString": json.dumps({"api_key": "k"})})
    service.call(
        "RotateSecret",
        {
            "SecretId": "s",
            "RotationLambdaARN": "secretsd-generic",
            "RotationRules": {"AutomaticallyAfterDays": 10},
            "RotateImmediately": False,
        },
    )
    assert next_rotation_day(service, "s") == "2024-03-01"  # 10 days on, across Feb 29
    now[0] = T0 + 5 * DAY
    service.call(
        "PutSecretValue",
        {"SecretId": "s", "SecretString": "manual", "ClientRequestToken": "m" * 32},
    )
    assert next_rotation_day(service, "s") == "2024-03-06"


def test_a_value_staged_elsewhere_does_not_count(tmp_path):
    now = [T0]
    service = service_at(tmp_path, now)
    service.call("CreateSecret", {"Name": "s", "SecretString": "v"})
    service.call(
        "RotateSecret",
        {
            "SecretId": "s",
            "RotationLambdaARN": "secretsd-generic",
            "RotationRules": {"AutomaticallyAfterDays": 10},
            "RotateImmediately": False,
        },
    )
    now[0] = T0 + 5 * DAY
    service.call(
        "PutSecretValue",
        {
            "SecretId": "s",
            "SecretString": "staged",
            "ClientRequestToken": "p" * 32,
            "VersionStages": ["blue"],
        },
    )
    assert next_rotation_day(service, "s") == "2024-03-01"
