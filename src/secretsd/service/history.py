"""A secret's rotation history as the layers above read it: events, oldest first.

The orchestrator records each attempt, step and outcome as a JSON object; readers get them
decoded, with the time they were recorded as ``time`` (seconds since the epoch). An event
that can't be decoded is skipped rather than failing the whole history.
"""

from __future__ import annotations

from typing import Any

from secretsd.model.rotation_state import decode_events

from .secrets import SecretsService


def rotation_events(service: SecretsService, arn: str, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` events of the secret ``arn``, oldest first."""
    return [
        {**event, "time": at}
        for at, event in decode_events(service.storage.read_events(arn, limit))
    ]
