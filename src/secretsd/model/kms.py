"""KmsKeyId: which forms a secret's key may be named in, and which key each version is under.

secretsd seals every value with its own keyring, whatever KmsKeyId says; the field is kept
so that what callers set and read back is what AWS would show them. AWS takes a key in four
forms (key id, key ARN, alias name, alias ARN) and DescribeSecret answers the form it was
given. UpdateSecret with a new key re-encrypts the versions labelled AWSCURRENT, AWSPENDING
or AWSPREVIOUS; the others stay under the key they had, and ListSecretVersionIds names
that key in their ``KmsKeyIds``.
"""

from __future__ import annotations

import re

from .secret import AWSCURRENT, AWSPENDING, AWSPREVIOUS, Secret

# What ListSecretVersionIds names the AWS-managed key aws/secretsmanager.
DEFAULT_KEY = "DefaultEncryptionKey"
REENCRYPTED_STAGES = frozenset({AWSCURRENT, AWSPENDING, AWSPREVIOUS})

_HEX = "[0-9a-fA-F]"
_KEY_ID = rf"(?:{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}|mrk-{_HEX}{{32}})"
_ALIAS = r"alias/[a-zA-Z0-9/_-]{1,250}"
_ARN = r"arn:aws(?:-[a-z]+)*:kms:[a-z0-9-]+:[0-9]{12}:"
_FORMS = re.compile(rf"{_KEY_ID}|{_ALIAS}|{_ARN}key/{_KEY_ID}|{_ARN}{_ALIAS}")


def valid_key_id(text: str) -> bool:
    """Whether ``text`` names a KMS key in one of the forms AWS accepts."""
    return _FORMS.fullmatch(text) is not None


def change_key(secret: Secret, new_key: str | None) -> None:
    """Move ``secret`` to ``new_key`` (None: the default key). Versions that keep their key
    remember it; a version without a key of its own is under the secret's present one."""
    old_key = secret.kms_key_id or DEFAULT_KEY
    for version in secret.versions.values():
        if REENCRYPTED_STAGES.intersection(version.stages):
            version.kms_key_id = None
        elif version.kms_key_id is None:
            version.kms_key_id = old_key
    secret.kms_key_id = new_key


def version_keys(secret: Secret, version_id: str) -> list[str]:
    """``KmsKeyIds`` of a version, as ListSecretVersionIds answers it."""
    own = secret.versions[version_id].kms_key_id
    return [own or secret.kms_key_id or DEFAULT_KEY]
