"""Rotation function ``secretsd-generic``: a new random value for an API key or token.

The secret is a JSON object; one field of it is replaced by a fresh random value on every
rotation. The field is the secret's own ``rotation_field`` key when it has one, else the
environment variable ``SECRET_FIELD``, else ``api_key``. No external system is told:
setSecret and testSecret only check that the pending value is a usable rotation of the
current one. Values come from GetRandomPassword with the same environment variables as the
database functions; punctuation is left out unless ``EXCLUDE_PUNCTUATION=false``, because
tokens travel in headers and URLs.

Lambda handler: ``generic.lambda_handler`` (inside the packaged directory).
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from .common import (
    AWSCURRENT,
    AWSPENDING,
    RotationError,
    get_value,
    handle,
    parse_json_object,
    password_request,
    put_pending,
    random_password,
    require_value,
)

DEFAULT_FIELD = "api_key"
FIELD_KEY = "rotation_field"


def field_name(document: dict[str, Any], what: str) -> str:
    name = document.get(FIELD_KEY) or os.environ.get("SECRET_FIELD") or DEFAULT_FIELD
    if not isinstance(name, str):
        raise RotationError(f"The {what} has a non-text {FIELD_KEY!r}.")
    if name == FIELD_KEY:
        raise RotationError(f"The {what} names {FIELD_KEY!r} itself as the field to rotate.")
    return name


class GenericRotation:
    def _read(self, sm: Any, secret_id: str, stage: str, token: str | None = None) -> dict:
        text = require_value(sm, secret_id, stage, token)
        return parse_json_object(text, f"{stage} value of secret {secret_id}")

    def _pending_field(self, sm: Any, secret_id: str, token: str) -> tuple[str, str, dict]:
        what = f"AWSPENDING value of secret {secret_id}"
        pending = self._read(sm, secret_id, AWSPENDING, token)
        name = field_name(pending, what)
        value = pending.get(name)
        if not isinstance(value, str) or not value:
            raise RotationError(f"The {what} has no text in its field {name!r}.")
        return name, value, pending

    def create_secret(self, sm: Any, secret_id: str, token: str) -> None:
        current = self._read(sm, secret_id, AWSCURRENT)
        name = field_name(current, f"AWSCURRENT value of secret {secret_id}")
        if get_value(sm, secret_id, AWSPENDING, token) is not None:
            self._pending_field(sm, secret_id, token)
            return
        request = password_request("", defaults={"EXCLUDE_PUNCTUATION": True})
        put_pending(
            sm, secret_id, token, {**current, name: random_password(sm, secret_id, request)}
        )

    def set_secret(self, sm: Any, secret_id: str, token: str) -> None:
        name, value, _ = self._pending_field(sm, secret_id, token)
        old = self._read(sm, secret_id, AWSCURRENT).get(name)
        if isinstance(old, str) and hmac.compare_digest(old.encode(), value.encode()):
            raise RotationError(
                f"The AWSPENDING value of secret {secret_id} has the same {name!r} as "
                "AWSCURRENT: nothing would rotate."
            )

    def test_secret(self, sm: Any, secret_id: str, token: str) -> None:
        self._pending_field(sm, secret_id, token)


ROTATION = GenericRotation()


def lambda_handler(event: dict[str, Any], context: Any = None) -> None:
    handle(event, ROTATION)
