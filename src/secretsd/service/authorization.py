"""Authorization of Secrets Manager requests: IAM's evaluation logic, before an operation runs.

Theory of operation. A caller other than the account's root is checked before its
operation runs: the action (``secretsmanager:<Operation>``), the resource and the condition
keys of the request are evaluated (``model.policy.evaluate``) against the caller's identity
policies, which came with its key, and the secret's resource policy. An explicit Deny
refuses; an Allow lets the operation run; anything else is an implicit deny.

The secret is looked up first, quietly, because the resource policy, the ARN policies match
and the conditions on its tags all need it; but a refusal says the same whether it exists or
not (the resource in the message is the one the caller named), and "not found" is only ever
said to a caller who was allowed to ask. A secret that doesn't exist is matched under the
ARN its name would have, without the random suffix.

Decisions are remembered. ``evaluate`` is a pure function of the policies, the action, the
resource, the caller and the condition keys it looks up; a context that records which keys
the evaluation looked up (``_Traced``) tells which of the request's values the decision
depended on. A later request by the same caller object (the same policies: a changed user is
a new caller) for the same action, resource and resource policy, whose values of exactly
those keys are equal, gets the same decision without evaluating again. A policy that looks
at the time (``aws:CurrentTime``) sees a new value on every request, so its decisions are
never reused.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from secretsd.model import errors, request
from secretsd.model.identity import Caller
from secretsd.model.policy import Decision, Policy, RequestContext, evaluate
from secretsd.model.secret import Secret

from . import params
from .policy_ops import parsed_resource_policy

Body = Mapping[str, Any]

# Operations on no secret: the resource is "*", and AWS's message names none.
ACCOUNT_OPERATIONS = frozenset({"ListSecrets", "GetRandomPassword", "BatchGetSecretValue"})
# Request members that become condition keys, per operation.
_REQUEST_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "GetSecretValue": (
        ("VersionId", "secretsmanager:VersionId"),
        ("VersionStage", "secretsmanager:VersionStage"),
    ),
    "UpdateSecretVersionStage": (("VersionStage", "secretsmanager:VersionStage"),),
    "RotateSecret": (("RotationLambdaARN", "secretsmanager:RotationLambdaARN"),),
    "CreateSecret": (
        ("KmsKeyId", "secretsmanager:KmsKeyId"),
        ("Description", "secretsmanager:Description"),
    ),
    "UpdateSecret": (
        ("KmsKeyId", "secretsmanager:KmsKeyId"),
        ("Description", "secretsmanager:Description"),
    ),
    "DeleteSecret": (
        ("ForceDeleteWithoutRecovery", "secretsmanager:ForceDeleteWithoutRecovery"),
        ("RecoveryWindowInDays", "secretsmanager:RecoveryWindowInDays"),
    ),
    "PutResourcePolicy": (("BlockPublicPolicy", "secretsmanager:BlockPublicPolicy"),),
}
_DECISION_CACHE = 8192
# Decisions kept per (caller, action, resource, resource policy): distinct key values.
_DECISIONS_PER_REQUEST_KIND = 4
_MISSING = object()


class _Traced(RequestContext):
    """A request context that records the condition keys the evaluation looks up."""

    __slots__ = ("consulted",)

    def lookup(self, key: str) -> object:
        self.consulted.add(key)  # type: ignore[attr-defined]
        return RequestContext.lookup(self, key)


@dataclass(frozen=True, slots=True)
class _Remembered:
    caller: Caller  # held, so that the id in the cache key can't be reused meanwhile
    depends_on: tuple[tuple[str, object], ...]
    decision: Decision


# secretsd's own operations, and the AWS action whose rights each needs: policies written
# for AWS name no other (DescribeRotation tells what DescribeSecret does, and a rotation's
# failure besides).
ACTION_OF = {"DescribeRotation": "DescribeSecret"}


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from: what the connection tells the global condition keys."""

    source_ip: str | None = None
    secure_transport: bool = False


NOWHERE = Origin()


def origin_of(context: request.RequestFacts) -> Origin:
    """What the connection the audit trail records tells policies (one source for both)."""
    return Origin(context.source_ip or None, context.secure_transport)


class Authorization:
    """Decides the requests of callers other than root for one ``SecretsService``."""

    def __init__(
        self,
        find: Callable[[str], Secret | None],
        arn_prefix: str,
        clock: Callable[[], float],
    ) -> None:
        # The secret a SecretId names, or None; never raises ResourceNotFound.
        self._find = find
        self._arn_prefix = arn_prefix
        self._clock = clock
        self._decisions: dict[tuple, list[_Remembered]] = {}
        self._lock = threading.Lock()

    def check(self, operation: str, body: Body, caller: Caller, origin: Origin) -> None:
        """Return when ``caller`` may run ``operation``; raise AccessDenied otherwise."""
        action = f"secretsmanager:{ACTION_OF.get(operation, operation)}"
        if operation in ACCOUNT_OPERATIONS:
            self._decide(caller, action, "*", None, None, self._keys(body, operation, origin))
            if operation == "BatchGetSecretValue" and body.get("Filters"):
                self._decide(
                    caller,
                    "secretsmanager:ListSecrets",
                    "*",
                    None,
                    None,
                    self._keys(body, operation, origin),
                )
            return
        if operation == "CreateSecret":
            named = params.required_string(body, "Name", max_len=512)
            secret = None
            resource = f"{self._arn_prefix}{named}"
        elif operation == "ValidateResourcePolicy" and body.get("SecretId") is None:
            self._decide(caller, action, "*", None, None, self._keys(body, operation, origin))
            return
        else:
            named = params.secret_id(body)
            secret = self._find(named)
            resource = secret.arn if secret is not None else self._arn_for(named)
        keys = self._keys(body, operation, origin)
        keys["secretsmanager:secretid"] = named
        if secret is not None:
            self._secret_keys(secret, keys)
        elif operation == "CreateSecret":
            keys["secretsmanager:name"] = named
        self._decide(caller, action, resource, named, secret, keys)

    def check_each(self, caller: Caller, origin: Origin) -> Callable[[str, Secret | None], None]:
        """For BatchGetSecretValue: GetSecretValue, checked per secret as it is read."""

        def check(named: str, secret: Secret | None) -> None:
            keys = self._keys({}, "GetSecretValue", origin)
            keys["secretsmanager:secretid"] = named
            if secret is not None:
                self._secret_keys(secret, keys)
            resource = secret.arn if secret is not None else self._arn_for(named)
            self._decide(caller, "secretsmanager:GetSecretValue", resource, named, secret, keys)

        return check

    # -- the parts of a request context ---------------------------------------------------

    def _arn_for(self, named: str) -> str:
        return named if named.startswith("arn:") else f"{self._arn_prefix}{named}"

    def _keys(self, body: Body, operation: str, origin: Origin) -> dict[str, object]:
        # Named in lower case, as the evaluator looks them up. The time is added only when
        # a decision has to be evaluated (``_decision``).
        keys: dict[str, object] = {"aws:securetransport": origin.secure_transport}
        if origin.source_ip is not None:
            keys["aws:sourceip"] = origin.source_ip
        for member, key in _REQUEST_KEYS.get(operation, ()):
            value = body.get(member)
            if value is not None:
                keys[key.lower()] = value
        if operation in ("CreateSecret", "TagResource"):
            tags = body.get("Tags")
            if isinstance(tags, list):
                pairs = [t for t in tags if isinstance(t, dict) and isinstance(t.get("Key"), str)]
                for tag in pairs:
                    keys[f"aws:requesttag/{tag['Key'].lower()}"] = tag.get("Value", "")
                keys["aws:tagkeys"] = [tag["Key"] for tag in pairs]
        elif operation == "UntagResource":
            tag_keys = body.get("TagKeys")
            if isinstance(tag_keys, list):
                keys["aws:tagkeys"] = [k for k in tag_keys if isinstance(k, str)]
        return keys

    @staticmethod
    def _secret_keys(secret: Secret, keys: dict[str, object]) -> None:
        keys["secretsmanager:name"] = secret.name
        for tag in secret.tags:
            key = tag["Key"].lower()
            keys[f"aws:resourcetag/{key}"] = tag["Value"]
            keys[f"secretsmanager:resourcetag/{key}"] = tag["Value"]
        if secret.rotation_lambda_arn:
            keys["secretsmanager:resource/allowrotationlambdaarn"] = secret.rotation_lambda_arn

    @staticmethod
    def _resource_policy(secret: Secret | None) -> Policy | None:
        text = resource_policy_text(secret)
        return None if text is None else parsed_resource_policy(text)

    def _decide(
        self,
        caller: Caller,
        action: str,
        resource: str,
        named: str | None,
        secret: Secret | None,
        keys: dict[str, object],
    ) -> None:
        decision = self._decision(caller, action, resource, secret, keys)
        if decision.allowed:
            return
        raise errors.NotAuthorized(
            errors.not_authorized(caller.arn, action, named, decision.denied_by or "no-allow")
        )

    def _decision(
        self,
        caller: Caller,
        action: str,
        resource: str,
        secret: Secret | None,
        keys: dict[str, object],
    ) -> Decision:
        text = resource_policy_text(secret)
        kind = (id(caller), action, resource, text)
        for remembered in self._decisions.get(kind, ()):
            if remembered.caller is caller and all(
                keys.get(key, _MISSING) == value for key, value in remembered.depends_on
            ):
                return remembered.decision
        # Not remembered: a decision that looked at the time never was (the time was absent
        # from the keys it was compared with), so it is evaluated now, at this time.
        now = self._clock()
        keys["aws:currenttime"] = datetime.fromtimestamp(now, UTC)
        keys["aws:epochtime"] = int(now)
        context = _Traced(action, resource, caller, keys)
        object.__setattr__(context, "consulted", set())
        policies = [p for p in caller.policies if isinstance(p, Policy)]
        decision = evaluate(context, policies, self._resource_policy(secret))
        depends_on = tuple(
            (key, keys.get(key, _MISSING))
            for key in sorted(context.consulted)  # type: ignore[attr-defined]
        )
        with self._lock:
            if len(self._decisions) >= _DECISION_CACHE:
                self._decisions.clear()
            known = self._decisions.setdefault(kind, [])
            if len(known) >= _DECISIONS_PER_REQUEST_KIND:
                known.pop(0)
            known.append(_Remembered(caller, depends_on, decision))
        return decision


def resource_policy_text(secret: Secret | None) -> str | None:
    return None if secret is None else secret.resource_policy
