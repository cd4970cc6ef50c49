"""Where a secret's rotation stands: in progress, failing since when, overdue; pure.

Theory of operation. The secret's document says whether a rotation is in progress (its
token, or AWSPENDING on a version that is not current) and when the next one is due
(``next_rotation``: the last second of the window the rotation must happen in). Whether the
rotation in progress is failing, and since when, is in its history: the events the
orchestrator appends (``{"kind": "step", "outcome": "failed", "token": ..., ...}``). A
failure event carries ``failing_since``, the time of the first failure of the same
rotation, copied forward from the failure before it, so only the newest events need
reading, however long a rotation has been failing.

The same answer feeds ``secretsd status`` (over the API), the server's metrics and the
console, so "failing" and "overdue" mean one thing everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from .rotation import pending_rotation
from .secret import AWSPENDING, Secret

# Events read to find the newest failure: one attempt writes at most six.
RECENT_EVENTS = 24

FAILED = "failed"
SUCCEEDED = "succeeded"


@dataclass(frozen=True)
class RotationFailure:
    at: float
    since: float
    step: str | None
    error: str | None


@dataclass(frozen=True)
class RotationState:
    enabled: bool
    # The token (version id) of the rotation in progress, and when its version was made.
    token: str | None
    started: float | None
    # The newest failure of the rotation in progress, if it has failed.
    failure: RotationFailure | None
    overdue: bool
    last_rotated: float | None
    next_rotation: float | None

    @property
    def in_progress(self) -> bool:
        return self.token is not None

    @property
    def failing(self) -> bool:
        return self.failure is not None

    @property
    def condition(self) -> str:
        """One word for a badge or a table: the worst of what applies."""
        if self.failing:
            return "failing"
        if self.overdue:
            return "overdue"
        if self.in_progress:
            return "rotating"
        return "ok" if self.enabled else "disabled"


def decode_events(events: Iterable[tuple[float, bytes]]) -> list[tuple[float, dict]]:
    """Stored events, as ``Storage.read_events`` gives them, decoded; unreadable ones skipped."""
    decoded = []
    for at, raw in events:
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if isinstance(event, dict):
            decoded.append((at, event))
    return decoded


def is_failure(event: dict) -> bool:
    return event.get("outcome") == FAILED and event.get("kind") in ("step", "attempt")


def latest_failure(events: list[tuple[float, dict]], token: str) -> RotationFailure | None:
    """The newest failure of rotation ``token`` in ``events`` (oldest first), unless the
    rotation succeeded after it."""
    for at, event in reversed(events):
        if event.get("token") != token:
            continue
        if event.get("outcome") == SUCCEEDED:
            return None
        if is_failure(event):
            since = event.get("failing_since")
            return RotationFailure(
                at=at,
                since=float(since) if isinstance(since, int | float) else at,
                step=event.get("step"),
                error=event.get("error"),
            )
    return None


def failing_since(events: list[tuple[float, dict]], token: str, now: float) -> float:
    """What a failure of ``token`` recorded at ``now`` carries as ``failing_since``."""
    earlier = latest_failure(events, token)
    return now if earlier is None else earlier.since


def rotation_token(secret: Secret) -> str | None:
    return secret.rotation_token or pending_rotation(secret)


def rotation_state(secret: Secret, events: list[tuple[float, dict]], now: float) -> RotationState:
    """The rotation state of ``secret`` at ``now``; ``events`` are its newest (decoded)."""
    token = rotation_token(secret)
    started = None
    failure = None
    if token is not None:
        version = secret.versions.get(token)
        if version is not None and AWSPENDING in version.stages:
            started = version.created
        failure = latest_failure(events, token)
    enabled = bool(secret.rotation_enabled)
    active = enabled and not secret.scheduled_for_deletion
    overdue = (
        active
        and bool(secret.rotation_rules)
        and secret.next_rotation is not None
        and secret.next_rotation < now
    )
    return RotationState(
        enabled=enabled,
        token=token,
        started=started,
        failure=failure,
        overdue=overdue,
        last_rotated=secret.last_rotated,
        next_rotation=secret.next_rotation if active else None,
    )
