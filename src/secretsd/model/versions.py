"""Staging labels and versions: the rules of the real service, as pure functions.

Theory of operation. A label sits on at most one version of a secret; a version carries at
most 20 labels, and one with none is "deprecated". Every label move goes through
``attach``, which enforces exclusivity and the one coupling between labels: when
AWSCURRENT moves, AWSPREVIOUS moves to the version AWSCURRENT left. Operations mutate the
``Secret`` they are given; the caller (the service) decides whether to persist the result.
Nothing here reads a clock or draws random numbers: ``now`` and ids come in as arguments.
"""

from __future__ import annotations

from . import errors
from .secret import AWSCURRENT, AWSPENDING, AWSPREVIOUS, Secret, Version

MAX_STAGES_PER_VERSION = 20
MAX_DEPRECATED_KEPT = 100
PURGE_MIN_AGE_SECONDS = 24 * 3600


def attach(secret: Secret, stage: str, version_id: str) -> None:
    """Put ``stage`` on ``version_id``, taking it off any other version."""
    target = secret.versions[version_id]
    if stage in target.stages:
        return
    if len(target.stages) >= MAX_STAGES_PER_VERSION:
        raise errors.LimitExceeded(
            f"A version can have at most {MAX_STAGES_PER_VERSION} staging labels."
        )
    previous = secret.holder(stage)
    if previous is not None:
        previous.stages.remove(stage)
    target.stages.append(stage)
    if stage == AWSCURRENT and previous is not None and previous is not target:
        attach(secret, AWSPREVIOUS, previous.version_id)


def detach(secret: Secret, stage: str, version_id: str) -> None:
    version = secret.versions[version_id]
    if stage in version.stages:
        version.stages.remove(stage)


def add_version(
    secret: Secret,
    version_id: str,
    now: float,
    stages: list[str] | None,
    *,
    has_value: bool = True,
) -> list[str]:
    """Add a new version with ``stages`` (default AWSCURRENT); return purged version ids.

    The first version of a secret always gets AWSCURRENT, whatever the caller asked for.
    A version that held AWSCURRENT and AWSPENDING together loses both when the new version
    takes AWSCURRENT; ``attach`` alone, as UpdateSecretVersionStage uses it, keeps AWSPENDING.
    """
    if version_id in secret.versions:
        raise AssertionError("the service resolves an existing ClientRequestToken first")
    wanted = [AWSCURRENT] if stages is None else list(dict.fromkeys(stages))
    if len(wanted) > MAX_STAGES_PER_VERSION:
        raise errors.LimitExceeded(
            f"A version can have at most {MAX_STAGES_PER_VERSION} staging labels."
        )
    if secret.holder(AWSCURRENT) is None and AWSCURRENT not in wanted:
        wanted.insert(0, AWSCURRENT)
    left = secret.holder(AWSCURRENT)
    secret.versions[version_id] = Version(version_id, now, [], has_value=has_value)
    for stage in wanted:
        attach(secret, stage, version_id)
    if left is not None and AWSCURRENT not in left.stages and AWSPENDING in left.stages:
        # AWSPENDING beside AWSCURRENT is what a finished rotation leaves; AWS drops it when
        # a new version takes AWSCURRENT, so the old current is exactly AWSPREVIOUS.
        detach(secret, AWSPENDING, left.version_id)
    secret.last_changed = now
    return purge_deprecated(secret, now)


def purge_deprecated(secret: Secret, now: float) -> list[str]:
    """Drop the oldest deprecated versions past 100, sparing those younger than 24 hours."""
    deprecated = sorted(
        (v for v in secret.versions.values() if v.deprecated), key=lambda v: v.created
    )
    excess = len(deprecated) - MAX_DEPRECATED_KEPT
    dropped: list[str] = []
    for version in deprecated:
        if excess <= 0:
            break
        if now - version.created < PURGE_MIN_AGE_SECONDS:
            continue
        del secret.versions[version.version_id]
        dropped.append(version.version_id)
        excess -= 1
    return dropped


def update_version_stage(
    secret: Secret,
    stage: str,
    remove_from: str | None,
    move_to: str | None,
    now: float,
) -> None:
    """UpdateSecretVersionStage: move a label, or only remove it when ``move_to`` is absent."""
    for version_id in (remove_from, move_to):
        if version_id is not None and version_id not in secret.versions:
            raise errors.InvalidParameter(
                f"The version {version_id} doesn't exist for the secret {secret.name}."
            )
    current = secret.holder(stage)
    if remove_from is not None and (current is None or current.version_id != remove_from):
        raise errors.InvalidParameter(
            f"The staging label {stage} is not attached to the version {remove_from}, so you "
            "can't remove it."
        )
    if move_to is None:
        if remove_from is None:
            raise errors.InvalidParameter(
                "You must specify MoveToVersionId, RemoveFromVersionId, or both."
            )
        if stage == AWSCURRENT:
            raise errors.InvalidParameter(
                "You can't remove the staging label AWSCURRENT without moving it to another "
                "version (MoveToVersionId)."
            )
        detach(secret, stage, remove_from)
        secret.last_changed = now
        return
    if current is not None and current.version_id != move_to and remove_from is None:
        raise errors.InvalidParameter(
            f"The parameter RemoveFromVersionId can't be empty. Staging label {stage} is "
            f"currently attached to version {current.version_id}, so you must explicitly "
            "reference that version in RemoveFromVersionId."
        )
    attach(secret, stage, move_to)
    secret.last_changed = now


def select_version(secret: Secret, version_id: str | None, stage: str | None) -> Version:
    """The version GetSecretValue reads: by id, by label, both (must agree), or AWSCURRENT."""
    if version_id is not None:
        version = secret.versions.get(version_id)
        if version is None or not version.has_value:
            raise errors.ResourceNotFound(errors.value_not_found_for_version(version_id))
        if stage is not None and stage not in version.stages:
            raise errors.InvalidRequest(errors.STAGE_NOT_ON_VERSION)
        return version
    stage = stage or AWSCURRENT
    version = secret.holder(stage)
    if version is None or not version.has_value:
        raise errors.ResourceNotFound(errors.value_not_found_for_stage(stage))
    return version
