"""Runs one rotation: the four steps of the function, then the service's own finish.

Each attempt leaves a trail in the secret's history (started, each step with its duration,
the failure with its error text, success), so that someone looking at a stuck rotation sees
which step failed and why. Error texts are scrubbed of the secret's values before they are
stored: a function that puts a password into an exception message does not leak it here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from secretsd.api.service import SecretsService
from secretsd.model import rotation
from secretsd.model.secret import Secret
from secretsd.rotation.dates import refresh_next_rotation

from .registry import FunctionRegistry

log = logging.getLogger("secretsd.rotation")

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
REDACTED = "********"
MIN_REDACTED_LENGTH = 4


@dataclass
class InvocationContext:
    """The few members of a Lambda context that functions look at."""

    function_name: str
    aws_request_id: str
    deadline: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def scrub(text: str, secrets: Iterable[bytes]) -> str:
    """``text`` with every secret value, and every string field inside JSON values, masked."""
    words: set[str] = set()
    for stored in secrets:
        plain = stored[1:].decode(errors="replace") if stored[:1] == b"S" else ""
        if not plain:
            continue
        words.add(plain)
        with contextlib.suppress(ValueError):
            words.update(_strings(json.loads(plain)))
    for word in sorted(words, key=len, reverse=True):
        if len(word) >= MIN_REDACTED_LENGTH:
            text = text.replace(word, REDACTED)
    return text


class Rotator:
    def __init__(
        self,
        service: SecretsService,
        registry: FunctionRegistry,
        *,
        clock: Callable[[], float] = time.time,
        step_timeout: float = 300.0,
    ) -> None:
        self.service = service
        self.registry = registry
        self.clock = clock
        self.step_timeout = step_timeout

    def record(self, arn: str, **event: Any) -> None:
        at = self.clock()
        self.service.storage.append_event(arn, at, json.dumps(event).encode())

    def _values(self, secret: Secret) -> list[bytes]:
        found = []
        for version in secret.versions.values():
            if version.stages and version.has_value:
                value = self.service.storage.read_value(secret.arn, version.version_id)
                if value is not None:
                    found.append(value)
        return found

    def rotate(self, arn: str, token: str) -> bool:
        """Run the rotation ``token`` of ``arn`` to the end; True when it succeeded."""
        secret, _ = self.service.load(arn)
        function = secret.rotation_lambda_arn or ""
        self.record(arn, kind="attempt", token=token, function=function, outcome="started")
        started = self.clock()
        for step in STEPS:
            step_started = time.monotonic()
            try:
                handler = self.registry.resolve(function)
                context = InvocationContext(
                    function, str(uuid.uuid4()), time.monotonic() + self.step_timeout
                )
                handler({"Step": step, "SecretId": arn, "ClientRequestToken": token}, context)
            except Exception as exc:
                current, _ = self.service.load(arn)
                message = scrub(f"{type(exc).__name__}: {exc}", self._values(current))
                self.record(
                    arn,
                    kind="step",
                    token=token,
                    step=step,
                    outcome="failed",
                    error=message,
                    duration_ms=round((time.monotonic() - step_started) * 1000, 1),
                )
                log.warning(
                    "rotation failed",
                    extra={"secret": arn, "token": token, "step": step, "error": message},
                )
                return False
            self.record(
                arn,
                kind="step",
                token=token,
                step=step,
                outcome="ok",
                duration_ms=round((time.monotonic() - step_started) * 1000, 1),
            )

        def finish(secret: Secret, now: float) -> None:
            rotation.complete_rotation(secret, token, now)
            refresh_next_rotation(secret, now)

        try:
            self.service.edit(arn, finish)
        except Exception as exc:
            self.record(arn, kind="attempt", token=token, outcome="failed", error=str(exc))
            return False
        self.record(
            arn,
            kind="attempt",
            token=token,
            outcome="succeeded",
            duration_ms=round((self.clock() - started) * 1000, 1),
        )
        log.info("rotation succeeded", extra={"secret": arn, "token": token})
        return True
