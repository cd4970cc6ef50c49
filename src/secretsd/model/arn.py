"""Secret ARNs: ``arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 chars>``.

The six-character suffix makes a new secret with a reused name a different resource. A
caller may name a secret by name, by full ARN or by "partial ARN" (the ARN without the
suffix); ``SecretRef`` says which lookups to try, in order.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

SUFFIX_ALPHABET = string.ascii_letters + string.digits
SUFFIX_LENGTH = 6
PREFIX = "arn:aws:secretsmanager:"
# What a secret name may hold (AWS: ASCII letters, digits and /_+=.@-).
NAME_CHARS = frozenset(string.ascii_letters + string.digits + "/_+=.@-")


def make_arn(region: str, account: str, name: str, suffix: str) -> str:
    return f"{PREFIX}{region}:{account}:secret:{name}-{suffix}"


@dataclass(frozen=True, slots=True)
class SecretRef:
    """How to find a secret from a SecretId: first by ``arn`` (if any), then by ``name``."""

    arn: str | None
    name: str


def parse_secret_id(secret_id: str) -> SecretRef:
    if not secret_id.startswith(PREFIX):
        return SecretRef(None, secret_id)
    parts = secret_id.split(":", 6)
    if len(parts) != 7 or parts[5] != "secret" or not parts[6]:
        return SecretRef(None, secret_id)
    # The remainder is either name-XXXXXX (full ARN) or the bare name (partial ARN); names
    # may themselves end in -XXXXXX, so both lookups are tried.
    return SecretRef(secret_id, parts[6])


def valid_secret_id(secret_id: str) -> bool:
    """Whether ``secret_id`` can name a secret: a name, or an ARN whose name part is one."""
    name = parse_secret_id(secret_id).name
    return bool(name) and set(name) <= NAME_CHARS


def name_from_arn(arn: str) -> str:
    remainder = arn.split(":", 6)[6]
    return remainder[: -(SUFFIX_LENGTH + 1)]
