"""Condition operators, one row per rule of IAM's documentation."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from .policy_support import NOON, allow, decide, policy, request, user

MISSING: dict[str, object] = {}


def holds(condition: dict[str, Any], keys: dict[str, object], **caller_tags: str) -> bool:
    """Whether an Allow with this Condition allows a request with these keys."""
    context = request(caller=user("app", **caller_tags), keys=keys)
    return decide(context, policy(allow(Condition=condition))).allowed


TEAM = "aws:ResourceTag/team"

CASES = [
    # String operators: exact and case-sensitive, ignoring case, wildcards.
    ({"StringEquals": {TEAM: "web"}}, {TEAM: "web"}, True),
    ({"StringEquals": {TEAM: "web"}}, {TEAM: "Web"}, False),
    ({"StringEquals": {TEAM: "w*"}}, {TEAM: "web"}, False),
    ({"StringEquals": {TEAM: ["db", "web"]}}, {TEAM: "web"}, True),  # values OR'ed
    ({"StringEquals": {TEAM: "web"}}, MISSING, False),
    ({"StringNotEquals": {TEAM: "web"}}, {TEAM: "db"}, True),
    ({"StringNotEquals": {TEAM: ["db", "web"]}}, {TEAM: "web"}, False),  # values NOR'ed
    ({"StringNotEquals": {TEAM: ["db", "web"]}}, {TEAM: "ops"}, True),
    ({"StringNotEquals": {TEAM: "web"}}, MISSING, True),  # negated on a missing key
    ({"StringEqualsIgnoreCase": {TEAM: "WEB"}}, {TEAM: "web"}, True),
    ({"StringNotEqualsIgnoreCase": {TEAM: "WEB"}}, {TEAM: "web"}, False),
    ({"StringLike": {TEAM: "w?b*"}}, {TEAM: "webapp"}, True),
    ({"StringLike": {TEAM: "w?b*"}}, {TEAM: "Webapp"}, False),
    ({"StringNotLike": {TEAM: "w*"}}, {TEAM: "db"}, True),
    ({"StringNotLike": {TEAM: "w*"}}, MISSING, True),
    ({"StringLike": {TEAM: "w${*}"}}, {TEAM: "w*"}, True),
    ({"StringLike": {TEAM: "w${*}"}}, {TEAM: "web"}, False),
    ({"StringEquals": {TEAM: "${$}{x}"}}, {TEAM: "${x}"}, True),
    # IfExists: the test applies only when the key is there.
    ({"StringEqualsIfExists": {TEAM: "web"}}, MISSING, True),
    ({"StringEqualsIfExists": {TEAM: "web"}}, {TEAM: "db"}, False),
    ({"StringNotEqualsIfExists": {TEAM: "web"}}, {TEAM: "web"}, False),
    # Numbers.
    (
        {"NumericLessThan": {"secretsmanager:RecoveryWindowInDays": "10"}},
        {"secretsmanager:RecoveryWindowInDays": 7},
        True,
    ),
    (
        {"NumericLessThan": {"secretsmanager:RecoveryWindowInDays": 7}},
        {"secretsmanager:RecoveryWindowInDays": 7},
        False,
    ),
    (
        {"NumericLessThanEquals": {"secretsmanager:RecoveryWindowInDays": 7}},
        {"secretsmanager:RecoveryWindowInDays": "7"},
        True,
    ),
    (
        {"NumericGreaterThan": {"secretsmanager:RecoveryWindowInDays": 6.5}},
        {"secretsmanager:RecoveryWindowInDays": 7},
        True,
    ),
    (
        {"NumericGreaterThanEquals": {"secretsmanager:RecoveryWindowInDays": 8}},
        {"secretsmanager:RecoveryWindowInDays": 7},
        False,
    ),
    (
        {"NumericEquals": {"secretsmanager:RecoveryWindowInDays": "7.0"}},
        {"secretsmanager:RecoveryWindowInDays": 7},
        True,
    ),
    (
        {"NumericNotEquals": {"secretsmanager:RecoveryWindowInDays": 7}},
        {"secretsmanager:RecoveryWindowInDays": 30},
        True,
    ),
    (
        {"NumericEquals": {"secretsmanager:RecoveryWindowInDays": "seven"}},
        {"secretsmanager:RecoveryWindowInDays": 7},
        False,
    ),
    ({"NumericLessThan": {"secretsmanager:RecoveryWindowInDays": 10}}, MISSING, False),
    # Dates: ISO 8601 or epoch seconds.
    (
        {"DateLessThan": {"aws:CurrentTime": "2026-06-01T12:00:01Z"}},
        {"aws:CurrentTime": NOON},
        True,
    ),
    (
        {"DateLessThan": {"aws:CurrentTime": "2026-06-01T12:00:00Z"}},
        {"aws:CurrentTime": NOON},
        False,
    ),
    (
        {"DateLessThanEquals": {"aws:CurrentTime": "2026-06-01T12:00:00Z"}},
        {"aws:CurrentTime": NOON},
        True,
    ),
    (
        {"DateEquals": {"aws:CurrentTime": "2026-06-01T14:00:00+02:00"}},
        {"aws:CurrentTime": NOON},
        True,
    ),
    ({"DateNotEquals": {"aws:CurrentTime": "2026-06-01"}}, {"aws:CurrentTime": NOON}, True),
    ({"DateGreaterThan": {"aws:CurrentTime": "2026-06-01"}}, {"aws:CurrentTime": NOON}, True),
    (
        {"DateGreaterThanEquals": {"aws:CurrentTime": int(NOON.timestamp())}},
        {"aws:CurrentTime": NOON},
        True,
    ),
    ({"DateGreaterThan": {"aws:CurrentTime": "not a date"}}, {"aws:CurrentTime": NOON}, False),
    # Booleans: the JSON literal or the string, any case.
    ({"Bool": {"aws:SecureTransport": True}}, {"aws:SecureTransport": True}, True),
    ({"Bool": {"aws:SecureTransport": "TRUE"}}, {"aws:SecureTransport": True}, True),
    ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": False}, False),
    ({"Bool": {"aws:SecureTransport": "false"}}, MISSING, False),
    ({"BoolIfExists": {"aws:SecureTransport": "true"}}, MISSING, True),
    # Binary: base64 in the policy.
    (
        {"BinaryEquals": {"aws:x": base64.b64encode(b"\x00\x01").decode()}},
        {"aws:x": b"\x00\x01"},
        True,
    ),
    (
        {"BinaryEquals": {"aws:x": base64.b64encode(b"\x00\x01").decode()}},
        {"aws:x": b"\x00\x02"},
        False,
    ),
    # Addresses.
    ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}, True),
    ({"IpAddress": {"aws:SourceIp": "10.1.2.3"}}, {"aws:SourceIp": "10.1.2.3"}, True),
    ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "11.1.2.3"}, False),
    ({"IpAddress": {"aws:SourceIp": "2001:db8::/32"}}, {"aws:SourceIp": "2001:db8::5"}, True),
    ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "::ffff:1.2.3.4"}, False),
    ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "11.1.2.3"}, True),
    ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, MISSING, True),
    ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, MISSING, False),
    # ARNs: each of six parts on its own.
    ({"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/app"}}, MISSING, True),
    ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}}, MISSING, True),
    ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}, MISSING, False),
    ({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}, MISSING, True),
    ({"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/app"}}, MISSING, False),
    (
        {"ArnLike": {"aws:SourceArn": "arn:aws:*"}},
        {"aws:SourceArn": "arn:aws:lambda:r:1:function:f"},
        False,
    ),
    (
        {"ArnLike": {"aws:SourceArn": "arn:aws:lambda:*:*:function:f"}},
        {"aws:SourceArn": "not-an-arn"},
        False,
    ),
    (
        {"ArnLike": {"aws:SourceArn": "arn:aws:lambda:*:*:function:*"}},
        {"aws:SourceArn": "arn:aws:lambda:r:1:function:f:live"},
        True,
    ),
    # Null: the key's absence.
    ({"Null": {TEAM: "true"}}, MISSING, True),
    ({"Null": {TEAM: "true"}}, {TEAM: "web"}, False),
    ({"Null": {TEAM: "false"}}, {TEAM: "web"}, True),
    ({"Null": {TEAM: "false"}}, {"aws:TagKeys": []}, False),
    ({"Null": {"aws:TagKeys": "true"}}, {"aws:TagKeys": []}, True),
    # Several keys are AND'ed, and so are several operators.
    ({"StringEquals": {TEAM: "web", "aws:ResourceTag/env": "prod"}}, {TEAM: "web"}, False),
    (
        {"StringEquals": {TEAM: "web", "aws:ResourceTag/env": "prod"}},
        {TEAM: "web", "aws:ResourceTag/env": "prod"},
        True,
    ),
    (
        {"StringEquals": {TEAM: "web"}, "Bool": {"aws:SecureTransport": "true"}},
        {TEAM: "web"},
        False,
    ),
    # Keys about the caller come from the caller.
    ({"StringEquals": {"aws:username": "app"}}, MISSING, True),
    ({"StringEquals": {"aws:PrincipalType": "User"}}, MISSING, True),
    ({"StringEquals": {"aws:PrincipalAccount": "111122223333"}}, MISSING, True),
    ({"StringLike": {"aws:userid": "AIDA*"}}, MISSING, True),
]


@pytest.mark.parametrize(("condition", "keys", "expected"), CASES)
def test_operator(condition: dict[str, Any], keys: dict[str, object], expected: bool) -> None:
    assert holds(condition, keys) is expected


TAG_KEYS = "aws:TagKeys"
SETS = [
    # ForAllValues: every request value is among the policy's; true with no values at all.
    ("ForAllValues:StringEquals", ["a", "b"], ["a"], True),
    ("ForAllValues:StringEquals", ["a", "b"], ["a", "b"], True),
    ("ForAllValues:StringEquals", ["a", "b"], ["a", "c"], False),
    ("ForAllValues:StringEquals", ["a", "b"], None, True),
    ("ForAllValues:StringEquals", ["a", "b"], [], True),
    ("ForAllValues:StringLike", ["team*"], ["team", "teammate"], True),
    ("ForAllValues:StringNotEquals", ["a"], ["b", "c"], True),
    ("ForAllValues:StringNotEquals", ["a"], ["a", "c"], False),
    # ForAnyValue: at least one request value is among the policy's; false with none.
    ("ForAnyValue:StringEquals", ["a", "b"], ["c", "b"], True),
    ("ForAnyValue:StringEquals", ["a", "b"], ["c"], False),
    ("ForAnyValue:StringEquals", ["a", "b"], None, False),
    ("ForAnyValue:StringEquals", ["a", "b"], [], False),
    ("ForAnyValue:StringEqualsIfExists", ["a"], None, True),
    ("ForAnyValue:StringNotEquals", ["a", "b"], ["a", "c"], True),
    ("ForAnyValue:StringNotEquals", ["a", "b"], ["a", "b"], False),
    ("ForAnyValue:StringNotEquals", ["a", "b"], None, False),
    # No qualifier on a list: any value for the positive operator, none for the negated.
    ("StringEquals", ["a"], ["b", "a"], True),
    ("StringNotEquals", ["a"], ["b", "a"], False),
    ("StringNotEquals", ["a"], ["b", "c"], True),
]


@pytest.mark.parametrize(("operator", "values", "request_values", "expected"), SETS)
def test_set_qualifier(
    operator: str, values: list[str], request_values: list[str] | None, expected: bool
) -> None:
    keys: dict[str, object] = {} if request_values is None else {TAG_KEYS: request_values}
    assert holds({operator: {TAG_KEYS: values}}, keys) is expected


def test_variables_in_condition_values() -> None:
    same_team = {"StringEquals": {TEAM: "${aws:PrincipalTag/team}"}}
    assert holds(same_team, {TEAM: "web"}, team="web")
    assert not holds(same_team, {TEAM: "db"}, team="web")
    # No such tag on the caller: the statement does not match, whatever the operator.
    assert not holds(same_team, {TEAM: "web"})
    assert not holds({"StringNotEquals": {TEAM: "${aws:PrincipalTag/team}"}}, {TEAM: "web"})
    own_arn = {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/${aws:username}"}}
    assert holds(own_arn, {})
    assert not holds({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/x${aws:username}"}}, {})
    own_prefix = {"StringLike": {"secretsmanager:Name": "${aws:username}/*"}}
    assert holds(own_prefix, {"secretsmanager:Name": "app/db"})
    assert not holds(own_prefix, {"secretsmanager:Name": "other/db"})


def test_a_naive_time_is_utc() -> None:
    naive = datetime(2026, 6, 1, 12, 0)
    assert holds(
        {"DateEquals": {"aws:CurrentTime": "2026-06-01T12:00:00Z"}}, {"aws:CurrentTime": naive}
    )
    assert holds(
        {"DateEquals": {"aws:CurrentTime": "2026-06-01T12:00:00"}},
        {"aws:CurrentTime": datetime(2026, 6, 1, 12, 0, tzinfo=UTC)},
    )
