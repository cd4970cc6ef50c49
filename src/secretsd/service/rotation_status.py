"""How rotations stand, for operators: one secret's (the DescribeRotation extension), the
counts the metrics show, and whether the store and key answer (the health check).

DescribeRotation is not an AWS operation: AWS shows a failing rotation only in the rotation
function's logs. It is what ``secretsd status`` asks for each rotation in progress; it reads
like DescribeSecret and needs the same rights.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from secretsd.model.rotation_state import (
    RECENT_EVENTS,
    RotationState,
    decode_events,
    rotation_state,
    rotation_token,
)
from secretsd.model.secret import Secret
from secretsd.store.base import Storage, StorageError, StoredSecret
from secretsd.store.keys import MasterKeyError, WrongMasterKey

from . import params

log = logging.getLogger("secretsd.service")

Body = dict[str, Any]

STORE_UNREACHABLE = "the store does not answer"
KEY_UNAVAILABLE = "the master key is not available"


@dataclass(frozen=True)
class RotationCounts:
    in_progress: int = 0
    failing: int = 0
    overdue: int = 0


def describe_state(secret: Secret, state: RotationState) -> Body:
    fields: list[tuple[str, Any]] = [
        ("ARN", secret.arn),
        ("Name", secret.name),
        ("RotationEnabled", state.enabled),
        ("Condition", state.condition),
        ("InProgress", state.in_progress),
        ("Overdue", state.overdue),
        ("PendingVersionId", state.token),
        ("RotationStartedDate", state.started),
        ("LastRotatedDate", state.last_rotated),
        ("NextRotationDate", state.next_rotation),
    ]
    if state.failure is not None:
        fields += [
            ("FailingSinceDate", state.failure.since),
            ("LastFailureDate", state.failure.at),
            ("FailedStep", state.failure.step),
            ("LastError", state.failure.error),
        ]
    return {key: value for key, value in fields if value is not None}


class RotationStatusOperations:
    """Mixed into ``SecretsService``; uses its store, clock and readers."""

    storage: Storage
    clock: Callable[[], float]
    read: Callable[[str], tuple[Secret, int]]
    readable_secrets: Callable[[Iterable[StoredSecret]], Iterable[Secret]]

    def rotation_state(self, secret: Secret, now: float) -> RotationState:
        """Where the rotation of ``secret`` stands; reads its history only while one is in
        progress (only then can it be failing)."""
        events: list[tuple[float, dict]] = []
        if rotation_token(secret) is not None:
            events = decode_events(self.storage.read_events(secret.arn, RECENT_EVENTS))
        return rotation_state(secret, events, now)

    def describe_rotation(self, body: Body) -> Body:
        secret, _ = self.read(params.secret_id(body))
        return describe_state(secret, self.rotation_state(secret, self.clock()))

    def rotation_counts(self) -> RotationCounts:
        """Rotations in progress, failing and overdue now. Only the secrets the store's
        index names as needing the scheduler can be any of these (an overdue rotation's
        window opened before now), so this reads those, not every secret."""
        now = self.clock()
        in_progress = failing = overdue = 0
        for secret in self.readable_secrets(self.storage.rotation_candidates(now)):
            state = self.rotation_state(secret, now)
            in_progress += state.in_progress
            failing += state.failing
            overdue += state.overdue
        return RotationCounts(in_progress, failing, overdue)

    def last_rotations(self) -> list[tuple[str, float]]:
        """``(name, last successful rotation)`` of every secret that has rotated: reads
        every document, so only an operator who asked for it pays for it."""
        return [
            (secret.name, secret.last_rotated)
            for secret in self.readable_secrets(self.storage.iter_secrets())
            if secret.last_rotated is not None and not secret.scheduled_for_deletion
        ]

    # What the last health check found: the log says when it changes, not at every probe.
    _health_problem: str | None = None

    def health(self) -> str | None:
        """None when the store answers and values can be sealed; else what is wrong, in
        words fit for an unauthenticated caller (the details go to the log)."""
        problem = None
        try:
            self.storage.check()
        except (WrongMasterKey, MasterKeyError) as exc:
            problem, detail = KEY_UNAVAILABLE, str(exc)
        except StorageError as exc:
            problem, detail = STORE_UNREACHABLE, str(exc)
        if problem != self._health_problem:
            if problem is None:
                log.info("health check: the store answers again")
            else:
                log.warning("health check failed: %s", detail)
            self._health_problem = problem
        return problem
