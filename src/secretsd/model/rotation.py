"""The service's side of managed rotation, as pure functions over a ``Secret``.

Theory of operation. RotateSecret records the rotation settings and, to rotate now, adds a
*placeholder* version: id = the ClientRequestToken, label AWSPENDING, no value. The rotation
function fills it in (createSecret), sets it in the database (setSecret), tests it
(testSecret) and moves AWSCURRENT onto it (finishSecret); then the service removes AWSPENDING
and records the dates. ``rotation_token`` names the rotation in progress until it succeeds
or is cancelled; a server that restarts finds it there and runs the same rotation again with
the same token, which every step of a well-behaved function tolerates.
"""

from __future__ import annotations

from typing import Any

from . import errors, versions
from .secret import AWSCURRENT, AWSPENDING, Secret


def pending_rotation(secret: Secret) -> str | None:
    """The version id of an unfinished rotation: AWSPENDING on a version that is not current."""
    pending = secret.holder(AWSPENDING)
    if pending is None or AWSCURRENT in pending.stages:
        return None
    return pending.version_id


def begin_rotation(
    secret: Secret,
    token: str,
    now: float,
    *,
    function_arn: str | None,
    rules: dict[str, Any] | None,
    immediately: bool,
) -> list[str]:
    """Apply RotateSecret; return version ids purged by adding the placeholder."""
    if secret.scheduled_for_deletion:
        raise errors.InvalidRequest(errors.MARKED_FOR_DELETION)
    in_progress = pending_rotation(secret)
    if in_progress is not None and in_progress != token:
        raise errors.InvalidRequest(errors.ROTATION_IN_PROGRESS)
    if function_arn is None and secret.rotation_lambda_arn is None:
        raise errors.InvalidRequest(errors.NO_ROTATION_FUNCTION)
    if function_arn is not None:
        secret.rotation_lambda_arn = function_arn
    if rules is not None:
        secret.rotation_rules = rules
    if not secret.rotation_enabled:
        secret.rotation_base = now
    secret.rotation_enabled = True
    secret.last_changed = now
    if not immediately or in_progress == token:
        return []
    if token in secret.versions:
        raise errors.ResourceExists(
            f"A version with the ClientRequestToken {token} already exists for this secret."
        )
    secret.rotation_token = token
    return versions.add_version(secret, token, now, [AWSPENDING], has_value=False)


def complete_rotation(secret: Secret, token: str, now: float) -> None:
    """After finishSecret: AWSCURRENT must be on the token's version; AWSPENDING goes."""
    version = secret.versions.get(token)
    if version is None or AWSCURRENT not in version.stages:
        raise errors.InvalidRequest(
            "The rotation function finished without moving AWSCURRENT to the new version."
        )
    if AWSPENDING in version.stages:
        version.stages.remove(AWSPENDING)
    secret.last_rotated = now
    secret.rotation_base = now
    secret.rotation_token = None
    secret.rotation_retry_until = None
    secret.last_changed = now


def cancel_rotation(secret: Secret, now: float) -> str | None:
    """CancelRotateSecret: rotation off, an unfinished AWSPENDING removed; its token returned."""
    pending = pending_rotation(secret)
    if pending is not None:
        versions.detach(secret, AWSPENDING, pending)
    secret.rotation_enabled = False
    secret.rotation_token = None
    secret.rotation_retry_until = None
    secret.last_changed = now
    return pending
