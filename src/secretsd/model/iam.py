"""IAM users, their access keys and inline policies: pure data and IAM's rules.

A user is stored as one document (this module's JSON) holding everything IAM says about it
except the secret halves of its access keys, which the store seals apart. Every change to a
user, its tags, its policies or the status of one of its keys, is a new revision of that
one document, so limits (two keys a user) and conflicts (no deleting a user that still has
keys) are checked and committed atomically, as secret changes are.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from secretsd.model import errors

ACTIVE = "Active"
INACTIVE = "Inactive"
STATUSES = (ACTIVE, INACTIVE)
ACCESS_KEYS_PER_USER = 2
TAGS_PER_USER = 50
# IAM's quota on a user's inline policies, counted without whitespace.
INLINE_POLICY_CHARS = 2048

_NAME = re.compile(r"[\w+=,.@-]+")
_PATH = re.compile(r"/|/[\x21-\x7e]+/")
_TAG_TEXT = re.compile(r"[\w\s.:/=+\-@]*")
_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
DOCUMENT_FORMAT = 1


def new_user_id() -> str:
    return "AIDA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17))


def new_access_key() -> tuple[str, str]:
    """A key pair shaped like IAM's: (AKIA + 16 characters, 40 characters of secret)."""
    key_id = "AKIA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
    return key_id, "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def user_arn(account: str, path: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user{path}{name}"


def validation(member: str, value: object, constraint: str) -> errors.IamValidationError:
    return errors.IamValidationError(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: {constraint}"
    )


def check_name(member: str, value: str, max_len: int) -> str:
    if len(value) > max_len:
        raise validation(member, value, f"Member must have length less than or equal to {max_len}")
    if not _NAME.fullmatch(value):
        raise validation(
            member, value, r"Member must satisfy regular expression pattern: [\w+=,.@-]+"
        )
    return value


def check_path(value: str) -> str:
    if len(value) > 512 or not _PATH.fullmatch(value):
        raise validation(
            "path",
            value,
            r"Member must satisfy regular expression pattern: "
            r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)",
        )
    return value


def check_tag(key: str, value: str) -> None:
    if not 1 <= len(key) <= 128 or not _TAG_TEXT.fullmatch(key):
        raise validation(
            "tags.member.key",
            key,
            r"Member must satisfy regular expression pattern: "
            r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+",
        )
    if len(value) > 256 or not _TAG_TEXT.fullmatch(value):
        raise validation(
            "tags.member.value",
            value,
            r"Member must satisfy regular expression pattern: "
            r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*",
        )


def policy_size(document: str) -> int:
    return sum(1 for char in document if not char.isspace())


@dataclass
class KeyInfo:
    status: str
    created: float


@dataclass
class User:
    name: str
    user_id: str
    path: str
    created: float
    # Tag key -> value, in the order they were added (IAM lists them so).
    tags: dict[str, str] = field(default_factory=dict)
    # Inline policy name -> document text, as the caller sent it.
    policies: dict[str, str] = field(default_factory=dict)
    # Access key id -> its status and creation date; the secret halves are stored apart.
    keys: dict[str, KeyInfo] = field(default_factory=dict)

    def arn(self, account: str) -> str:
        return user_arn(account, self.path, self.name)

    def to_document(self) -> bytes:
        return json.dumps(
            {
                "Format": DOCUMENT_FORMAT,
                "UserName": self.name,
                "UserId": self.user_id,
                "Path": self.path,
                "CreateDate": self.created,
                "Tags": [[k, v] for k, v in self.tags.items()],
                "Policies": self.policies,
                "AccessKeys": {
                    key_id: {"Status": info.status, "CreateDate": info.created}
                    for key_id, info in self.keys.items()
                },
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_document(cls, document: bytes) -> User:
        data: dict[str, Any] = json.loads(document)
        if data.get("Format") != DOCUMENT_FORMAT:
            raise ValueError(f"unknown user document format {data.get('Format')!r}")
        return cls(
            name=data["UserName"],
            user_id=data["UserId"],
            path=data["Path"],
            created=data["CreateDate"],
            tags={k: v for k, v in data["Tags"]},
            policies=dict(data["Policies"]),
            keys={
                key_id: KeyInfo(info["Status"], info["CreateDate"])
                for key_id, info in data["AccessKeys"].items()
            },
        )

    def add_key(self, key_id: str, now: float) -> None:
        if len(self.keys) >= ACCESS_KEYS_PER_USER:
            raise errors.IamLimitExceeded(
                f"Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}"
            )
        self.keys[key_id] = KeyInfo(ACTIVE, now)

    def key(self, key_id: str) -> KeyInfo:
        info = self.keys.get(key_id)
        if info is None:
            raise errors.NoSuchEntity(f"The Access Key with id {key_id} cannot be found.")
        return info

    def put_policy(self, name: str, document: str) -> None:
        policies = dict(self.policies)
        policies[name] = document
        if sum(policy_size(text) for text in policies.values()) > INLINE_POLICY_CHARS:
            raise errors.IamLimitExceeded(
                f"Maximum policy size of {INLINE_POLICY_CHARS} bytes exceeded for user {self.name}"
            )
        self.policies = policies

    def policy(self, name: str) -> str:
        document = self.policies.get(name)
        if document is None:
            raise errors.NoSuchEntity(f"The user policy with name {name} cannot be found.")
        return document

    def set_tags(self, tags: dict[str, str]) -> None:
        merged = {**self.tags, **tags}
        if len(merged) > TAGS_PER_USER:
            raise errors.IamLimitExceeded(
                f"The number of tags has reached the maximum limit of {TAGS_PER_USER}."
            )
        self.tags = merged

    def check_deletable(self) -> None:
        if self.keys:
            raise errors.DeleteConflict("Cannot delete entity, must delete access keys first.")
        if self.policies:
            raise errors.DeleteConflict("Cannot delete entity, must delete policies first.")


def no_such_user(name: str) -> errors.NoSuchEntity:
    return errors.NoSuchEntity(f"The user with name {name} cannot be found.")
