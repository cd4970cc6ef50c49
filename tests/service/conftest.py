"""A service over a real encrypted SQLite store in tmp_path, with a clock the test moves.

The wire is not the point of these tests: they call the operations in process, so a
recovery window of seven days or a schedule of ten days takes no time at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from secretsd.model import errors
from secretsd.service import RotationRequests, SecretsService
from secretsd.store import Storage, open_storage

# A Tuesday at 09:00 UTC, in a leap year, so that month ends and Feb 29 are near at hand.
T0 = datetime(2024, 2, 20, 9, tzinfo=UTC).timestamp()
HOUR = 3600.0
DAY = 86400.0
FUNCTION = "secretsd-generic"


class FakeClock:
    """Epoch seconds that move only when the test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# The operations whose ClientRequestToken botocore's model marks idempotencyToken: every SDK
# fills it in, and the service refuses a request that makes a version without one.
FILLED_BY_SDKS = frozenset({"CreateSecret", "PutSecretValue", "UpdateSecret", "RotateSecret"})


class SdkService(SecretsService):
    """The service as an SDK's caller sees it: a missing ClientRequestToken is filled in
    with a fresh UUID, so tests about other things read as calls through boto3 do. What
    happens without a token is the API tests' business (tests/api/test_ops_protocol.py)."""

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        if operation in FILLED_BY_SDKS and body.get("ClientRequestToken") is None:
            body = {**body, "ClientRequestToken": str(uuid.uuid4())}
        return super().call(operation, body)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def storage(tmp_path) -> Iterator[Storage]:
    store = open_storage(tmp_path / "data", env={}, mode="create")
    yield store
    store.close()


@pytest.fixture
def service(storage: Storage, clock: FakeClock) -> SecretsService:
    return SdkService(
        storage,
        clock=clock,
        rotation_requests=RotationRequests(),
        knows_function=lambda name: name == FUNCTION,
    )


def fails_with(service: SecretsService, operation: str, body: dict[str, Any]) -> str:
    """The error code ``operation`` fails with; AssertionError when it succeeds."""
    try:
        response = service.call(operation, body)
    except errors.SecretsManagerError as exc:
        return exc.code
    raise AssertionError(f"{operation} succeeded: {response}")
