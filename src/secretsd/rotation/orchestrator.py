"""Runs one rotation: the four steps of the function, then the service's own finish.

Each attempt leaves a trail in the secret's history (started, each step with its duration,
the failure with its error text, success), so that someone looking at a stuck rotation sees
which step failed and why. Error texts are scrubbed of the secret's values before they are
stored: a function that puts a password into an exception message does not leak it here.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from secretsd.model import rotation, versions
from secretsd.model.rotation_dates import refresh_next_rotation
from secretsd.model.rotation_state import RECENT_EVENTS, decode_events, failing_since
from secretsd.model.secret import AWSCURRENT, AWSPENDING, Secret
from secretsd.rotation.functions.common import service_environment
from secretsd.service import Edit, SecretsService
from secretsd.service.audit_trail import AuditTrail
from secretsd.service.counters import RotationCounters

from .redaction import scrub
from .registry import FunctionRegistry, function_name

log = logging.getLogger("secretsd.rotation")

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
# (kind, outcome) of a history event -> the audit trail's eventName. CloudTrail's own names
# for the attempt (RotationStarted, RotationSucceeded, RotationFailed); steps are ours.
_AUDIT_EVENTS = {
    ("attempt", "started"): "RotationStarted",
    ("attempt", "succeeded"): "RotationSucceeded",
    ("attempt", "failed"): "RotationFailed",
    ("step", "ok"): "RotationStepSucceeded",
    ("step", "failed"): "RotationStepFailed",
    ("test", "ok"): "RotationStepSucceeded",
    ("test", "skipped"): "RotationStepFailed",
}


@dataclass
class InvocationContext:
    """The few members of a Lambda context that functions look at."""

    function_name: str
    aws_request_id: str
    deadline: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class Rotator:
    def __init__(
        self,
        service: SecretsService,
        registry: FunctionRegistry,
        *,
        clock: Callable[[], float] = time.time,
        step_timeout: float = 300.0,
        environment: Mapping[str, str] | None = None,
        counters: RotationCounters | None = None,
        audit: AuditTrail | None = None,
    ) -> None:
        self.service = service
        # Attempts and step durations, for the server's metrics.
        self.counters = counters or RotationCounters()
        # Each step also goes on the audit trail, before the next one starts: a rotation
        # whose steps cannot be recorded stops (the trail raises) and is retried later.
        self.audit = audit
        self.registry = registry
        # What a function needs to reach this service (endpoint, key, region), as Lambda's
        # environment would give it; None leaves functions to the process environment.
        self.environment = dict(environment or {})
        self.clock = clock
        self.step_timeout = step_timeout

    def record(self, arn: str, **event: Any) -> None:
        at = self.clock()
        self.service.storage.append_event(arn, at, json.dumps(event).encode())
        if self.audit is not None:
            name = _AUDIT_EVENTS[event["kind"], event["outcome"]]
            self.audit.record_blocking(self.audit.service_event(name, arn, **event))

    def _values(self, secret: Secret) -> list[bytes]:
        found = []
        for version in secret.versions.values():
            if version.stages and version.has_value:
                value = self.service.storage.read_value(secret.arn, version.version_id)
                if value is not None:
                    found.append(value)
        return found

    def _invoke(self, arn: str, token: str, step: str, function: str, rotation_token: str) -> None:
        handler = self.registry.resolve(function)
        context = InvocationContext(
            function, str(uuid.uuid4()), time.monotonic() + self.step_timeout
        )
        # As AWS's event: RotationToken is the same for the steps of one attempt, and a
        # function may hand it back to PutSecretValue.
        event = {
            "Step": step,
            "SecretId": arn,
            "ClientRequestToken": token,
            "RotationToken": rotation_token,
        }
        with service_environment(self.environment):
            handler(event, context)

    def _failing_since(self, arn: str, token: str) -> float:
        """When rotation ``token`` first failed, for the failure about to be recorded: the
        failure before it carries the date forward (see ``model.rotation_state``)."""
        events = decode_events(self.service.storage.read_events(arn, RECENT_EVENTS))
        return failing_since(events, token, self.clock())

    def _step_failed(self, arn: str, token: str, step: str, exc: Exception, started: float) -> None:
        seconds = time.monotonic() - started
        self.counters.step(step, "failed", seconds)
        current, _ = self.service.load(arn)
        message = scrub(f"{type(exc).__name__}: {exc}", self._values(current))
        self.record(
            arn,
            kind="step",
            token=token,
            step=step,
            outcome="failed",
            error=message,
            duration_ms=round(seconds * 1000, 1),
            failing_since=self._failing_since(arn, token),
        )
        log.warning(
            "rotation step failed",
            extra={"secret": arn, "token": token, "step": step, "error": message},
        )

    def test_configuration(self, arn: str) -> bool:
        """RotateImmediately=false: testSecret on a temporary AWSPENDING copy of AWSCURRENT."""
        secret, _ = self.service.load(arn)
        function = secret.rotation_lambda_arn or ""
        current = secret.holder(AWSCURRENT)
        if current is None:
            self.record(arn, kind="test", outcome="skipped", error="no AWSCURRENT value")
            return False
        value = self.service.storage.read_value(arn, current.version_id)
        token = str(uuid.uuid4())

        def add(secret: Secret, now: float) -> Edit:
            dropped = versions.add_version(secret, token, now, [AWSPENDING])
            return Edit(put_values={token: value or b""}, drop_values=dropped)

        def remove(secret: Secret, now: float) -> None:
            if token in secret.versions:
                versions.detach(secret, AWSPENDING, token)

        self.service.edit(arn, add)
        started = time.monotonic()
        try:
            self._invoke(arn, token, "testSecret", function, str(uuid.uuid4()))
        except Exception as exc:
            self._step_failed(arn, token, "testSecret", exc, started)
            return False
        finally:
            self.service.edit(arn, remove)
        self.record(arn, kind="test", token=token, step="testSecret", outcome="ok")
        return True

    def rotate(self, arn: str, token: str) -> bool:
        """Run the rotation ``token`` of ``arn`` to the end; True when it succeeded."""
        secret, _ = self.service.load(arn)
        function = secret.rotation_lambda_arn or ""
        self.record(arn, kind="attempt", token=token, function=function, outcome="started")
        started = self.clock()
        rotation_token = str(uuid.uuid4())
        for step in STEPS:
            step_started = time.monotonic()
            try:
                self._invoke(arn, token, step, function, rotation_token)
            except Exception as exc:
                self._step_failed(arn, token, step, exc, step_started)
                self.counters.attempt(function_name(function), "failed")
                return False
            seconds = time.monotonic() - step_started
            self.counters.step(step, "ok", seconds)
            self.record(
                arn,
                kind="step",
                token=token,
                step=step,
                outcome="ok",
                duration_ms=round(seconds * 1000, 1),
            )

        def finish(secret: Secret, now: float) -> None:
            rotation.complete_rotation(secret, token, now)
            refresh_next_rotation(secret, now)

        try:
            self.service.edit(arn, finish)
        except Exception as exc:
            self.record(
                arn,
                kind="attempt",
                token=token,
                outcome="failed",
                error=str(exc),
                failing_since=self._failing_since(arn, token),
            )
            self.counters.attempt(function_name(function), "failed")
            return False
        self.counters.attempt(function_name(function), "succeeded")
        self.record(
            arn,
            kind="attempt",
            token=token,
            outcome="succeeded",
            duration_ms=round((self.clock() - started) * 1000, 1),
        )
        log.info("rotation succeeded", extra={"secret": arn, "token": token})
        return True
