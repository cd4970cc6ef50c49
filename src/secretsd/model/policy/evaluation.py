"""Deciding a request: IAM's evaluation logic within one account.

Theory of operation. Every statement of every policy that applies is matched against the
request: its action, its resource, its principal (resource policies only) and its
conditions. Then, in this order:

1. an explicit Deny that matches, in an identity policy or in the secret's resource policy,
   refuses the request, whatever allows it (``denied_by`` says which kind of policy);
2. the account's root is allowed (IAM attaches no policies to it; only a Deny in a resource
   policy stops it);
3. an Allow that matches in one of the caller's identity policies allows it;
4. an Allow that matches in the resource policy allows it when its principal names the
   caller itself (its user ARN; for a role session, the session's ARN or the role's) or
   anyone (``*``); a statement naming the caller's account
   delegates to the account's identity policies, so on its own it allows nobody but the
   root, as on AWS;
5. anything else is an implicit deny.

A statement whose policy variable has no value in the request (``${aws:username}`` for the
root, say) matches nothing, Allow or Deny.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from secretsd.model.identity import Caller

from . import patterns
from .conditions import Unresolved
from .document import Policy, Principals, Statement

DeniedBy = Literal["identity", "resource"]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    denied_by: DeniedBy | None = None


@dataclass(frozen=True, slots=True)
class RequestContext:
    """One request as policies see it.

    ``resource`` is the secret's ARN, or ``*`` for operations on no secret. ``keys`` are the
    condition keys, named as IAM names them (case does not matter); a list is a multivalued
    key (``aws:TagKeys``). Keys about the caller (``aws:username``, ``aws:userid``,
    ``aws:PrincipalArn``, ``aws:PrincipalAccount``, ``aws:PrincipalType``,
    ``aws:PrincipalTag/K``) are filled in from ``caller`` unless ``keys`` gives them; a key
    given as None is absent.
    """

    action: str
    resource: str
    caller: Caller
    keys: Mapping[str, object] = field(default_factory=dict)
    _lookup: dict[str, object] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lookup = _caller_keys(self.caller)
        lookup.update((name.lower(), value) for name, value in self.keys.items())
        now = lookup.get("aws:currenttime")
        if isinstance(now, datetime) and "aws:epochtime" not in lookup:
            lookup["aws:epochtime"] = int(now.timestamp())
        object.__setattr__(self, "_lookup", lookup)

    def lookup(self, key: str) -> object:
        """The value of a lower-cased condition key, or None when the request has none."""
        return self._lookup.get(key)


def _caller_keys(caller: Caller) -> dict[str, object]:
    role = _role_arn(caller)
    keys: dict[str, object] = {
        "aws:principalarn": role or caller.arn,
        "aws:principalaccount": caller.account_id,
        "aws:userid": caller.user_id,
        "aws:principaltype": "Account" if caller.is_root else "AssumedRole" if role else "User",
    }
    # A role session has a session name, not a user name: aws:username is an IAM user's.
    if caller.user_name is not None and role is None:
        keys["aws:username"] = caller.user_name
    for tag, value in caller.tags.items():
        keys[f"aws:principaltag/{tag.lower()}"] = value
    return keys


def _role_arn(caller: Caller) -> str | None:
    """For a role session (``arn:aws:sts::<account>:assumed-role/<role>/<session>``), the
    role's ARN, which policies name it by; None for the root and IAM users."""
    prefix = f"arn:aws:sts::{caller.account_id}:assumed-role/"
    if not caller.arn.startswith(prefix):
        return None
    role = caller.arn[len(prefix) :].partition("/")[0]
    return f"arn:aws:iam::{caller.account_id}:role/{role}"


def _identities(caller: Caller) -> set[str]:
    """The principals a request carries besides the account: the caller's own ARN and, for
    a role session, the role's."""
    role = _role_arn(caller)
    return {caller.arn} if role is None else {caller.arn, role}


def evaluate(
    context: RequestContext,
    identity_policies: Sequence[Policy],
    resource_policy: Policy | None,
) -> Decision:
    identity_allows = False
    for policy in identity_policies:
        for statement in policy.statements:
            if _applies(statement, context, resource_policy=False):
                if statement.effect == "Deny":
                    return Decision(False, "identity")
                identity_allows = True
    resource_allows = False
    if resource_policy is not None:
        for statement in resource_policy.statements:
            if _applies(statement, context, resource_policy=True):
                if statement.effect == "Deny":
                    return Decision(False, "resource")
                resource_allows = resource_allows or _grants(statement, context.caller)
    if context.caller.is_root or identity_allows or resource_allows:
        return Decision(True)
    return Decision(False)


def _applies(statement: Statement, context: RequestContext, *, resource_policy: bool) -> bool:
    if not _action_matches(statement, context.action):
        return False
    if resource_policy and not _principal_matches(statement, context.caller):
        return False
    try:
        if not _resource_matches(statement, context):
            return False
        return all(clause.holds(context.lookup) for clause in statement.conditions)
    except Unresolved:
        return False


def _action_matches(statement: Statement, action: str) -> bool:
    if statement.actions is not None:
        return any(p.fullmatch(action) for p in statement.actions)
    assert statement.not_actions is not None
    return not any(p.fullmatch(action) for p in statement.not_actions)


def _resource_matches(statement: Statement, context: RequestContext) -> bool:
    templates = statement.resources if statement.resources is not None else statement.not_resources
    if templates is None:  # a resource policy's statement without Resource: the secret
        return True
    matched = False
    for template in templates:
        if template.source == "*":
            matched = True
            break
        segments = template.resolve(context.lookup)
        if segments is None:
            raise Unresolved(template.source)
        if patterns.wildcard_match(segments, context.resource):
            matched = True
            break
    return matched if statement.resources is not None else not matched


def _names(principals: Principals, caller: Caller) -> bool:
    """Whether a Principal element names the caller: anyone, its ARN (or its role's), or its
    account."""
    return (
        principals.anyone
        or not principals.arns.isdisjoint(_identities(caller))
        or f"arn:aws:iam::{caller.account_id}:root" in principals.arns
    )


def _principal_matches(statement: Statement, caller: Caller) -> bool:
    if statement.principal is not None:
        return _names(statement.principal, caller)
    if statement.not_principal is not None:
        # A request carries the caller, its role for a session, and its account, and
        # NotPrincipal leaves it out only when it lists them all (AWS's documented way to
        # exempt one user).
        excluded = statement.not_principal
        carried = _identities(caller) | {f"arn:aws:iam::{caller.account_id}:root"}
        return not (excluded.anyone or carried <= excluded.arns)
    return False


def _grants(statement: Statement, caller: Caller) -> bool:
    """Whether an Allow that applies lets the caller in without an identity policy: it must
    name the caller itself (or its role) or anyone, not just the caller's account."""
    if statement.principal is not None:
        principal = statement.principal
        return principal.anyone or not principal.arns.isdisjoint(_identities(caller))
    return statement.not_principal is not None
