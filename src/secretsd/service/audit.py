"""Audit records in CloudTrail's shape: who called what, from where, and how it ended.

Theory of operation. The wire layer hands every call, allowed or refused, to
``AuditTrail.record`` (``service/audit_trail.py``) as an ``ApiCall``; the rotation
orchestrator hands each step as a service event. This module turns those into the JSON
objects CloudTrail would log, and is the one place that decides what of a request and a
response may be written down:

- ``requestParameters`` are the request members with every value, password and key
  removed (any member named SecretString*, SecretBinary*, RandomPassword, Password,
  SecretAccessKey or SessionToken, at any depth), member names in lower camel case as
  CloudTrail writes them;
- ``responseElements`` are null for reads (GetSecretValue, BatchGetSecretValue,
  GetRandomPassword and every Describe/List, as CloudTrail logs them) and for errors, and
  otherwise the response members with the same removals;
- ``resources`` name the secrets the call was about, by ARN, where they are known.

Records carry no clock reading other than ``eventTime`` and nothing of the connection but
the address and user agent, so shaping is pure and tested without a server.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from secretsd.model.audit_chain import canonical
from secretsd.model.identity import Caller
from secretsd.model.request import RequestFacts

EVENT_VERSION = "1.08"
SECRET_TYPE = "AWS::SecretsManager::Secret"
SERVICE_HOST = "secretsmanager.amazonaws.com"
EVENT_SOURCES = {
    "secretsmanager": SERVICE_HOST,
    "iam": "iam.amazonaws.com",
    "sts": "sts.amazonaws.com",
}
MAX_USER_AGENT = 1024

# Member names (lower-cased) that hold a value, a password or a key, wherever they appear.
_SECRET_MEMBERS = frozenset(
    {
        "randompassword",
        "password",
        "newpassword",
        "oldpassword",
        "secretaccesskey",
        "sessiontoken",
    }
)
_SECRET_PREFIXES = ("secretstring", "secretbinary")


def is_secret_member(name: str) -> bool:
    folded = name.lower()
    return folded in _SECRET_MEMBERS or folded.startswith(_SECRET_PREFIXES)


def redact(value: Any, name: str = "") -> Any:
    """``value`` with secret members removed and member names in lower camel case."""
    if isinstance(value, Mapping):
        return {
            _lower_camel(str(key)): redact(item, str(key))
            for key, item in value.items()
            if not is_secret_member(str(key))
        }
    if isinstance(value, list | tuple):
        return [redact(item, name) for item in value]
    if isinstance(value, float):
        # The chain's canonical form has no floats: dates as CloudTrail's eventTime is
        # written, other numbers as text.
        return event_time(value) if name.endswith("Date") else repr(value)
    return value


def _lower_camel(name: str) -> str:
    # "ARN" -> "arn" (as CloudTrail writes it since 2024), "SecretId" -> "secretId".
    return name.lower() if name.isupper() else name[:1].lower() + name[1:]


def user_identity(caller: Caller | None) -> dict[str, Any]:
    if caller is None:
        # Refused before a signature was verified: nobody is known to have called.
        return {"type": "Unknown"}
    identity: dict[str, Any] = {
        "type": caller.type,
        "principalId": caller.user_id,
        "arn": caller.arn,
        "accountId": caller.account_id,
        "accessKeyId": caller.access_key_id,
    }
    if caller.user_name is not None:
        identity["userName"] = caller.user_name
    return identity


def event_time(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


@dataclass(slots=True)  # not frozen: built on every request, and frozen costs twice as much
class ApiCall:
    """One call as the wire layer saw it, allowed or refused."""

    service: str  # "secretsmanager", "iam" or "sts"
    operation: str
    caller: Caller | None
    context: RequestFacts
    read_only: bool
    request: Mapping[str, Any] | None = None
    response: Mapping[str, Any] | None = None
    error_code: str | None = None
    error_message: str | None = None


def _secret_arns(call: ApiCall) -> list[str]:
    arns: list[str] = []
    response = call.response or {}
    if isinstance(response.get("ARN"), str):
        arns.append(response["ARN"])
    for item in response.get("SecretValues") or ():
        if isinstance(item, Mapping) and isinstance(item.get("ARN"), str):
            arns.append(item["ARN"])
    if not arns and call.request:
        secret_id = call.request.get("SecretId")
        if isinstance(secret_id, str) and secret_id.startswith("arn:"):
            arns.append(secret_id)
    return arns


def shape_call(
    call: ApiCall, *, region: str, account: str, at: float, event_id: str
) -> dict[str, Any]:
    """The CloudTrail record of ``call``."""
    record: dict[str, Any] = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": user_identity(call.caller),
        "eventTime": event_time(at),
        "eventSource": EVENT_SOURCES.get(call.service, f"{call.service}.amazonaws.com"),
        "eventName": call.operation,
        "awsRegion": region,
        "sourceIPAddress": call.context.source_ip,
        "userAgent": call.context.user_agent[:MAX_USER_AGENT],
        # None when the request was refused before it was authenticated and decoded.
        "requestParameters": redact(call.request) if call.request is not None else None,
        "responseElements": None
        if call.read_only or call.error_code is not None or call.response is None
        else redact(call.response),
        "requestID": call.context.request_id,
        "eventID": event_id,
        "readOnly": call.read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if call.error_code is not None:
        record["errorCode"] = call.error_code
        record["errorMessage"] = call.error_message or ""
    arns = _secret_arns(call)
    if arns:
        record["resources"] = [
            {"ARN": arn, "type": SECRET_TYPE, "accountId": account} for arn in arns
        ]
    return record


class CallRenderer:
    """``canonical(shape_call(call, ...))``, built faster: every request pays for it.

    The canonical form sorts members by name, and a call record always has the same
    members (errorCode, errorMessage and resources aside), so the record is written out in
    that order with the members that never change encoded once, a caller's identity once
    per caller and the time once a second. tests/service/test_audit_shape.py checks that it
    equals the slow way for any call.
    """

    MAX_CACHED = 4096

    def __init__(self, *, region: str, account: str) -> None:
        self.account = account
        self._start = '{"awsRegion":' + encode_basestring(region)
        self._constant = (
            ',"eventType":"AwsApiCall","eventVersion":'
            + encode_basestring(EVENT_VERSION)
            + ',"managementEvent":true,"readOnly":'
        )
        self._recipient = ',"recipientAccountId":' + encode_basestring(account) + ',"requestID":'
        self._sources = {name: encode_basestring(host) for name, host in EVENT_SOURCES.items()}
        self._identities: dict[tuple[str, str, str, str | None], str] = {}
        self._resources: dict[tuple[str, ...], str] = {}
        # Applications ask for the same few secrets with the same SDK again and again.
        self._requests: dict[tuple[tuple[str, Any], ...], str] = {}
        self._agents: dict[str, str] = {}
        self._second = -1
        self._time = ""

    def _identity(self, caller: Caller | None) -> str:
        if caller is None:
            return '{"type":"Unknown"}'
        key = (caller.arn, caller.access_key_id, caller.user_id, caller.user_name)
        found = self._identities.get(key)
        if found is None:
            if len(self._identities) >= self.MAX_CACHED:
                self._identities.clear()
            found = self._identities[key] = canonical(user_identity(caller))
        return found

    def _resource_list(self, arns: list[str]) -> str:
        key = tuple(arns)
        found = self._resources.get(key)
        if found is None:
            if len(self._resources) >= self.MAX_CACHED:
                self._resources.clear()
            found = self._resources[key] = canonical(
                [{"ARN": arn, "type": SECRET_TYPE, "accountId": self.account} for arn in arns]
            )
        return found

    def _parameters(self, request: Mapping[str, Any] | None) -> str:
        # Only flat requests of a few strings are cached: their key holds only immutable
        # values, so a cached text can't go stale.
        if request is None or len(request) > 4:
            return _parameters(request)
        key = tuple(request.items())
        if not all(type(value) is str for _, value in key):
            return _parameters(request)
        found = self._requests.get(key)
        if found is None:
            if len(self._requests) >= self.MAX_CACHED:
                self._requests.clear()
            found = self._requests[key] = _parameters(request)
        return found

    def _user_agent(self, agent: str) -> str:
        found = self._agents.get(agent)
        if found is None:
            if len(self._agents) >= self.MAX_CACHED:
                self._agents.clear()
            found = self._agents[agent] = encode_basestring(agent[:MAX_USER_AGENT])
        return found

    def _event_time(self, at: float) -> str:
        second = int(at)
        if second != self._second:
            self._second, self._time = second, encode_basestring(event_time(at))
        return self._time

    def render(self, call: ApiCall, *, at: float, event_id: str) -> str:
        parts = [self._start]
        if call.error_code is not None:
            parts += (
                ',"errorCode":',
                encode_basestring(call.error_code),
                ',"errorMessage":',
                encode_basestring(call.error_message or ""),
            )
        parts += (
            ',"eventCategory":"Management","eventID":',
            encode_basestring(event_id),
            ',"eventName":',
            encode_basestring(call.operation),
            ',"eventSource":',
            self._sources.get(call.service) or encode_basestring(f"{call.service}.amazonaws.com"),
            ',"eventTime":',
            self._event_time(at),
            self._constant,
            "true" if call.read_only else "false",
            self._recipient,
            encode_basestring(call.context.request_id),
            ',"requestParameters":',
            self._parameters(call.request),
        )
        arns = _secret_arns(call)
        if arns:
            parts += (',"resources":', self._resource_list(arns))
        parts += (
            ',"responseElements":',
            "null"
            if call.read_only or call.error_code is not None or call.response is None
            else canonical(redact(call.response)),
            ',"sourceIPAddress":',
            encode_basestring(call.context.source_ip),
            ',"userAgent":',
            self._user_agent(call.context.user_agent),
            ',"userIdentity":',
            self._identity(call.caller),
            "}",
        )
        return "".join(parts)


def _parameters(request: Mapping[str, Any] | None) -> str:
    if request is None:
        return "null"
    # Most requests are a few strings (a GetSecretValue is one): encoded directly.
    if all(type(value) is str for value in request.values()) and not any(
        is_secret_member(key) for key in request
    ):
        members = sorted({_lower_camel(key): value for key, value in request.items()}.items())
        return (
            "{"
            + ",".join(
                [f"{encode_basestring(key)}:{encode_basestring(value)}" for key, value in members]
            )
            + "}"
        )
    return canonical(redact(request))


def shape_service_event(
    name: str,
    arn: str,
    details: Mapping[str, Any],
    *,
    region: str,
    account: str,
    at: float,
    event_id: str,
) -> dict[str, Any]:
    """A record of something the service did on its own (a rotation step), as CloudTrail
    logs its ``AwsServiceEvent``s."""
    return {
        "eventVersion": EVENT_VERSION,
        "userIdentity": {"accountId": account, "invokedBy": SERVICE_HOST},
        "eventTime": event_time(at),
        "eventSource": SERVICE_HOST,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": SERVICE_HOST,
        "userAgent": SERVICE_HOST,
        "requestParameters": None,
        "responseElements": None,
        "eventID": event_id,
        "readOnly": False,
        "resources": [{"ARN": arn, "type": SECRET_TYPE, "accountId": account}],
        "eventType": "AwsServiceEvent",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "serviceEventDetails": redact(dict(details)),
    }
