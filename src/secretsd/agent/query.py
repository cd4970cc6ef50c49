"""Request targets to lookups: the two GetSecretValue routes of the AWS agent, and the
Lambda extension's GetParameter route.

``/secretsmanager/get?secretId=..`` and ``<path_prefix><secretId>``; query values are
form-decoded (``+`` is a space), a repeated key keeps its last value, the path-style id is
the raw remainder of the path. Errors carry the AWS agent's 400 texts.
``/systemsmanager/parameters/get?name=..`` follows the same rules, with texts in their style.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import parse_qsl

from . import messages

QUERY_ROUTE = "/secretsmanager/get"
PARAMETERS_ROUTE = "/systemsmanager/parameters/get"
_TRUE = ("true", "1")
_FALSE = ("false", "0")


class Lookup(NamedTuple):
    secret_id: str
    version_id: str | None
    version_stage: str | None
    refresh_now: bool

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        return (self.secret_id, self.version_id, self.version_stage)


class ParameterLookup(NamedTuple):
    """A GetParameter request; being all of what selects a response, it is the cache key."""

    name: str
    version: str | None
    label: str | None
    with_decryption: bool

    @property
    def selector(self) -> str:
        """GetParameter's ``Name``: ``name``, ``name:version`` or ``name:label``."""
        chosen = self.version if self.version is not None else self.label
        return self.name if chosen is None else f"{self.name}:{chosen}"


class QueryError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _apply(pairs: list[tuple[str, str]], allow_secret_id: bool, secret_id: str) -> Lookup:
    version_id = version_stage = None
    refresh_now = False
    for name, value in pairs:
        if name == "secretId" and allow_secret_id:
            secret_id = value
        elif name == "versionId":
            version_id = value
        elif name == "versionStage":
            version_stage = value
        elif name == "refreshNow":
            refresh_now = _flag(value, messages.INVALID_REFRESH_NOW)
        else:
            raise QueryError(messages.unknown_parameter(name))
    return Lookup(secret_id, version_id, version_stage, refresh_now)


def _flag(value: str, message: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise QueryError(message)


def _pairs(query: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(query, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise QueryError(messages.BAD_REQUEST) from None


def parse_query_route(query: str) -> Lookup:
    lookup = _apply(_pairs(query), True, "")
    if not lookup.secret_id:
        raise QueryError(messages.MISSING_SECRET_ID_QUERY)
    return lookup


def parse_path_route(path: str, query: str, prefix: str) -> Lookup:
    secret_id = path[len(prefix) :]
    if not secret_id:
        raise QueryError(messages.MISSING_SECRET_ID_PATH)
    return _apply(_pairs(query), False, secret_id)


def parse_parameters_route(query: str) -> ParameterLookup:
    name = ""
    version = label = None
    with_decryption = False
    for key, value in _pairs(query):
        if key == "name":
            name = value
        elif key == "version":
            version = value
        elif key == "label":
            label = value
        elif key == "withDecryption":
            with_decryption = _flag(value, messages.INVALID_WITH_DECRYPTION)
        else:
            raise QueryError(messages.unknown_parameter(key))
    if not name:
        raise QueryError(messages.MISSING_PARAMETER_NAME)
    if version is not None and label is not None:
        raise QueryError(messages.VERSION_AND_LABEL)
    # Anything but digits after the colon would silently select a label instead.
    if version is not None and not (version.isascii() and version.isdigit()):
        raise QueryError(messages.INVALID_VERSION)
    return ParameterLookup(name, version, label, with_decryption)
