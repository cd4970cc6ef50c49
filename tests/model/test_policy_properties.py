"""Invariants of the evaluation logic over generated policies and requests."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from secretsd.model.policy import Policy, evaluate, parse_policy

from .policy_support import ACCOUNT, ROOT, allow, policy, request, user

ACTIONS = [
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:ListSecrets",
    "iam:GetUser",
]
ACTION_PATTERNS = [
    "*",
    "secretsmanager:*",
    "secretsmanager:Get*",
    "SECRETSMANAGER:*secret*",
    "iam:*",
]
ARNS = [
    f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:db/app-AbCdEf",
    f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/web-XyZxYz",
    "*",
]
RESOURCE_PATTERNS = ["*", "arn:aws:secretsmanager:*:*:secret:db/*", "arn:aws:secretsmanager:*"]
CONDITIONS: list[dict[str, Any] | None] = [
    None,
    {"StringEquals": {"aws:ResourceTag/team": "web"}},
    {"StringNotEquals": {"aws:ResourceTag/team": "web"}},
    {"Bool": {"aws:SecureTransport": "true"}},
    {"ForAnyValue:StringLike": {"aws:TagKeys": "t*"}},
    {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
]
KEYS: list[dict[str, object]] = [
    {},
    {"aws:ResourceTag/team": "web"},
    {"aws:ResourceTag/team": "db", "aws:SecureTransport": True},
    {"aws:TagKeys": ["team"], "aws:SourceIp": "10.1.1.1"},
]


@st.composite
def statements(draw: st.DrawFn, effect: str | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": effect or draw(st.sampled_from(["Allow", "Deny"])),
        "Action": draw(st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=2)),
        "Resource": draw(st.sampled_from(RESOURCE_PATTERNS)),
    }
    condition = draw(st.sampled_from(CONDITIONS))
    if condition is not None:
        statement["Condition"] = condition
    return statement


def _policy(statements: list[dict[str, Any]]) -> Policy:
    return parse_policy(json.dumps({"Version": "2012-10-17", "Statement": statements}))


requests = st.builds(
    request,
    action=st.sampled_from(ACTIONS),
    resource=st.sampled_from(ARNS),
    caller=st.sampled_from([user("app"), user("ops", team="web"), ROOT]),
    keys=st.sampled_from(KEYS),
)


@given(st.lists(statements(), max_size=4), statements(effect="Deny"), requests)
def test_adding_a_deny_never_allows_more(
    existing: list[dict[str, Any]], extra: dict[str, Any], context: Any
) -> None:
    before = evaluate(context, [_policy(existing)] if existing else [], None)
    after = evaluate(context, [_policy([*existing, extra])], None)
    assert before.allowed or not after.allowed


@given(st.lists(statements(), max_size=4), statements(effect="Allow"), requests)
def test_adding_an_allow_never_denies_more(
    existing: list[dict[str, Any]], extra: dict[str, Any], context: Any
) -> None:
    before = evaluate(context, [_policy(existing)] if existing else [], None)
    after = evaluate(context, [_policy([*existing, extra])], None)
    assert after.allowed or not before.allowed
    assert after.denied_by == before.denied_by or after.allowed


@given(st.lists(statements(), min_size=1, max_size=4), st.randoms(), requests)
def test_statement_and_policy_order_do_not_matter(
    existing: list[dict[str, Any]], random: Any, context: Any
) -> None:
    shuffled = list(existing)
    random.shuffle(shuffled)
    split = [_policy([s]) for s in shuffled]
    assert evaluate(context, [_policy(existing)], None) == evaluate(context, split, None)


@given(st.lists(statements(), max_size=3), requests)
def test_an_explicit_deny_that_matches_always_refuses(
    existing: list[dict[str, Any]], context: Any
) -> None:
    everything = {"Effect": "Deny", "Action": "*", "Resource": "*"}
    decision = evaluate(context, [_policy([*existing, everything])], None)
    assert not decision.allowed and decision.denied_by == "identity"


_NAME = st.text(alphabet="abAB:/-*?", max_size=8)
_ACTION_NAME = st.text(alphabet="abAB-*?", max_size=8)


@given(_ACTION_NAME, _ACTION_NAME)
def test_action_wildcards_match_as_case_insensitive_globs(pattern: str, name: str) -> None:
    action_pattern = f"svc:{pattern}"
    action = f"svc:{name}"
    granted = evaluate(request(action=action), [policy(allow(action_pattern))], None).allowed
    assert granted is fnmatch.fnmatchcase(action.lower(), action_pattern.lower())


@given(_NAME, _NAME)
def test_resource_wildcards_match_as_case_sensitive_globs(pattern: str, name: str) -> None:
    resource_pattern = f"arn:{pattern}"
    resource = f"arn:{name}"
    granted = evaluate(
        request(resource=resource), [policy(allow(resource=resource_pattern))], None
    ).allowed
    assert granted is fnmatch.fnmatchcase(resource, resource_pattern)


NEGATIONS = [
    ("StringEquals", "StringNotEquals"),
    ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase"),
    ("StringLike", "StringNotLike"),
    ("NumericEquals", "NumericNotEquals"),
    ("DateEquals", "DateNotEquals"),
    ("IpAddress", "NotIpAddress"),
    ("ArnLike", "ArnNotLike"),
    ("ArnEquals", "ArnNotEquals"),
]
_VALUES = st.sampled_from(
    ["a", "A", "a*", "?", "10", "10.0", "2026-06-01", "10.0.0.0/8", "10.1.1.1", "arn:aws:s:r:1:x"]
)


def _holds(operator: str, values: list[str], keys: dict[str, object]) -> bool:
    statement = allow(Condition={operator: {"aws:k": values}})
    return evaluate(request(keys=keys), [policy(statement)], None).allowed


@given(st.sampled_from(NEGATIONS), st.lists(_VALUES, min_size=1, max_size=3), st.none() | _VALUES)
def test_negated_operators_are_complements_and_ifexists_only_spares_absence(
    pair: tuple[str, str], values: list[str], present: str | None
) -> None:
    positive, negated = pair
    keys: dict[str, object] = {} if present is None else {"aws:k": present}
    if present is None:
        assert not _holds(positive, values, keys)
        assert _holds(negated, values, keys)
    else:
        assert _holds(negated, values, keys) is not _holds(positive, values, keys)
    for operator in pair:
        expected = present is None or _holds(operator, values, keys)
        assert _holds(operator + "IfExists", values, keys) is expected
