"""Reading request members with the checks of the service model.

Each reader raises the AWS error for a missing or malformed member, so operations read
their input in a few lines and never see a wrong type.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from secretsd.model import errors, kms
from secretsd.model.arn import valid_secret_id

Body = Mapping[str, Any]


def _path(name: str) -> str:
    return name[0].lower() + name[1:]


def _constraint(name: str, value: object, text: str) -> errors.ValidationError:
    # Secret values are never shown, not even back to their sender.
    shown = None if name in ("SecretString", "SecretBinary") else value
    return errors.constraint(_path(name), text, shown)


def string(
    body: Body, name: str, *, required: bool = False, min_len: int = 0, max_len: int | None = None
) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise errors.InvalidParameter(f"You must provide a value for the {name} parameter.")
        return None
    if not isinstance(value, str):
        raise errors.SerializationError(f"Expected a string for {name}.")
    if len(value) < min_len:
        raise _constraint(
            name, value, f"Member must have length greater than or equal to {min_len}"
        )
    if max_len is not None and len(value) > max_len:
        raise _constraint(name, value, f"Member must have length less than or equal to {max_len}")
    return value


def matching(body: Body, name: str, pattern: re.Pattern[str], *, max_len: int) -> str | None:
    """A string member that must also match the model's pattern."""
    value = string(body, name, min_len=1, max_len=max_len)
    if value is not None and not pattern.fullmatch(value):
        raise _constraint(
            name, value, f"Member must satisfy regular expression pattern: {pattern.pattern}"
        )
    return value


def required_string(body: Body, name: str, *, min_len: int = 1, max_len: int | None = None) -> str:
    value = string(body, name, required=True, min_len=min_len, max_len=max_len)
    assert value is not None
    return value


def secret_id(body: Body, member: str = "SecretId") -> str:
    """A SecretId (or CreateSecret's Name), refused as AWS refuses it, on every operation,
    when it holds a character no name may hold."""
    value = required_string(body, member, max_len=512 if member == "Name" else 2048)
    if not valid_secret_id(value) or (member == "Name" and ":" in value):
        raise errors.ValidationError(errors.INVALID_NAME)
    return value


def boolean(body: Body, name: str, default: bool | None = None) -> bool | None:
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise errors.SerializationError(f"Expected a boolean for {name}.")
    return value


def integer(
    body: Body, name: str, *, low: int | None = None, high: int | None = None
) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    # A float is taken when whole (7.0); 1e999 decodes to infinity, which is not.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not value.is_integer())
    ):
        raise errors.SerializationError(f"Expected an integer for {name}.")
    value = int(value)
    if low is not None and value < low:
        raise _constraint(name, value, f"Member must have value greater than or equal to {low}")
    if high is not None and value > high:
        raise _constraint(name, value, f"Member must have value less than or equal to {high}")
    return value


def _length_text(length: int, low: int, high: int) -> str:
    if length < low:
        return f"Member must have length greater than or equal to {low}"
    return f"Member must have length less than or equal to {high}"


def string_list(
    body: Body,
    name: str,
    *,
    min_items: int = 0,
    max_items: int | None = None,
    item_len: tuple[int, int] | None = None,
) -> list[str] | None:
    """A list of strings; ``item_len`` (low, high) bounds the length of each."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.SerializationError(f"Expected a list of strings for {name}.")
    if len(value) < min_items:
        raise _constraint(
            name, len(value), f"Member must have length greater than or equal to {min_items}"
        )
    if max_items is not None and len(value) > max_items:
        raise _constraint(
            name, len(value), f"Member must have length less than or equal to {max_items}"
        )
    if item_len is not None:
        low, high = item_len
        for item in value:
            if not low <= len(item) <= high:
                raise _constraint(
                    name,
                    f"[{', '.join(value)}]",
                    errors.item_constraints(
                        f"Member must have length less than or equal to {high}",
                        f"Member must have length greater than or equal to {low}",
                    ),
                )
    return value


def client_request_token(body: Body, *, required: bool = False) -> str | None:
    """The version id a write asks for. SDKs always fill it in; AWS refuses a raw request
    that makes a version without one, before it looks for the secret."""
    if required and body.get("ClientRequestToken") is None:
        raise errors.InvalidRequest(errors.TOKEN_REQUIRED)
    return string(body, "ClientRequestToken", min_len=32, max_len=64)


_ROTATION_TOKEN = re.compile(r"[a-zA-Z0-9\-]+")


def rotation_token(body: Body) -> str | None:
    """PutSecretValue's RotationToken: what a rotation event carries, handed back by the
    function. AWS checks it against the role a cross-account function assumed; with no
    roles to check, it is only held to the model's constraints."""
    value = string(body, "RotationToken", min_len=36, max_len=256)
    if value is not None and not _ROTATION_TOKEN.fullmatch(value):
        raise _constraint(
            "RotationToken",
            value,
            "Member must satisfy regular expression pattern: ^[a-zA-Z0-9\\-]+$",
        )
    return value


def kms_key_id(body: Body) -> str | None:
    """KmsKeyId: "" (back to the default key), or a key id, key ARN, alias name or alias ARN."""
    value = string(body, "KmsKeyId", max_len=2048)
    if value and not kms.valid_key_id(value):
        raise errors.InvalidParameter(errors.INVALID_KMS_KEY)
    return value


def new_version(body: Body) -> tuple[str, bytes] | None:
    """The (token, value) of the version a CreateSecret or UpdateSecret makes, if it has a
    value; the token is required then, and only then."""
    # A value that can't be decoded is the protocol's error, and comes first.
    value = secret_value(body)
    token = client_request_token(body, required=value is not None)
    if value is None:
        return None
    assert token is not None  # required above
    return token, value


def secret_value(body: Body) -> bytes | None:
    """The value as stored: a one-byte kind (S string, B binary) followed by the payload."""
    text = body.get("SecretString")
    blob = body.get("SecretBinary")
    if text is not None and blob is not None:
        raise errors.InvalidParameter(
            "You can't specify both a binary secret value and a string secret value in the "
            "same secret."
        )
    if text is not None:
        if not isinstance(text, str):
            raise errors.SerializationError("Expected a string for SecretString.")
        if not 1 <= len(text) <= 65536:
            raise _constraint("SecretString", text, _length_text(len(text), 1, 65536))
        return b"S" + text.encode()
    if blob is not None:
        if not isinstance(blob, str):
            raise errors.SerializationError("Expected a base64 string for SecretBinary.")
        try:
            raw = base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError):
            raise errors.SerializationError("SecretBinary is not valid base64.") from None
        if not 1 <= len(raw) <= 65536:
            raise _constraint("SecretBinary", blob, _length_text(len(raw), 1, 65536))
        return b"B" + raw
    return None


def render_value(stored: bytes) -> dict[str, str]:
    """The response members for a stored value."""
    if stored[:1] == b"B":
        return {"SecretBinary": base64.b64encode(stored[1:]).decode()}
    return {"SecretString": stored[1:].decode()}


def tags(body: Body, name: str = "Tags") -> list[dict[str, str]] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list):
        raise errors.SerializationError(f"Expected a list for {name}.")
    result = []
    for n, tag in enumerate(value, start=1):
        if not isinstance(tag, dict):
            raise errors.SerializationError(f"Expected objects in {name}.")
        key, val = tag.get("Key"), tag.get("Value", "")
        if not isinstance(key, str) or not isinstance(val, str):
            raise errors.SerializationError("Expected strings for tag keys and values.")
        if not 1 <= len(key) <= 128:
            raise errors.constraint(
                f"{_path(name)}.{n}.member.key", _length_text(len(key), 1, 128), key
            )
        if len(val) > 256:
            raise errors.constraint(
                f"{_path(name)}.{n}.member.value", _length_text(len(val), 0, 256), val
            )
        if key.lower().startswith("aws:"):
            raise errors.InvalidParameter("Tag keys can't begin with the reserved prefix aws:.")
        result.append({"Key": key, "Value": val})
    return result
