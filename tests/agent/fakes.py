"""A fake Secrets Manager for cache tests: versions and stages in memory, calls recorded."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

from secretsd.agent.backend import BackendError

NOT_FOUND = ("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeSecretsManager:
    def __init__(self) -> None:
        self.secrets: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.failure: BackendError | None = None
        self.gate: asyncio.Event | None = None
        # One event per call, taken in call order: lets a test hold one call and not another.
        self.gates: list[asyncio.Event] = []
        # Read the secret when the call starts rather than when it returns, as a real
        # backend may: a write that lands while the call is held is not in its answer.
        self.read_at_start = False

    def put(self, name: str, value: str, stages: tuple[str, ...] = ("AWSCURRENT",)) -> str:
        secret = self.secrets.setdefault(name, {"versions": {}})
        version_id = str(uuid.uuid4())
        if "AWSCURRENT" in stages:
            for other in secret["versions"].values():
                if "AWSPREVIOUS" in other["stages"]:
                    other["stages"].remove("AWSPREVIOUS")
        for stage in stages:
            for other in secret["versions"].values():
                if stage in other["stages"]:
                    other["stages"].remove(stage)
                    if stage == "AWSCURRENT":
                        other["stages"].append("AWSPREVIOUS")
        secret["versions"][version_id] = {"value": value, "stages": list(stages)}
        return version_id

    def arn(self, name: str) -> str:
        return f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf"

    def _find(self, secret_id: str) -> tuple[str, dict[str, Any]]:
        for name, secret in self.secrets.items():
            if secret_id in (name, self.arn(name)):
                return name, secret
        raise BackendError(400, *NOT_FOUND, transient=False)

    async def _enter(self, operation: str, secret_id: str) -> None:
        self.calls.append((operation, secret_id))
        if self.gates:
            await self.gates.pop(0).wait()
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure

    async def get_secret_value(
        self, secret_id: str, version_id: str | None, version_stage: str | None
    ) -> dict[str, Any]:
        if self.read_at_start:
            try:
                answer = self._get(secret_id, version_id, version_stage)
            except BackendError as error:
                answer = error
            await self._enter("GetSecretValue", secret_id)
            if isinstance(answer, BackendError):
                raise answer
            return answer
        await self._enter("GetSecretValue", secret_id)
        return self._get(secret_id, version_id, version_stage)

    def _get(
        self, secret_id: str, version_id: str | None, version_stage: str | None
    ) -> dict[str, Any]:
        name, secret = self._find(secret_id)
        stage = version_stage or ("AWSCURRENT" if version_id is None else None)
        for vid, version in secret["versions"].items():
            if (version_id is None or vid == version_id) and (
                stage is None or stage in version["stages"]
            ):
                return {
                    "ARN": self.arn(name),
                    "Name": name,
                    "VersionId": vid,
                    "SecretString": version["value"],
                    "VersionStages": list(version["stages"]),
                    "CreatedDate": dt.datetime(2024, 1, 2, 3, 4, 5, 250000, dt.UTC),
                }
        raise BackendError(400, *NOT_FOUND, transient=False)

    async def describe_secret(self, secret_id: str) -> dict[str, Any]:
        await self._enter("DescribeSecret", secret_id)
        name, secret = self._find(secret_id)
        return {
            "ARN": self.arn(name),
            "Name": name,
            "VersionIdsToStages": {
                vid: list(v["stages"]) for vid, v in secret["versions"].items() if v["stages"]
            },
        }

    def count(self, operation: str | None = None) -> int:
        return sum(1 for op, _ in self.calls if operation in (None, op))

    def move_stage(self, name: str, stage: str, version_id: str) -> None:
        """Put ``stage`` on ``version_id`` (as finishSecret does with AWSCURRENT)."""
        versions = self.secrets[name]["versions"]
        for vid, version in versions.items():
            if stage in version["stages"] and vid != version_id:
                version["stages"].remove(stage)
                if stage == "AWSCURRENT":
                    version["stages"].append("AWSPREVIOUS")
        if stage not in versions[version_id]["stages"]:
            versions[version_id]["stages"].append(stage)
        if stage == "AWSCURRENT" and "AWSPENDING" in versions[version_id]["stages"]:
            versions[version_id]["stages"].remove("AWSPENDING")
