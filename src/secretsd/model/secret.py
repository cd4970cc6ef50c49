"""A secret, its versions, and the document that storage keeps for it.

The document is the secret's metadata as JSON: no secret value is ever part of it. Values
live beside it, one per version, behind the encryption layer.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

AWSCURRENT = "AWSCURRENT"
AWSPREVIOUS = "AWSPREVIOUS"
AWSPENDING = "AWSPENDING"

DOCUMENT_FORMAT = 1


@dataclass(slots=True)
class Version:
    version_id: str
    created: float
    stages: list[str] = field(default_factory=list)
    # The rotation placeholder (AWSPENDING created by RotateSecret) has no value until the
    # rotation function's createSecret step puts one.
    has_value: bool = True
    last_accessed: float | None = None

    @property
    def deprecated(self) -> bool:
        return not self.stages


@dataclass(slots=True)
class Secret:
    arn: str
    name: str
    created: float
    last_changed: float
    description: str | None = None
    kms_key_id: str | None = None
    tags: list[dict[str, str]] = field(default_factory=list)
    last_accessed: float | None = None
    deleted_date: float | None = None
    deletion_date: float | None = None
    rotation_enabled: bool | None = None
    rotation_lambda_arn: str | None = None
    rotation_rules: dict[str, Any] | None = None
    last_rotated: float | None = None
    next_rotation: float | None = None
    # When the schedule counts from: the last rotation, a manual change of AWSCURRENT, or
    # the moment rotation was configured.
    rotation_base: float | None = None
    # The rotation in progress (its token) and until when a failed attempt is retried.
    rotation_token: str | None = None
    rotation_retry_until: float | None = None
    versions: dict[str, Version] = field(default_factory=dict)

    @property
    def scheduled_for_deletion(self) -> bool:
        return self.deleted_date is not None

    def holder(self, stage: str) -> Version | None:
        """The version that carries ``stage``, if any."""
        for version in self.versions.values():
            if stage in version.stages:
                return version
        return None

    def staged_versions(self) -> dict[str, list[str]]:
        return {v.version_id: list(v.stages) for v in self.versions.values() if v.stages}

    def to_document(self) -> bytes:
        data = asdict(self)
        data["format"] = DOCUMENT_FORMAT
        data["versions"] = [asdict(v) for v in self.versions.values()]
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_document(cls, document: bytes) -> Secret:
        data = json.loads(document)
        data.pop("format", None)
        versions = [Version(**v) for v in data.pop("versions")]
        secret = cls(**data)
        secret.versions = {v.version_id: v for v in versions}
        return secret
