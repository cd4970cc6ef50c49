"""A secret, its versions, and the document that storage keeps for it.

The document is the secret's metadata as JSON: no secret value is ever part of it. Values
live beside it, one per version, behind the encryption layer.

Theory of operation: document formats. A document says which format wrote it, as
``"format": "MAJOR.MINOR"`` (releases before formats had minors wrote the bare integer 1,
read as "1.0"; 1.1 added ``tagged``, 1.2 ``resource_policy``, 1.3 each version's
``kms_key_id``). The two numbers promise
different things, so that a rolling upgrade of several nodes over one PostgreSQL store is
safe:

- A newer *minor* format only adds fields that an older release may carry without
  understanding them. This release keeps such fields, at the top level and in each version,
  and writes them back unchanged with the format it read; the newer release, for its part,
  must accept its fields as an older one leaves them (say, naming a version that was since
  removed).
- A newer *major* format may change the meaning of fields this release knows, so editing
  it would corrupt it: it is refused with ``UnsupportedFormat``.

A document that can't be read (newer major, not JSON, fields missing) raises an
``UnreadableRecord`` naming the secret: it is that secret's problem only, and code that
goes through many secrets skips it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

AWSCURRENT = "AWSCURRENT"
AWSPREVIOUS = "AWSPREVIOUS"
AWSPENDING = "AWSPENDING"

# (major, minor) of the documents this release writes.
DOCUMENT_FORMAT = (1, 3)
_FORMAT = re.compile(r"([0-9]{1,9})\.([0-9]{1,9})")
# Attributes kept beside the document's fields rather than as fields of their own.
_NOT_IN_DOCUMENTS = ("extra", "versions", "document_format")


class UnreadableRecord(Exception):
    """The stored record of one secret can't be read: tampered with, written in an unknown
    major format, or undecodable. Operations on that secret fail; iterations skip it.

    ``secret`` names the secret (its name, or its ARN when the name is unknown); messages
    never quote the record itself.
    """

    def __init__(self, secret: str, reason: str, *, arn: str | None = None) -> None:
        named = secret if arn is None or arn == secret else f"{secret} ({arn})"
        super().__init__(f"The stored record of secret {named} can't be read: {reason}.")
        self.secret = secret
        self.arn = arn
        self.reason = reason


class UnsupportedFormat(UnreadableRecord):
    """The document was written in a newer major format by a later release."""


@dataclass(slots=True)
class Version:
    version_id: str
    created: float
    stages: list[str] = field(default_factory=list)
    # The rotation placeholder (AWSPENDING created by RotateSecret) has no value until the
    # rotation function's createSecret step puts one.
    has_value: bool = True
    last_accessed: float | None = None
    # The KMS key the version stayed under when the secret moved to another one (``kms``);
    # None, as in every document before format 1.3: the secret's present key.
    kms_key_id: str | None = None
    # Fields of a newer minor format, carried unchanged (see the module's docstring).
    extra: dict[str, Any] = field(default_factory=dict)

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
    # Whether the secret has ever had a tag: AWS answers ``"Tags": []`` once the last tag
    # is removed, and omits Tags only for a secret never tagged. Absent from documents
    # written before format 1.1, where it reads as never tagged.
    tagged: bool = False
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
    # The resource policy's JSON text as PutResourcePolicy was given it (format 1.2).
    resource_policy: str | None = None
    versions: dict[str, Version] = field(default_factory=dict)
    # The format the document was read in, written back when it is a newer minor than ours,
    # and the fields of that format this release doesn't know.
    document_format: tuple[int, int] = DOCUMENT_FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

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
        data = _known_fields(self)
        data["versions"] = [_known_fields(v) for v in self.versions.values()]
        major, minor = max(self.document_format, DOCUMENT_FORMAT)
        data["format"] = f"{major}.{minor}"
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_document(cls, document: bytes, *, name: str | None = None) -> Secret:
        """Read a document; raises ``UnreadableRecord`` (naming ``name``, else the name the
        document gives) when it can't, ``UnsupportedFormat`` for a newer major format."""
        try:
            data = json.loads(document)
        except (ValueError, UnicodeDecodeError):
            raise UnreadableRecord(name or "(unknown)", "the document is not JSON") from None
        if not isinstance(data, dict):
            raise UnreadableRecord(name or "(unknown)", "the document is not a JSON object")
        secret_name = name or str(data.get("name", "(unknown)"))
        arn = data.get("arn") if isinstance(data.get("arn"), str) else None
        document_format = _parse_format(data.pop("format", None), secret_name, arn)
        try:
            versions = [_build(Version, v) for v in data.pop("versions", [])]
            secret = _build(cls, data)
        except (TypeError, ValueError) as exc:
            raise UnreadableRecord(
                secret_name, f"the document is malformed ({exc})", arn=arn
            ) from None
        secret.versions = {v.version_id: v for v in versions}
        secret.document_format = document_format
        return secret


def _known_fields(obj: Any) -> dict[str, Any]:
    """The dataclass's own fields as JSON-ready data, then its carried unknown ones."""
    data = {
        f.name: copy.deepcopy(getattr(obj, f.name))
        for f in dataclasses.fields(obj)
        if f.name not in _NOT_IN_DOCUMENTS
    }
    for key, value in obj.extra.items():
        data.setdefault(key, copy.deepcopy(value))
    return data


def _build(cls: Any, data: Any) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"a {cls.__name__.lower()} is not a JSON object")
    own = [f for f in dataclasses.fields(cls) if f.name not in _NOT_IN_DOCUMENTS]
    missing = [
        f.name
        for f in own
        if f.name not in data
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{cls.__name__.lower()} fields missing: {', '.join(missing)}")
    names = {f.name for f in own}
    known = {k: v for k, v in data.items() if k in names}
    return cls(**known, extra={k: v for k, v in data.items() if k not in names})


def _parse_format(raw: Any, name: str, arn: str | None) -> tuple[int, int]:
    if raw is None:
        return (1, 0)  # written before documents named their format
    if isinstance(raw, int) and not isinstance(raw, bool):
        parsed = (raw, 0)
    else:
        match = _FORMAT.fullmatch(raw) if isinstance(raw, str) else None
        if match is None:
            raise UnreadableRecord(name, "its document format is not recognised", arn=arn)
        parsed = (int(match[1]), int(match[2]))
    if parsed[0] > DOCUMENT_FORMAT[0]:
        raise UnsupportedFormat(
            name,
            f"it was written in document format {parsed[0]}.{parsed[1]} by a later release, "
            f"and this release reads major format {DOCUMENT_FORMAT[0]} only",
            arn=arn,
        )
    if parsed[0] < DOCUMENT_FORMAT[0]:
        raise UnreadableRecord(name, f"document format {parsed[0]} is not recognised", arn=arn)
    return parsed
