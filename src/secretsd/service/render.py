"""Secrets as the service returns them: only members that have values, dates as epoch floats."""

from __future__ import annotations

from typing import Any

from secretsd.model import kms
from secretsd.model.schedule import parse_rotation_rules
from secretsd.model.secret import Secret, Version

from .params import render_value

Body = dict[str, Any]


def _metadata(secret: Secret) -> Body:
    fields: list[tuple[str, Any]] = [
        ("ARN", secret.arn),
        ("Name", secret.name),
        # AWS omits an empty description as it omits an absent one.
        ("Description", secret.description or None),
        ("KmsKeyId", secret.kms_key_id),
        ("RotationEnabled", secret.rotation_enabled),
        ("RotationLambdaARN", secret.rotation_lambda_arn),
        ("RotationRules", _rules(secret)),
        ("LastRotatedDate", secret.last_rotated),
        ("LastChangedDate", secret.last_changed),
        ("LastAccessedDate", secret.last_accessed),
        ("DeletedDate", secret.deleted_date),
        ("NextRotationDate", secret.next_rotation if secret.rotation_enabled else None),
        ("Tags", secret.tags if secret.tags or secret.tagged else None),
    ]
    return {key: value for key, value in fields if value is not None}


def _rules(secret: Secret) -> dict[str, Any] | None:
    if not secret.rotation_rules:
        return None
    return parse_rotation_rules(secret.rotation_rules).to_wire()


def _with_stages(secret: Secret, member: str) -> Body:
    body = _metadata(secret)
    staged = secret.staged_versions()
    if staged:
        body[member] = staged
    body["CreatedDate"] = secret.created
    return body


def describe(secret: Secret) -> Body:
    return _with_stages(secret, "VersionIdsToStages")


def list_entry(secret: Secret) -> Body:
    # ListSecrets names the same map differently.
    return _with_stages(secret, "SecretVersionsToStages")


def secret_value_entry(secret: Secret, version: Version, value: bytes) -> Body:
    body: Body = {"ARN": secret.arn, "Name": secret.name, "VersionId": version.version_id}
    body.update(render_value(value))
    body["VersionStages"] = list(version.stages)
    body["CreatedDate"] = version.created
    return body


def version_entry(secret: Secret, version: Version) -> Body:
    body: Body = {"VersionId": version.version_id}
    if version.stages:
        body["VersionStages"] = list(version.stages)
    if version.last_accessed is not None:
        body["LastAccessedDate"] = version.last_accessed
    body["KmsKeyIds"] = kms.version_keys(secret, version.version_id)
    body["CreatedDate"] = version.created
    return body
