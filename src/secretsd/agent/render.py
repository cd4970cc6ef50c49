"""Every byte the agent answers with is built here: the 200 responses the caches keep
(``secret``, ``parameter``: built once per fetch, then written as they are), the error
responses a ``BackendError`` carries, and the fixed texts of the HTTP front.

Success bodies follow the AWS agent's field order; error bodies are rendered with a JSON
encoder (never by pasting strings), so a message holding a quote stays valid JSON.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from . import messages

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def created_date(value: Any) -> str | None:
    """Epoch seconds as the AWS agent prints them: shortest float, no ``.0`` on a whole."""
    if value is None:
        return None
    seconds = value.timestamp() if isinstance(value, dt.datetime) else float(value)
    if seconds.is_integer():
        return str(int(seconds))
    return repr(seconds)


def secret(response: Mapping[str, Any]) -> bytes:
    """The whole 200 response for a GetSecretValue response (botocore's parsed form)."""
    return json_response(200, secret_body(response))


def parameter(response: Mapping[str, Any]) -> bytes:
    """The whole 200 response for a GetParameter response (botocore's parsed form)."""
    return json_response(200, parameter_body(response))


def secret_body(response: Mapping[str, Any]) -> bytes:
    """The 200 body for a GetSecretValue response (botocore's parsed form)."""
    body: dict[str, Any] = {
        "ARN": response.get("ARN"),
        "Name": response.get("Name"),
        "VersionId": response.get("VersionId"),
    }
    if response.get("SecretString") is not None:
        body["SecretString"] = response["SecretString"]
    if response.get("SecretBinary") is not None:
        body["SecretBinary"] = base64.b64encode(response["SecretBinary"]).decode("ascii")
    if response.get("VersionStages") is not None:
        body["VersionStages"] = list(response["VersionStages"])
    body["CreatedDate"] = created_date(response.get("CreatedDate"))
    return _encode(body).encode("utf-8")


# GetParameter's Parameter fields, in the order the Lambda extension writes them (it encodes
# the SDK's output structure, whose absent members come out as null).
_PARAMETER_FIELDS = (
    "ARN",
    "DataType",
    "LastModifiedDate",
    "Name",
    "Selector",
    "SourceResult",
    "Type",
    "Value",
    "Version",
)


def last_modified(value: Any) -> str | None:
    """RFC 3339 in UTC at millisecond precision, trailing zeros dropped, as the extension
    prints it: ``2022-11-16T08:22:40.362Z``, ``2022-11-16T08:22:40.36Z``,
    ``2022-11-16T08:22:40Z``."""
    if not isinstance(value, dt.datetime):
        return None
    when = value.astimezone(dt.UTC) if value.tzinfo else value
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    millis = when.microsecond // 1000  # the SDK keeps milliseconds, truncated
    if millis:
        text += f".{millis:03d}".rstrip("0")
    return text + "Z"


def parameter_body(response: Mapping[str, Any]) -> bytes:
    """The 200 body for a GetParameter response (botocore's parsed form)."""
    parameter = response.get("Parameter") or {}
    body: dict[str, Any] = {field: parameter.get(field) for field in _PARAMETER_FIELDS}
    body["LastModifiedDate"] = last_modified(parameter.get("LastModifiedDate"))
    body["Version"] = parameter.get("Version") or 0  # a plain integer there, never null
    return _encode({"Parameter": body, "ResultMetadata": {}}).encode("utf-8")


def error_body(code: str, message: str) -> bytes:
    """``{"__type":"<Code>", "message":"<msg>"}``; InternalFailure carries no message."""
    if code == messages.INTERNAL_FAILURE or not message:
        return b'{"__type":"InternalFailure"}'
    return f'{{"__type":{_encode(code)}, "message":{_encode(message)}}}'.encode()


def response(status: int, body: bytes, content_type: str | None = None) -> bytes:
    """A complete HTTP/1.1 response; the agent keeps these bytes and writes them as they are.

    Like the AWS agent's, secret and error responses carry no Content-Type: clients know
    what they asked for, and every header is work for a client to parse on each hit.
    """
    reason = HTTPStatus(status).phrase
    head = f"HTTP/1.1 {status} {reason}\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode("ascii") + body


def text(status: int, message: str) -> bytes:
    return response(status, message.encode("utf-8"))


def json_response(status: int, body: bytes) -> bytes:
    return response(status, body)
