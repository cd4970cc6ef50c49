"""IAM's evaluation logic, on the policies AWS documents for Secrets Manager."""

from __future__ import annotations

import pytest

from secretsd.model.identity import Caller
from secretsd.model.policy import Decision

from .policy_support import (
    ACCOUNT,
    NOON,
    REGION,
    ROOT,
    SECRET_ARN,
    allow,
    decide,
    deny,
    policy,
    request,
    user,
)

ALLOWED = Decision(True)
IMPLICIT = Decision(False)
BY_IDENTITY = Decision(False, "identity")
BY_RESOURCE = Decision(False, "resource")
APP_ARN = f"arn:aws:iam::{ACCOUNT}:user/app"


def test_nothing_allows_nothing() -> None:
    assert decide(request()) == IMPLICIT


def test_an_allow_allows_and_an_explicit_deny_wins() -> None:
    reading = policy(allow("secretsmanager:GetSecretValue"))
    assert decide(request(), reading) == ALLOWED
    assert decide(request(), reading, policy(deny())) == BY_IDENTITY
    assert decide(request(), reading, resource_policy=policy(deny(Principal="*"))) == BY_RESOURCE


@pytest.mark.parametrize(
    ("action", "requested", "allowed"),
    [
        ("secretsmanager:GetSecretValue", "secretsmanager:GetSecretValue", True),
        ("SecretsManager:getsecretvalue", "secretsmanager:GetSecretValue", True),
        ("secretsmanager:Get*", "secretsmanager:GetSecretValue", True),
        ("secretsmanager:Get*", "secretsmanager:GetRandomPassword", True),
        ("secretsmanager:Get*", "secretsmanager:PutSecretValue", False),
        ("secretsmanager:*Secret", "secretsmanager:DescribeSecret", True),
        ("secretsmanager:?escribeSecret", "secretsmanager:DescribeSecret", True),
        ("secretsmanager:?escribeSecret", "secretsmanager:DDescribeSecret", False),
        ("*", "secretsmanager:DeleteSecret", True),
        ("iam:*", "secretsmanager:DeleteSecret", False),
        (["iam:GetUser", "secretsmanager:List*"], "secretsmanager:ListSecrets", True),
    ],
)
def test_actions_match_with_wildcards_ignoring_case(
    action: str | list[str], requested: str, allowed: bool
) -> None:
    assert decide(request(requested), policy(allow(action))).allowed is allowed


def test_not_action_allows_everything_else() -> None:
    everything_but_deleting = policy(
        {"Effect": "Allow", "NotAction": "secretsmanager:Delete*", "Resource": "*"}
    )
    assert decide(request(), everything_but_deleting) == ALLOWED
    assert decide(request("secretsmanager:DeleteSecret"), everything_but_deleting) == IMPLICIT


@pytest.mark.parametrize(
    ("resource", "allowed"),
    [
        (SECRET_ARN, True),
        (f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:db/app-??????", True),
        (f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:db/app-?????", False),
        ("arn:aws:secretsmanager:*:*:secret:db/*", True),
        ("arn:aws:secretsmanager:*:*:secret:DB/*", False),  # resources are case-sensitive
        ("arn:aws:secretsmanager:*:*:secret:prod/*", False),
        ("arn:aws:secretsmanager:*:999999999999:secret:*", False),
        ("arn:aws:secretsmanager:*", True),
        ("*", True),
    ],
)
def test_resources_match_with_wildcards_keeping_case(resource: str, allowed: bool) -> None:
    assert decide(request(), policy(allow(resource=resource))).allowed is allowed


def test_listing_needs_a_statement_for_every_resource() -> None:
    # ListSecrets acts on no secret: only "*" covers it.
    listing = request("secretsmanager:ListSecrets", "*")
    assert decide(listing, policy(allow(resource="arn:aws:secretsmanager:*:*:secret:*"))) == (
        IMPLICIT
    )
    assert decide(listing, policy(allow())) == ALLOWED


def test_not_resource() -> None:
    outside_prod = policy(
        {
            "Effect": "Allow",
            "Action": "secretsmanager:*",
            "NotResource": "arn:aws:secretsmanager:*:*:secret:prod/*",
        }
    )
    prod = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prod/db-AbCdEf"
    assert decide(request(), outside_prod) == ALLOWED
    assert decide(request(resource=prod), outside_prod) == IMPLICIT


def test_each_user_reads_the_secrets_under_its_own_name() -> None:
    # AWS's example: a path per user, named by ${aws:username}.
    own = policy(allow(resource="arn:aws:secretsmanager:*:*:secret:${aws:username}/*"))
    alice = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:alice/db-AbCdEf"
    assert decide(request(resource=alice, caller=user("alice")), own) == ALLOWED
    assert decide(request(resource=alice, caller=user("bob")), own) == IMPLICIT
    # The root has no user name: the statement matches nothing, not even a Deny.
    assert decide(request(resource=alice, caller=ROOT), policy(deny(resource=own_arn()))) == (
        ALLOWED
    )


def own_arn() -> str:
    return "arn:aws:secretsmanager:*:*:secret:${aws:username}/*"


def test_a_substituted_value_is_literal_and_escapes_are_characters() -> None:
    starry = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:a*/x-AbCdEf"
    other = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:ab/x-AbCdEf"
    own = policy(allow(resource="arn:aws:secretsmanager:*:*:secret:${aws:username}/*"))
    assert decide(request(resource=starry, caller=user("a*")), own) == ALLOWED
    assert decide(request(resource=other, caller=user("a*")), own) == IMPLICIT
    literal_star = policy(allow(resource="arn:aws:secretsmanager:*:*:secret:a${*}/*"))
    assert decide(request(resource=starry), literal_star) == ALLOWED
    assert decide(request(resource=other), literal_star) == IMPLICIT
    # In the 2008 language ${...} is plain text.
    legacy = policy(
        allow(resource="arn:aws:secretsmanager:*:*:secret:${aws:username}/*"), version="2008-10-17"
    )
    alice = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:alice/db-AbCdEf"
    assert decide(request(resource=alice, caller=user("alice")), legacy) == IMPLICIT


def test_a_variable_default_stands_in_for_a_missing_key() -> None:
    shared = policy(
        allow(resource="arn:aws:secretsmanager:*:*:secret:${aws:PrincipalTag/team, 'shared'}/*")
    )
    shared_arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:shared/x-AbCdEf"
    team_arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:web/x-AbCdEf"
    assert decide(request(resource=shared_arn, caller=user("untagged")), shared) == ALLOWED
    assert decide(request(resource=team_arn, caller=user("dev", team="web")), shared) == ALLOWED
    assert decide(request(resource=shared_arn, caller=user("dev", team="web")), shared) == (
        IMPLICIT
    )


def test_abac_secret_tag_matches_principal_tag() -> None:
    # AWS's ABAC example: access when the secret's tag equals the caller's tag.
    abac = policy(
        allow(
            ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            Condition={
                "StringEquals": {
                    "aws:ResourceTag/access-project": "${aws:PrincipalTag/access-project}"
                }
            },
        )
    )
    tagged = {"aws:ResourceTag/access-project": "peg"}
    assert decide(request(caller=user("a", **{"access-project": "peg"}), keys=tagged), abac) == (
        ALLOWED
    )
    assert decide(request(caller=user("b", **{"access-project": "cat"}), keys=tagged), abac) == (
        IMPLICIT
    )
    # A caller without the tag: the variable has no value, the statement does not match.
    assert decide(request(caller=user("c"), keys=tagged), abac) == IMPLICIT


def test_deny_outside_the_corporate_networks() -> None:
    # AWS's example: deny every action from outside two address ranges.
    networks = policy(
        allow(),
        deny(
            "*",
            Condition={"NotIpAddress": {"aws:SourceIp": ["192.0.2.0/24", "203.0.113.0/24"]}},
        ),
    )
    assert decide(request(keys={"aws:SourceIp": "192.0.2.17"}), networks) == ALLOWED
    assert decide(request(keys={"aws:SourceIp": "203.0.113.255"}), networks) == ALLOWED
    assert decide(request(keys={"aws:SourceIp": "198.51.100.1"}), networks) == BY_IDENTITY
    assert decide(request(keys={"aws:SourceIp": "2001:db8::1"}), networks) == BY_IDENTITY
    # No source address at all: a negated operator on a missing key holds.
    assert decide(request(), networks) == BY_IDENTITY


def test_deny_without_tls() -> None:
    secure = policy(allow(), deny(Condition={"Bool": {"aws:SecureTransport": "false"}}))
    assert decide(request(keys={"aws:SecureTransport": True}), secure) == ALLOWED
    assert decide(request(keys={"aws:SecureTransport": False}), secure) == BY_IDENTITY
    # Missing key: Bool is not negated, so the Deny does not apply.
    assert decide(request(), secure) == ALLOWED


def test_a_time_window() -> None:
    window = policy(
        allow(
            Condition={
                "DateGreaterThan": {"aws:CurrentTime": "2026-06-01T00:00:00Z"},
                "DateLessThan": {"aws:CurrentTime": "2026-06-30T23:59:59Z"},
            }
        )
    )
    assert decide(request(keys={"aws:CurrentTime": NOON}), window) == ALLOWED
    assert decide(request(keys={"aws:CurrentTime": NOON.replace(month=7)}), window) == IMPLICIT
    epoch = policy(allow(Condition={"DateGreaterThan": {"aws:EpochTime": 1780000000}}))
    assert decide(request(keys={"aws:CurrentTime": NOON}), epoch) == ALLOWED


def test_requests_must_bring_the_required_tags() -> None:
    # AWS's example: creating a secret needs tags, and only these keys.
    tagging = policy(
        allow("secretsmanager:CreateSecret", Condition={"Null": {"aws:RequestTag/team": "false"}}),
        deny(
            "secretsmanager:CreateSecret",
            Condition={"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["team", "owner"]}},
        ),
    )
    create = "secretsmanager:CreateSecret"
    good = {"aws:RequestTag/team": "web", "aws:TagKeys": ["team", "owner"]}
    stray = {"aws:RequestTag/team": "web", "aws:TagKeys": ["team", "cost"]}
    assert decide(request(create, "*", keys=good), tagging) == ALLOWED
    assert decide(request(create, "*", keys=stray), tagging) == BY_IDENTITY
    assert decide(request(create, "*", keys={"aws:TagKeys": ["owner"]}), tagging) == IMPLICIT


def test_rotation_lambda_may_only_be_the_allowed_one() -> None:
    rotation = policy(
        allow(
            "secretsmanager:RotateSecret",
            Condition={
                "ArnLike": {
                    "secretsmanager:RotationLambdaARN": (
                        "arn:aws:lambda:*:111122223333:function:rotate-*"
                    )
                }
            },
        )
    )
    rotate = "secretsmanager:RotateSecret"
    ok = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:rotate-mysql"
    # The wildcard covers one part of the ARN: it cannot swallow a colon into the account.
    sneaky = f"arn:aws:lambda:{REGION}:x:{ACCOUNT}:function:rotate-mysql"
    assert decide(request(rotate, keys={"secretsmanager:RotationLambdaARN": ok}), rotation) == (
        ALLOWED
    )
    assert decide(request(rotate, keys={"secretsmanager:RotationLambdaARN": sneaky}), rotation) == (
        IMPLICIT
    )
    assert decide(request(rotate), rotation) == IMPLICIT


def test_resource_policy_naming_the_user_allows_without_an_identity_policy() -> None:
    grant = policy(
        allow("secretsmanager:GetSecretValue", Principal={"AWS": APP_ARN}), kind="resource"
    )
    assert decide(request(), resource_policy=grant) == ALLOWED
    assert decide(request(caller=user("other")), resource_policy=grant) == IMPLICIT
    assert decide(request("secretsmanager:PutSecretValue"), resource_policy=grant) == IMPLICIT


def test_resource_policy_naming_the_account_delegates_to_identity_policies() -> None:
    for principal in ({"AWS": ACCOUNT}, {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}):
        grant = policy(allow(Principal=principal), kind="resource")
        assert decide(request(), resource_policy=grant) == IMPLICIT
        assert decide(request(), policy(allow()), resource_policy=grant) == ALLOWED
        # ... but its Deny covers every principal of the account.
        refusal = policy(deny(Principal=principal), kind="resource")
        assert decide(request(), policy(allow()), resource_policy=refusal) == BY_RESOURCE


def test_resource_policy_for_anyone() -> None:
    public = policy(allow("secretsmanager:GetSecretValue", Principal="*"), kind="resource")
    assert decide(request(caller=user("anyone")), resource_policy=public) == ALLOWED


def test_resource_policy_deny_with_not_principal() -> None:
    # Only the listed user (with its account, as AWS requires) escapes the Deny.
    keep_out = policy(
        deny(NotPrincipal={"AWS": [APP_ARN, f"arn:aws:iam::{ACCOUNT}:root"]}), kind="resource"
    )
    everyone = policy(allow())
    assert decide(request(), everyone, resource_policy=keep_out) == ALLOWED
    assert decide(request(caller=user("other")), everyone, resource_policy=keep_out) == (
        BY_RESOURCE
    )
    only_user = policy(deny(NotPrincipal={"AWS": APP_ARN}), kind="resource")
    assert decide(request(), everyone, resource_policy=only_user) == BY_RESOURCE


def test_the_root_is_allowed_unless_a_resource_policy_denies() -> None:
    assert decide(request(caller=ROOT)) == ALLOWED
    refusal = policy(deny(Principal={"AWS": ACCOUNT}), kind="resource")
    assert decide(request(caller=ROOT), resource_policy=refusal) == BY_RESOURCE


def test_identity_deny_is_reported_before_resource_deny() -> None:
    both = policy(deny(Principal="*"), kind="resource")
    assert decide(request(), policy(deny()), resource_policy=both) == BY_IDENTITY


def test_condition_keys_ignore_case() -> None:
    tagged = policy(allow(Condition={"StringEquals": {"AWS:ResourceTag/Team": "web"}}))
    assert decide(request(keys={"aws:resourcetag/team": "web"}), tagged) == ALLOWED
    named = policy(allow(Condition={"StringLike": {"secretsmanager:name": "db/*"}}))
    assert decide(request(keys={"secretsmanager:Name": "db/app"}), named) == ALLOWED


SESSION = Caller(
    account_id=ACCOUNT,
    arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/secretsd-rotation/rotation-db",
    user_id="AROAEXAMPLE:rotation-db",
    access_key_id="ASIAEXAMPLE",
    user_name="rotation-db",
)
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/secretsd-rotation"


def test_a_role_session_is_named_by_its_role_and_has_no_user_name() -> None:
    # aws:PrincipalArn is the role's ARN; aws:username belongs to IAM users only.
    by_role = policy(
        allow(Condition={"ArnEquals": {"aws:PrincipalArn": ROLE_ARN}}),
        deny(Condition={"StringLike": {"aws:username": "*"}}),
    )
    assert decide(request(caller=SESSION), by_role) == ALLOWED
    typed = policy(allow(Condition={"StringEquals": {"aws:PrincipalType": "AssumedRole"}}))
    assert decide(request(caller=SESSION), typed) == ALLOWED
    assert decide(request(), typed) == IMPLICIT
    # A resource policy may name the role, or the one session.
    for principal in (ROLE_ARN, SESSION.arn):
        grant = policy(allow(Principal={"AWS": principal}), kind="resource")
        assert decide(request(caller=SESSION), resource_policy=grant) == ALLOWED
    # NotPrincipal spares a session only when it lists the session, its role and the account.
    spared = [SESSION.arn, ROLE_ARN, f"arn:aws:iam::{ACCOUNT}:root"]
    keep_out = policy(deny(NotPrincipal={"AWS": spared}), kind="resource")
    assert decide(request(caller=SESSION), policy(allow()), resource_policy=keep_out) == ALLOWED
    half = policy(deny(NotPrincipal={"AWS": spared[1:]}), kind="resource")
    assert decide(request(caller=SESSION), policy(allow()), resource_policy=half) == BY_RESOURCE


def test_a_key_given_as_none_is_absent() -> None:
    named = policy(allow(Condition={"Null": {"aws:username": "true"}}))
    assert decide(request(), named) == IMPLICIT
    assert decide(request(keys={"aws:username": None}), named) == ALLOWED
