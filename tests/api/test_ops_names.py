"""A secret name with a character no name may hold, as AWS answers it: ValidationException,
with the same message, from every operation that takes a Name or a SecretId, before it
looks for a secret. A name that is valid but unknown stays ResourceNotFoundException."""

from __future__ import annotations

import pytest

from tests.api.test_ops_helpers import expect_error, token, unique_name

INVALID_NAME = (
    "Invalid name. Must be a valid name containing alphanumeric characters, or any of the "
    "following: -/_+=.@!"
)
BAD = ["Inv Name", "semi;colon", "star*", "tab\tname", "caf\u00e9", "a:b"]
VERSION = "v" * 32
POLICY = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
    '"Principal": {"AWS": "arn:aws:iam::123456789012:root"}, '
    '"Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}'
)

CALLS = {
    "DescribeSecret": lambda sm, n: sm.describe_secret(SecretId=n),
    "GetSecretValue": lambda sm, n: sm.get_secret_value(SecretId=n),
    "PutSecretValue": lambda sm, n: sm.put_secret_value(SecretId=n, SecretString="v"),
    "UpdateSecret": lambda sm, n: sm.update_secret(SecretId=n, SecretString="v"),
    "UpdateSecretVersionStage": lambda sm, n: sm.update_secret_version_stage(
        SecretId=n, VersionStage="blue", MoveToVersionId=VERSION
    ),
    "ListSecretVersionIds": lambda sm, n: sm.list_secret_version_ids(SecretId=n),
    "DeleteSecret": lambda sm, n: sm.delete_secret(SecretId=n),
    "ForceDeleteSecret": lambda sm, n: sm.delete_secret(
        SecretId=n, ForceDeleteWithoutRecovery=True
    ),
    "RestoreSecret": lambda sm, n: sm.restore_secret(SecretId=n),
    "TagResource": lambda sm, n: sm.tag_resource(SecretId=n, Tags=[{"Key": "k", "Value": "v"}]),
    "UntagResource": lambda sm, n: sm.untag_resource(SecretId=n, TagKeys=["k"]),
    "RotateSecret": lambda sm, n: sm.rotate_secret(SecretId=n),
    "CancelRotateSecret": lambda sm, n: sm.cancel_rotate_secret(SecretId=n),
    "GetResourcePolicy": lambda sm, n: sm.get_resource_policy(SecretId=n),
    "PutResourcePolicy": lambda sm, n: sm.put_resource_policy(SecretId=n, ResourcePolicy=POLICY),
    "DeleteResourcePolicy": lambda sm, n: sm.delete_resource_policy(SecretId=n),
}


@pytest.mark.parametrize("operation", sorted(CALLS))
def test_every_operation_refuses_an_invalid_name_with_a_validation_error(sm, operation):
    with expect_error("ValidationException", INVALID_NAME):
        CALLS[operation](sm, "Inv Name")


@pytest.mark.parametrize("operation", sorted(set(CALLS) - {"ForceDeleteSecret"}))
def test_a_valid_unknown_name_is_still_not_found(sm, operation):
    with expect_error("ResourceNotFoundException"):
        CALLS[operation](sm, unique_name("absent"))


@pytest.mark.parametrize("name", BAD)
def test_create_refuses_a_name_with_a_character_outside_the_set(sm, name):
    with expect_error("ValidationException", INVALID_NAME):
        sm.create_secret(Name=name, SecretString="v")
    with expect_error("ValidationException", INVALID_NAME):
        sm.create_secret(Name=name, ClientRequestToken=token())


def test_a_forced_delete_of_a_valid_unknown_name_succeeds_as_on_aws(sm):
    name = unique_name("absent")
    assert sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)["Name"] == name


def test_every_character_of_the_set_makes_a_name(sm):
    name = unique_name("all") + "/_+=.@-AZaz09"
    arn = sm.create_secret(Name=name, SecretString="v")["ARN"]
    assert sm.describe_secret(SecretId=name)["ARN"] == arn
    assert sm.describe_secret(SecretId=arn)["Name"] == name


def test_an_arn_whose_name_part_is_invalid_is_a_validation_error(sm):
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:Inv Name-AbCdEf"
    with expect_error("ValidationException", INVALID_NAME):
        sm.describe_secret(SecretId=arn)
