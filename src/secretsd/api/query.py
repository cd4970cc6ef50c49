"""The AWS Query protocol (IAM, STS): form-encoded requests in, XML out.

A request is ``POST /`` with a form body ``Action=<Operation>&Version=<date>&...``; nested
members are flattened into dotted names (``Tags.member.1.Key``), which ``decode_form``
folds back into lists and maps. A response is ``<OpResponse><OpResult>...`` with
``ResponseMetadata/RequestId``, lists as ``<member>`` elements, timestamps in ISO 8601 and
booleans as ``true``/``false``, as botocore's query parser reads them. Every error is
rendered by ``error_body`` alone, as ``<ErrorResponse><Error><Type><Code><Message>``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from secretsd.model import errors

CONTENT_TYPE = b"text/xml"
FORM_TYPE = b"application/x-www-form-urlencoded"

# Secrets Manager's codes for the errors raised before an operation runs, as Query
# services spell them.
_QUERY_CODES = {
    "UnrecognizedClientException": "InvalidClientTokenId",
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "IncompleteSignatureException": "IncompleteSignature",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
    "AccessDeniedException": "AccessDenied",
    "ValidationException": "ValidationError",
    "SerializationException": "MalformedInput",
    "UnknownOperationException": "InvalidAction",
    "InternalServiceError": "ServiceFailure",
}


def is_query(scope: Mapping[str, Any]) -> bool:
    """A request without X-Amz-Target whose body is a form: Query, not JSON 1.1."""
    content_type = b""
    for name, value in scope["headers"]:
        if name == b"x-amz-target":
            return False
        if name == b"content-type":
            content_type = value
    return content_type.split(b";", 1)[0].strip().lower() == FORM_TYPE


def decode_form(body: bytes) -> tuple[str, dict[str, Any]]:
    """The action and its members, nested again."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise errors.SerializationError("The request body is not UTF-8.") from None
    tree: dict[str, Any] = {}
    action = ""
    for name, value in pairs:
        if name == "Action":
            action = value
        elif name != "Version":
            _insert(tree, name.split("."), value)
    if not action:
        raise errors.InvalidAction("The request has no Action.")
    return action, _lists(tree)


def _insert(tree: dict[str, Any], parts: list[str], value: str) -> None:
    for part in parts[:-1]:
        child = tree.get(part)
        if not isinstance(child, dict):
            child = tree[part] = {}
        tree = child
    tree[parts[-1]] = value


def _lists(node: Any) -> Any:
    # {"member": {"1": a, "2": b}} is the list [a, b]; {"entry": ...} would be a map.
    if not isinstance(node, dict):
        return node
    members = node.get("member")
    if len(node) == 1 and isinstance(members, dict) and all(k.isdigit() for k in members):
        return [_lists(members[k]) for k in sorted(members, key=int)]
    return {key: _lists(value) for key, value in node.items()}


def _timestamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _xml(value: Any, out: list[str]) -> None:
    if isinstance(value, Mapping):
        for name, member in value.items():
            out.append(f"<{name}>")
            _xml(member, out)
            out.append(f"</{name}>")
    elif isinstance(value, list):
        for item in value:
            out.append("<member>")
            _xml(item, out)
            out.append("</member>")
    elif isinstance(value, bool):
        out.append("true" if value else "false")
    elif isinstance(value, float):
        out.append(_timestamp(value))
    else:
        out.append(escape(str(value)))


def response_body(namespace: str, action: str, result: Mapping[str, Any], request_id: str) -> bytes:
    out = [f'<{action}Response xmlns="{namespace}">']
    if result:
        out.append(f"<{action}Result>")
        _xml(result, out)
        out.append(f"</{action}Result>")
    out.append(f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>")
    out.append(f"</{action}Response>")
    return "".join(out).encode()


def error_body(
    namespace: str, error: errors.SecretsManagerError, request_id: str
) -> tuple[int, bytes]:
    code = _QUERY_CODES.get(error.code, error.code)
    kind = "Receiver" if error.status >= 500 else "Sender"
    body = (
        f'<ErrorResponse xmlns="{namespace}"><Error><Type>{kind}</Type>'
        f"<Code>{escape(code)}</Code><Message>{escape(error.message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return error.status, body.encode()
