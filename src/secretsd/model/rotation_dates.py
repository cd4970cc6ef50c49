"""Rotation dates of a secret: the next rotation and how long a started one is retried."""

from __future__ import annotations

from datetime import UTC, datetime

from secretsd.model import errors
from secretsd.model.rotation import pending_rotation
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


def rotation_attention(secret: Secret) -> float | None:
    """The earliest moment the scheduler's ``plan`` can act on ``secret``; None for never.

    Stores index this so that each tick reads only the secrets it may act on. It errs
    early, never late: ``plan`` decides, this only spares it the secrets it would pass over.
    """
    if not secret.rotation_enabled or secret.scheduled_for_deletion:
        return None
    if secret.rotation_token is not None or pending_rotation(secret) is not None:
        # A rotation in progress resumes while retried or in a later window: look each tick.
        return 0.0
    if not secret.rotation_rules:
        return None
    try:
        rules = parse_rotation_rules(secret.rotation_rules)
    except errors.SecretsManagerError:
        return None  # ``plan`` cannot read them either
    base = secret.rotation_base if secret.rotation_base is not None else secret.created
    # A start is due in a window that opened after ``base``: the first such opens here.
    return rules.next_window(_datetime(base)).start.timestamp()


def _datetime(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
