"""Rotation dates of a secret: the next rotation and how long a started one is retried."""

from __future__ import annotations

from datetime import UTC, datetime

from secretsd.model.schedule import parse_rotation_rules
from secretsd.model.secret import Secret

RETRY_AT_LEAST_SECONDS = 3600.0


def retry_deadline(secret: Secret, now: float) -> float:
    """Until when a rotation started now is retried: its window, and at least an hour."""
    end = now + RETRY_AT_LEAST_SECONDS
    if secret.rotation_rules:
        rules = parse_rotation_rules(secret.rotation_rules)
        window_end = rules.window_end(_datetime(now)).timestamp()
        end = max(end, window_end)
    return end


def refresh_next_rotation(secret: Secret, now: float) -> None:
    if not secret.rotation_enabled or not secret.rotation_rules:
        secret.next_rotation = None
        return
    rules = parse_rotation_rules(secret.rotation_rules)
    base = secret.rotation_base if secret.rotation_base is not None else secret.created
    secret.next_rotation = rules.next_rotation_date(_datetime(base), _datetime(now)).timestamp()


def _datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
