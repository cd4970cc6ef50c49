"""Policy documents IAM stores, and the ones it refuses with MalformedPolicyDocument."""

from __future__ import annotations

import json
from typing import Any

import pytest

from secretsd.model.policy import PolicyError, parse_policy

from .policy_support import ACCOUNT


def _text(document: Any) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def _statement(**fields: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*", **fields}


ACCEPTED = [
    # Statement as an object or a list; both language versions; no Version (legacy).
    {"Version": "2012-10-17", "Statement": _statement()},
    {"Version": "2012-10-17", "Statement": [_statement(), _statement(Effect="Deny")]},
    {"Version": "2008-10-17", "Statement": [_statement()]},
    {"Statement": [_statement()]},
    {"Version": "2012-10-17", "Id": "p1", "Statement": [_statement(Sid="One")]},
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "NotAction": "iam:*", "Resource": "*"}],
    },
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:Describe*"],
                "NotResource": "arn:aws:secretsmanager:*:*:secret:prod/*",
                "Condition": {
                    "StringEquals": {"aws:ResourceTag/team": ["a", "b"]},
                    "ForAllValues:StringLike": {"aws:TagKeys": "team*"},
                    "BoolIfExists": {"aws:SecureTransport": True},
                    "NumericLessThan": {"secretsmanager:RecoveryWindowInDays": 30},
                    "Null": {"aws:RequestTag/owner": "false"},
                },
            }
        ],
    },
]


@pytest.mark.parametrize("document", ACCEPTED)
def test_accepted(document: dict[str, Any]) -> None:
    statements = document["Statement"]
    count = len(statements) if isinstance(statements, list) else 1
    assert len(parse_policy(_text(document)).statements) == count


REFUSED = [
    ("not json", "{", "Syntax errors in policy."),
    ("a list", "[]", "Syntax errors in policy."),
    (
        "unknown top-level field",
        {"Statement": [_statement()], "Foo": 1},
        "Syntax errors in policy.",
    ),
    ("no statement", {"Version": "2012-10-17"}, "Syntax errors in policy."),
    (
        "unknown version",
        {"Version": "2019-10-19", "Statement": [_statement()]},
        "The policy failed legacy parsing",
    ),
    (
        "effect in the wrong case",
        {"Version": "2012-10-17", "Statement": [_statement(Effect="allow")]},
        "The policy failed legacy parsing",
    ),
    (
        "no actions",
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*"}]},
        "Policy statement must contain actions.",
    ),
    (
        "empty action list",
        {"Version": "2012-10-17", "Statement": [_statement(Action=[])]},
        "Policy statement must contain actions.",
    ),
    (
        "no resources",
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"}]},
        "Policy statement must contain resources.",
    ),
    (
        "action without a vendor",
        {"Version": "2012-10-17", "Statement": [_statement(Action="GetSecretValue")]},
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
    ),
    (
        "action with two colons",
        {"Version": "2012-10-17", "Statement": [_statement(Action="secretsmanager:a:b")]},
        "Actions/Condition can contain only one colon.",
    ),
    (
        "resource that is not an ARN",
        {"Version": "2012-10-17", "Statement": [_statement(Resource="db/app")]},
        'Resource db/app must be in ARN format or "*".',
    ),
    (
        "Action and NotAction together",
        {"Version": "2012-10-17", "Statement": [_statement(NotAction="s3:*")]},
        "Syntax errors in policy.",
    ),
    (
        "unknown statement field",
        {"Version": "2012-10-17", "Statement": [_statement(Actions="s3:*")]},
        "Syntax errors in policy.",
    ),
    (
        "unknown condition operator",
        {
            "Version": "2012-10-17",
            "Statement": [_statement(Condition={"StringEqualz": {"aws:username": "a"}})],
        },
        "Syntax errors in policy.",
    ),
    (
        "condition without an operator",
        {"Version": "2012-10-17", "Statement": [_statement(Condition={"aws:username": "a"})]},
        "Syntax errors in policy.",
    ),
    (
        "condition key without a vendor",
        {
            "Version": "2012-10-17",
            "Statement": [_statement(Condition={"StringEquals": {"username": "a"}})],
        },
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
    ),
    (
        "Null with IfExists",
        {
            "Version": "2012-10-17",
            "Statement": [_statement(Condition={"NullIfExists": {"aws:username": "true"}})],
        },
        "Syntax errors in policy.",
    ),
    (
        "a qualifier that is not a set operator",
        {
            "Version": "2012-10-17",
            "Statement": [_statement(Condition={"ForSome:StringEquals": {"aws:TagKeys": "a"}})],
        },
        "Syntax errors in policy.",
    ),
]


@pytest.mark.parametrize(
    ("document", "message"), [(d, m) for _, d, m in REFUSED], ids=[n for n, _, _ in REFUSED]
)
def test_refused(document: Any, message: str) -> None:
    with pytest.raises(PolicyError) as refused:
        parse_policy(_text(document))
    assert refused.value.message == message


def test_identity_policies_name_no_principal() -> None:
    document = _text({"Statement": [_statement(Principal={"AWS": ACCOUNT})]})
    assert parse_policy(document)
    with pytest.raises(PolicyError) as refused:
        parse_policy(document, kind="identity")
    assert refused.value.message == "Policy document should not specify a principal."


def test_identity_policy_statement_ids_are_alphanumeric_and_unique() -> None:
    twice = _text({"Statement": [_statement(Sid="A"), _statement(Sid="A")]})
    with pytest.raises(PolicyError) as refused:
        parse_policy(twice, kind="identity")
    assert refused.value.message == "Statement IDs (SID) in a single policy must be unique."
    with pytest.raises(PolicyError) as refused:
        parse_policy(_text({"Statement": [_statement(Sid="read secrets")]}), kind="identity")
    assert refused.value.message.startswith("Statement IDs (SID) must be alpha-numeric.")


def test_resource_policies_need_a_principal_and_may_leave_out_resource() -> None:
    with pytest.raises(PolicyError):
        parse_policy(_text({"Statement": [_statement()]}), kind="resource")
    policy = parse_policy(
        _text(
            {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:Get*"}]}
        ),
        kind="resource",
    )
    assert policy.statements[0].principal is not None


@pytest.mark.parametrize(
    ("principal", "anyone", "arns"),
    [
        ("*", True, set()),
        ({"AWS": "*"}, True, set()),
        ({"AWS": ACCOUNT}, False, {f"arn:aws:iam::{ACCOUNT}:root"}),
        ({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, False, {f"arn:aws:iam::{ACCOUNT}:root"}),
        (
            {"AWS": [f"arn:aws:iam::{ACCOUNT}:user/app", ACCOUNT]},
            False,
            {f"arn:aws:iam::{ACCOUNT}:user/app", f"arn:aws:iam::{ACCOUNT}:root"},
        ),
        ({"Service": "lambda.amazonaws.com"}, False, set()),
    ],
)
def test_principals_are_normalised_to_arns(principal: Any, anyone: bool, arns: set[str]) -> None:
    policy = parse_policy(_text({"Statement": [_statement(Principal=principal)]}), kind="resource")
    parsed = policy.statements[0].principal
    assert parsed is not None
    assert parsed.anyone is anyone
    assert parsed.arns == arns


@pytest.mark.parametrize(
    "principal",
    [{"AWS": "arn:aws:iam::111122223333:user/*"}, {"AWS": "app"}, {"Alien": "x"}, {}, 5],
)
def test_bad_principals_are_refused(principal: Any) -> None:
    with pytest.raises(PolicyError):
        parse_policy(_text({"Statement": [_statement(Principal=principal)]}), kind="resource")
