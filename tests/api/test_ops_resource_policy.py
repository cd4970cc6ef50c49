"""GetResourcePolicy, PutResourcePolicy, DeleteResourcePolicy and ValidateResourcePolicy
against the live server, through boto3."""

from __future__ import annotations

import json

import pytest

from secretsd.model import errors
from tests.api.test_ops_helpers import expect_error, partial_arn, unique_name
from tests.support.server import start_server

ACCOUNT = "123456789012"
READER = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ReadByApp",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/app"},
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
        }
    ],
}
PUBLIC = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
        }
    ],
}


@pytest.fixture
def secret(sm):
    name = unique_name("policy")
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    return name, arn


def test_a_secret_without_a_policy_has_no_resource_policy_member(sm, secret):
    name, arn = secret
    got = sm.get_resource_policy(SecretId=name)
    assert (got["ARN"], got["Name"]) == (arn, name)
    assert "ResourcePolicy" not in got


def test_put_get_delete(sm, secret):
    name, arn = secret
    # Kept as given, whitespace and all.
    text = json.dumps(READER, indent=4)
    put = sm.put_resource_policy(SecretId=name, ResourcePolicy=text)
    assert (put["ARN"], put["Name"], put["PolicyName"]) == (arn, name, "default")

    got = sm.get_resource_policy(SecretId=partial_arn(arn))
    assert got["ResourcePolicy"] == text
    assert got["PolicyName"] == "default"
    assert sm.get_resource_policy(SecretId=arn, PolicyName="default")["ResourcePolicy"] == text

    deleted = sm.delete_resource_policy(SecretId=arn)
    assert (deleted["ARN"], deleted["Name"]) == (arn, name)
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=name)
    # Deleting again is no error.
    assert sm.delete_resource_policy(SecretId=name)["ARN"] == arn


def test_the_policy_survives_other_changes_and_a_restart(server):
    sm = server.client()
    sm.create_secret(Name="kept", SecretString="one")
    sm.put_resource_policy(SecretId="kept", ResourcePolicy=json.dumps(READER))
    sm.put_secret_value(SecretId="kept", SecretString="two")
    sm.tag_resource(SecretId="kept", Tags=[{"Key": "team", "Value": "web"}])
    server.stop()
    restarted = start_server(server.data_dir)
    try:
        got = restarted.client().get_resource_policy(SecretId="kept")
        assert json.loads(got["ResourcePolicy"]) == READER
    finally:
        restarted.stop()


@pytest.mark.parametrize(
    "document",
    [
        "{not json",
        json.dumps({"Version": "2012-10-17"}),
        json.dumps({"Version": "2019-10-19", "Statement": READER["Statement"]}),
        # A resource policy names who it applies to.
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}],
            }
        ),
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{**READER["Statement"][0], "Action": "GetSecretValue"}],
            }
        ),
    ],
)
def test_a_malformed_policy_is_refused(sm, secret, document):
    name, _ = secret
    with expect_error("MalformedPolicyDocumentException", "This policy has invalid syntax."):
        sm.put_resource_policy(SecretId=name, ResourcePolicy=document)
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=name)


def test_block_public_policy(sm, secret):
    name, _ = secret
    with expect_error("PublicPolicyException"):
        sm.put_resource_policy(
            SecretId=name, ResourcePolicy=json.dumps(PUBLIC), BlockPublicPolicy=True
        )
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=name)
    # A condition pinning the caller's account makes it narrow again.
    narrow = {
        "Version": "2012-10-17",
        "Statement": [
            {
                **PUBLIC["Statement"][0],
                "Condition": {"StringEquals": {"aws:PrincipalAccount": ACCOUNT}},
            }
        ],
    }
    sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps(narrow), BlockPublicPolicy=True)
    # Without BlockPublicPolicy, a public policy is the owner's choice, as on AWS.
    sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps(PUBLIC))
    assert json.loads(sm.get_resource_policy(SecretId=name)["ResourcePolicy"]) == PUBLIC


def test_validate_a_good_policy(sm, secret):
    name, _ = secret
    passed = sm.validate_resource_policy(ResourcePolicy=json.dumps(READER))
    assert passed["PolicyValidationPassed"] is True
    assert passed["ValidationErrors"] == []
    by_secret = sm.validate_resource_policy(SecretId=name, ResourcePolicy=json.dumps(READER))
    assert by_secret["PolicyValidationPassed"] is True


def test_validate_reports_broad_access_and_grammar(sm):
    public = sm.validate_resource_policy(ResourcePolicy=json.dumps(PUBLIC))
    assert public["PolicyValidationPassed"] is False
    [problem] = public["ValidationErrors"]
    assert problem["CheckName"] == "BROAD_ACCESS_CHECK"
    assert "wildcard principal" in problem["ErrorMessage"]

    no_actions = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Resource": "*"}],
    }
    grammar = sm.validate_resource_policy(ResourcePolicy=json.dumps(no_actions))
    assert grammar["PolicyValidationPassed"] is False
    assert grammar["ValidationErrors"] == [
        {"CheckName": "SYNTAX_CHECK", "ErrorMessage": "Policy statement must contain actions."}
    ]
    with expect_error("MalformedPolicyDocumentException", "This policy has invalid syntax."):
        sm.validate_resource_policy(ResourcePolicy="{")


def test_missing_secrets(sm):
    missing = unique_name("absent")
    for call in (
        lambda: sm.get_resource_policy(SecretId=missing),
        lambda: sm.put_resource_policy(SecretId=missing, ResourcePolicy=json.dumps(READER)),
        lambda: sm.delete_resource_policy(SecretId=missing),
        lambda: sm.validate_resource_policy(SecretId=missing, ResourcePolicy=json.dumps(READER)),
    ):
        with expect_error("ResourceNotFoundException", errors.SECRET_NOT_FOUND):
            call()


def test_a_secret_marked_for_deletion_is_refused(sm, secret):
    name, _ = secret
    sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps(READER))
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    for call in (
        lambda: sm.get_resource_policy(SecretId=name),
        lambda: sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps(READER)),
        lambda: sm.delete_resource_policy(SecretId=name),
    ):
        with expect_error("InvalidRequestException", errors.MARKED_FOR_DELETION):
            call()
    sm.restore_secret(SecretId=name)
    assert json.loads(sm.get_resource_policy(SecretId=name)["ResourcePolicy"]) == READER


def test_only_the_default_policy_name(sm, secret):
    name, _ = secret
    with expect_error("InvalidParameterException"):
        sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps(READER), PolicyName="x")
    with expect_error("InvalidParameterException"):
        sm.delete_resource_policy(SecretId=name, PolicyName="x")
    with expect_error("ResourceNotFoundException"):
        sm.get_resource_policy(SecretId=name, PolicyName="x")


def test_member_constraints(sm, secret):
    name, _ = secret
    with expect_error("ValidationException"):
        sm.put_resource_policy(SecretId=name, ResourcePolicy="x" * 20481)
    with expect_error("ValidationException"):
        sm.get_resource_policy(SecretId=name, PolicyName="not a name")
