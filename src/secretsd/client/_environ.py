"""The environment as the last source: a variable per secret, AWSCURRENT only.

A variable holds one value, so it stands in for AWSCURRENT and for nothing else: answering
a request for AWSPENDING or a version id with it would hand out the wrong credentials.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ._errors import Unavailable
from ._value import SecretValue

PREFIX = "SECRETSD_SECRET_"


def variable_name(secret_id: str) -> str:
    """``SECRETSD_SECRET_`` and the secret id in upper case, each other character as ``_``
    (``db/app-1`` reads ``SECRETSD_SECRET_DB_APP_1``)."""
    return PREFIX + re.sub(r"[^A-Za-z0-9]", "_", secret_id).upper()


class EnvironmentSource:
    """Reads AWSCURRENT from an environment variable."""

    name = "environment"

    def __init__(self, env: Mapping[str, str], names: Mapping[str, str] | None = None) -> None:
        self._env = env
        self._names = dict(names or {})

    def fetch(
        self, secret_id: str, stage: str | None, version_id: str | None, refresh: bool
    ) -> SecretValue:
        """The variable's value; Unavailable when it is unset or another version is asked."""
        if version_id is not None or stage not in (None, "AWSCURRENT"):
            raise Unavailable("holds AWSCURRENT only")
        name = self._names.get(secret_id) or variable_name(secret_id)
        value = self._env.get(name)
        if value is None:
            raise Unavailable(f"{name} is not set")
        return SecretValue(value, source=self.name)
