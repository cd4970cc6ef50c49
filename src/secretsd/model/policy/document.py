"""Policy documents: the IAM JSON policy grammar, parsed once into matchable statements.

``parse_policy`` checks a document the way IAM does when it stores one, and refuses a bad
one with ``PolicyError`` carrying IAM's MalformedPolicyDocument message. What it returns is
ready for evaluation: actions compiled to patterns, strings split into text, escapes and
policy variables, principals normalised to ARNs, conditions to clauses.

``kind`` says where the policy goes: ``"identity"`` (attached to a user: no Principal,
statement ids alphanumeric and unique, as IAM's PutUserPolicy demands), ``"resource"``
(attached to a secret: Principal or NotPrincipal required, Resource optional and meaning the
secret), or None for the grammar alone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from . import conditions, patterns
from .conditions import Clause
from .patterns import Template

Kind = Literal["identity", "resource"] | None
Effect = Literal["Allow", "Deny"]

VERSION_2012 = "2012-10-17"
VERSION_2008 = "2008-10-17"

# IAM's MalformedPolicyDocument messages, verbatim.
SYNTAX = "Syntax errors in policy."
LEGACY = "The policy failed legacy parsing"
NO_ACTIONS = "Policy statement must contain actions."
NO_RESOURCES = "Policy statement must contain resources."
NO_PRINCIPAL_ALLOWED = "Policy document should not specify a principal."
PRINCIPAL_REQUIRED = "Missing required field Principal"
VENDOR = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
ONE_COLON = "Actions/Condition can contain only one colon."
SID_UNIQUE = "Statement IDs (SID) in a single policy must be unique."
SID_ALPHANUMERIC = (
    "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular "
    "expression [0-9A-Za-z]*"
)
INVALID_PRINCIPAL = "Invalid principal in policy"

_TOP_LEVEL = frozenset({"Version", "Id", "Statement"})
_STATEMENT = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_SID = re.compile(r"[0-9A-Za-z]*")
_ACCOUNT_ID = re.compile(r"[0-9]{12}")


class PolicyError(Exception):
    """A policy document IAM would refuse; ``message`` is what IAM says."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Principals:
    """The principals a Principal (or NotPrincipal) element names."""

    anyone: bool  # "*" or {"AWS": "*"}
    # IAM principals as ARNs; an account id is written as the account's root ARN.
    arns: frozenset[str]
    # Service, Federated and CanonicalUser principals: kept, never a secretsd caller.
    others: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Statement:
    effect: Effect
    sid: str | None
    actions: tuple[re.Pattern[str], ...] | None
    not_actions: tuple[re.Pattern[str], ...] | None
    resources: tuple[Template, ...] | None
    not_resources: tuple[Template, ...] | None
    principal: Principals | None
    not_principal: Principals | None
    conditions: tuple[Clause, ...]

    @property
    def has_conditions(self) -> bool:
        return bool(self.conditions)


@dataclass(frozen=True, slots=True)
class Policy:
    version: str
    statements: tuple[Statement, ...]
    id: str | None = None


def parse_policy(text: str, *, kind: Kind = None) -> Policy:
    """Parse and check a JSON policy document; ``PolicyError`` says what is wrong."""
    try:
        document = json.loads(text)
    except (ValueError, TypeError, RecursionError):
        raise PolicyError(SYNTAX) from None
    if not isinstance(document, dict) or not set(document) <= _TOP_LEVEL:
        raise PolicyError(SYNTAX)
    version = document.get("Version", VERSION_2008)
    if version not in (VERSION_2012, VERSION_2008):
        raise PolicyError(LEGACY)
    policy_id = document.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise PolicyError(SYNTAX)
    raw = document.get("Statement")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(s, dict) for s in raw):
        raise PolicyError(SYNTAX)
    statements = tuple(_statement(s, version=version, kind=kind) for s in raw)
    if kind == "identity":
        sids = [s.sid for s in statements if s.sid]
        if len(sids) != len(set(sids)):
            raise PolicyError(SID_UNIQUE)
    return Policy(version=version, statements=statements, id=policy_id)


def _statement(raw: dict[str, Any], *, version: str, kind: Kind) -> Statement:
    if not set(raw) <= _STATEMENT:
        raise PolicyError(SYNTAX)
    effect = raw.get("Effect")
    if effect is None or not isinstance(effect, str):
        raise PolicyError(SYNTAX)
    if effect not in ("Allow", "Deny"):
        raise PolicyError(LEGACY)
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicyError(SYNTAX)
    if kind == "identity" and sid and not _SID.fullmatch(sid):
        raise PolicyError(SID_ALPHANUMERIC)
    variables = version == VERSION_2012

    actions = _pair(raw, "Action", "NotAction")
    if actions is None:
        raise PolicyError(NO_ACTIONS)
    resources = _pair(raw, "Resource", "NotResource")
    if resources is None and kind != "resource":
        raise PolicyError(NO_RESOURCES)
    principals = _pair(raw, "Principal", "NotPrincipal", strings_only=False)
    if principals is not None and kind == "identity":
        raise PolicyError(NO_PRINCIPAL_ALLOWED)
    if principals is None and kind == "resource":
        raise PolicyError(PRINCIPAL_REQUIRED)

    action_patterns = tuple(_action(a) for a in actions[1])
    resource_templates = (
        None if resources is None else tuple(_resource(r, variables) for r in resources[1])
    )
    principal = None if principals is None else _principals(principals[1])
    return Statement(
        effect=effect,  # type: ignore[arg-type]
        sid=sid,
        actions=action_patterns if actions[0] == "Action" else None,
        not_actions=action_patterns if actions[0] == "NotAction" else None,
        resources=resource_templates if resources and resources[0] == "Resource" else None,
        not_resources=resource_templates if resources and resources[0] == "NotResource" else None,
        principal=principal if principals and principals[0] == "Principal" else None,
        not_principal=principal if principals and principals[0] == "NotPrincipal" else None,
        conditions=_conditions(raw.get("Condition"), variables),
    )


def _pair(
    raw: dict[str, Any], name: str, negated: str, *, strings_only: bool = True
) -> tuple[str, Any] | None:
    """Which of an element and its Not form the statement has, and its value; both at once
    is a syntax error, and an empty list counts as neither."""
    if name in raw and negated in raw:
        raise PolicyError(SYNTAX)
    for key in (name, negated):
        if key in raw:
            value = raw[key]
            if not strings_only:
                return key, value
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise PolicyError(SYNTAX)
            if not values:
                return None
            return key, values
    return None


def _action(action: str) -> re.Pattern[str]:
    if action != "*":
        vendor, colon, rest = action.partition(":")
        if not colon or not vendor:
            raise PolicyError(VENDOR)
        if ":" in rest:
            raise PolicyError(ONE_COLON)
    return patterns.compile_pattern(((action, True),), True)


def _resource(resource: str, variables: bool) -> Template:
    # IAM checks more of an ARN than its prefix; a looser check refuses no valid policy.
    if resource != "*" and not resource.startswith("arn:"):
        raise PolicyError(f'Resource {resource} must be in ARN format or "*".')
    return patterns.parse_template(resource, variables=variables)


def _principals(raw: object) -> Principals:
    if raw == "*":
        return Principals(anyone=True, arns=frozenset())
    if not isinstance(raw, dict) or not raw:
        raise PolicyError(SYNTAX)
    anyone = False
    arns: set[str] = set()
    others: list[tuple[str, str]] = []
    for kind, value in raw.items():
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not values:
            raise PolicyError(SYNTAX)
        if not all(isinstance(v, str) for v in values):
            raise PolicyError(SYNTAX)
        if kind == "AWS":
            for entry in values:
                if entry == "*":
                    anyone = True
                elif _ACCOUNT_ID.fullmatch(entry):
                    arns.add(f"arn:aws:iam::{entry}:root")
                elif entry.startswith("arn:") and "*" not in entry and "?" not in entry:
                    arns.add(entry)
                else:
                    raise PolicyError(INVALID_PRINCIPAL)
        elif kind in ("Service", "Federated", "CanonicalUser"):
            others.extend((kind, entry) for entry in values)
        else:
            raise PolicyError(SYNTAX)
    return Principals(anyone=anyone, arns=frozenset(arns), others=tuple(others))


def _conditions(raw: object, variables: bool) -> tuple[Clause, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise PolicyError(SYNTAX)
    clauses: list[Clause] = []
    for name, block in raw.items():
        found = conditions.find_operator(name)
        if found is None or not isinstance(block, dict) or not block:
            raise PolicyError(SYNTAX)
        operator, qualifier, if_exists = found
        for key, value in block.items():
            vendor, colon, _ = key.partition(":")
            if not colon or not vendor:
                raise PolicyError(VENDOR)
            values = value if isinstance(value, list) else [value]
            if not values or not all(_is_scalar(v) for v in values):
                raise PolicyError(SYNTAX)
            templates = tuple(
                patterns.parse_template(_scalar(v), variables=variables) for v in values
            )
            clauses.append(Clause(operator, qualifier, if_exists, key.lower(), templates))
    return tuple(clauses)


def _is_scalar(value: object) -> bool:
    return isinstance(value, (str, bool, int, float))


def _scalar(value: str | bool | int | float) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
