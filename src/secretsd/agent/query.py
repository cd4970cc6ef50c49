"""Request targets to lookups: the two GetSecretValue routes of the AWS agent.

``/secretsmanager/get?secretId=..`` and ``<path_prefix><secretId>``; query values are
form-decoded (``+`` is a space), a repeated key keeps its last value, the path-style id is
the raw remainder of the path. Errors carry the AWS agent's 400 texts.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import parse_qsl

from . import messages

QUERY_ROUTE = "/secretsmanager/get"
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
            lowered = value.lower()
            if lowered in _TRUE:
                refresh_now = True
            elif lowered in _FALSE:
                refresh_now = False
            else:
                raise QueryError(messages.INVALID_REFRESH_NOW)
        else:
            raise QueryError(messages.unknown_parameter(name))
    return Lookup(secret_id, version_id, version_stage, refresh_now)


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
