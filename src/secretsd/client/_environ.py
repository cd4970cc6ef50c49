"""The environment as the last source: a variable per secret, or a variable per field,
AWSCURRENT only.

A secret is either one variable holding its whole value, or (the seed's habit, and most
applications' before they had a secrets manager) one variable per field, such as
``DB_HOST``, ``DB_USERNAME`` and ``DB_PASSWORD``, which this source assembles into the
Secrets Manager JSON form so that callers read it exactly as they read the real secret.
Either way it holds one value, so it stands in for AWSCURRENT and for nothing else:
answering a request for AWSPENDING or a version id with it would hand out the wrong
credentials.
"""

from __future__ import annotations

import json
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
    """Reads AWSCURRENT from an environment variable, or from one variable per field."""

    name = "environment"

    def __init__(
        self, env: Mapping[str, str], names: Mapping[str, str | Mapping[str, str]] | None = None
    ) -> None:
        self._env = env
        self._names = dict(names or {})
        for secret_id, spec in self._names.items():
            if not isinstance(spec, str) and not (
                isinstance(spec, Mapping)
                and spec
                and all(isinstance(v, str) and v for v in spec.values())
            ):
                raise ValueError(
                    f"env_names[{secret_id!r}] must be a variable name or a non-empty mapping "
                    "of fields to variable names"
                )

    def fetch(
        self, secret_id: str, stage: str | None, version_id: str | None, refresh: bool
    ) -> SecretValue:
        """The variable's value; Unavailable when it is unset or another version is asked."""
        if version_id is not None or stage not in (None, "AWSCURRENT"):
            raise Unavailable("holds AWSCURRENT only")
        spec = self._names.get(secret_id) or variable_name(secret_id)
        if not isinstance(spec, str):
            missing = [name for name in spec.values() if self._env.get(name) is None]
            if missing:
                raise Unavailable(f"{', '.join(missing)} not set")
            fields = {field: self._env[name] for field, name in spec.items()}
            return SecretValue(json.dumps(fields), source=self.name)
        name = spec
        value = self._env.get(name)
        if value is None:
            raise Unavailable(f"{name} is not set")
        return SecretValue(value, source=self.name)
