"""Runs one rotation: the four steps of the function, then the service's own finish.

A function acts with the least it needs, as a Lambda function with a narrow execution role
would: each invocation gets a key of its own from ``SessionKeys``, allowed only the four
steps' operations on the secret being rotated (and reading the master secret its value
names, for alternating users), revoked when the invocation returns.

Each attempt leaves a trail in the secret's history (started, each step with its duration,
the failure with its error text, success), so that someone looking at a stuck rotation sees
which step failed and why. Error texts are scrubbed of the secret's values before they are
stored: a function that puts a password into an exception message does not leak it here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from secretsd.model import rotation, versions
from secretsd.model.policy import parse_policy
from secretsd.model.rotation_dates import refresh_next_rotation
from secretsd.model.rotation_state import RECENT_EVENTS, decode_events, failing_since
from secretsd.model.secret import AWSCURRENT, AWSPENDING, Secret
from secretsd.rotation.functions.common import service_environment
from secretsd.service import Edit, SecretsService
from secretsd.service.audit_trail import AuditTrail
from secretsd.service.counters import RotationCounters
from secretsd.service.sessions import SessionKeys

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
ROLE = "secretsd-rotation"
# What the four steps call on the secret they rotate, and on the master secret.
SECRET_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
)
MASTER_ACTIONS = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue")


@dataclass
class InvocationContext:
    """The few members of a Lambda context that functions look at."""

    function_name: str
    aws_request_id: str
    deadline: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def _session_name(name: str) -> str:
    return ("rotation-" + re.sub(r"[^\w+=,.@-]", "-", name))[:64]


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
        sessions: SessionKeys | None = None,
    ) -> None:
        self.service = service
        # Attempts and step durations, for the server's metrics.
        self.counters = counters or RotationCounters()
        # Each step also goes on the audit trail, before the next one starts: a rotation
        # whose steps cannot be recorded stops (the trail raises) and is retried later.
        self.audit = audit
        # Where invocations get keys of their own; None leaves them the environment's key.
        self.sessions = sessions
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
        with self._credentials(arn) as environment, service_environment(environment):
            handler(event, context)

    def _failing_since(self, arn: str, token: str) -> float:
        """When rotation ``token`` first failed, for the failure about to be recorded: the
        failure before it carries the date forward (see ``model.rotation_state``)."""
        events = decode_events(self.service.storage.read_events(arn, RECENT_EVENTS))
        return failing_since(events, token, self.clock())

    @contextlib.contextmanager
    def _credentials(self, arn: str) -> Iterator[Mapping[str, str]]:
        """The environment of one invocation: a key allowed only what the steps need."""
        if self.sessions is None:
            yield self.environment
            return
        secret, _ = self.service.load(arn)
        key_id, secret_key = self.sessions.issue(
            ROLE, _session_name(secret.name), [parse_policy(self.policy_for(secret))]
        )
        try:
            yield {
                **self.environment,
                "AWS_ACCESS_KEY_ID": key_id,
                "AWS_SECRET_ACCESS_KEY": secret_key,
            }
        finally:
            self.sessions.revoke(key_id)

    def policy_for(self, secret: Secret) -> str:
        """The rotation role's policy for ``secret``: its four steps, a random password, and
        reading the master secret its current value names (``masterarn``), if any."""
        statements: list[dict[str, Any]] = [
            {"Effect": "Allow", "Action": list(SECRET_ACTIONS), "Resource": secret.arn},
            {"Effect": "Allow", "Action": "secretsmanager:GetRandomPassword", "Resource": "*"},
        ]
        master = self._master(secret)
        if master is not None:
            statements.append(
                {"Effect": "Allow", "Action": list(MASTER_ACTIONS), "Resource": master}
            )
        return json.dumps({"Version": "2012-10-17", "Statement": statements})

    def _master(self, secret: Secret) -> str | None:
        current = secret.holder(AWSCURRENT)
        if current is None:
            return None
        value = self.service.storage.read_value(secret.arn, current.version_id)
        if value is None or value[:1] != b"S":
            return None
        try:
            document = json.loads(value[1:])
        except ValueError:
            return None
        named = document.get("masterarn") if isinstance(document, dict) else None
        if not isinstance(named, str) or not named:
            return None
        master = self.service.find(named)
        # A master that doesn't exist is allowed by the name given: the step fails as it
        # would on AWS, with ResourceNotFound rather than AccessDenied.
        return master.arn if master is not None else named

    def _step_failed(self, arn: str, token: str, step: str, exc: Exception, started: float) -> None:
        seconds = time.monotonic() - started
        self.counters.step(step, "failed", seconds)
        current, _ = self.service.load(arn)
        declared = self.registry.secret_fields(current.rotation_lambda_arn)
        message = scrub(f"{type(exc).__name__}: {exc}", self._values(current), declared)
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
