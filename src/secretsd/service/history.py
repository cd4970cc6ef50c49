"""A secret's rotation history as the layers above read it: events, oldest first.

The orchestrator records each attempt, step and outcome as a JSON object; readers get them
decoded, with the time they were recorded as ``time`` (seconds since the epoch). An event
that can't be decoded is skipped rather than failing the whole history.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .secrets import SecretsService

log = logging.getLogger("secretsd.service")


def rotation_events(service: SecretsService, arn: str, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` events of the secret ``arn``, oldest first."""
    events = []
    for at, raw in service.storage.read_events(arn, limit):
        try:
            event = json.loads(raw)
        except ValueError:
            log.warning("undecodable rotation event skipped", extra={"secret": arn})
            continue
        if isinstance(event, dict):
            events.append({**event, "time": at})
    return events
